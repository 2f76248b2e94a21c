-- Several agents on one Pronto (issue 17): the agent (persona) that answered
-- each call, by name. Calls from before agents were answered by the agent of
-- config/pronto.toml, which is named "default".
ALTER TABLE calls ADD COLUMN agent TEXT NOT NULL DEFAULT 'default';
CREATE INDEX calls_by_agent ON calls (agent, started_at);
