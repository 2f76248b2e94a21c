-- Calls erased through DELETE /api/calls/{sid}. An erase must stay final:
-- a late status callback, a session still running, or its caller-memory
-- summary must not bring the call back, on any replica. Only the SID is
-- kept (it names no person); `at` is when it was erased (microseconds).
CREATE TABLE erased_calls (
    sid TEXT PRIMARY KEY NOT NULL,
    at  BIGINT NOT NULL
);
