-- What the dashboard needs of a turn (issue 16): whether an operator typed
-- what the agent said, and when the turn happened on the call's clock (ms
-- since the stream started, as in the recording), for the replay. Older
-- rows are the agent's own and have no time.
ALTER TABLE turns ADD COLUMN by_operator BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE turns ADD COLUMN at_ms BIGINT;
