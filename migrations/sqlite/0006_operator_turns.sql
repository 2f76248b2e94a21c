-- A turn an operator typed on the dashboard and the agent's voice spoke
-- (issue 16). Older rows are the agent's own.
ALTER TABLE turns ADD COLUMN by_operator BOOLEAN NOT NULL DEFAULT FALSE;
