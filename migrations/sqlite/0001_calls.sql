-- Pronto's call history (SQLite). Keep in step with postgres/0001_calls.sql.
-- Times are BIGINT microseconds since the Unix epoch, UTC.

CREATE TABLE calls (
    sid           TEXT PRIMARY KEY NOT NULL,
    -- 'unknown' while only a status callback has been seen.
    direction     TEXT NOT NULL,
    from_number   TEXT NOT NULL,
    from_masked   TEXT NOT NULL,
    to_number     TEXT NOT NULL,
    to_masked     TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    -- Twilio's CallStatus of the highest SequenceNumber seen (status_seq).
    status        TEXT,
    status_seq    BIGINT,
    end_reason    TEXT,
    duration_secs BIGINT,
    -- The replica that runs the call; NULL while only a callback was seen.
    replica       TEXT
);
CREATE INDEX calls_by_start ON calls (started_at, sid);
CREATE INDEX calls_by_from ON calls (from_number, started_at);
CREATE INDEX calls_by_to ON calls (to_number, started_at);
CREATE INDEX calls_open ON calls (replica) WHERE ended_at IS NULL;

CREATE TABLE turns (
    call_sid             TEXT NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    turn                 BIGINT NOT NULL,
    caller               TEXT,
    agent_said           TEXT NOT NULL,
    agent_heard          TEXT NOT NULL,
    interrupted          BOOLEAN NOT NULL,
    utterance_ms         BIGINT NOT NULL,
    endpoint_wait_ms     BIGINT NOT NULL,
    stt_ms               BIGINT,
    llm_first_token_ms   BIGINT,
    first_sentence_ms    BIGINT,
    tts_first_byte_ms    BIGINT,
    voice_to_voice_ms    BIGINT,
    pipeline_overhead_ms BIGINT,
    PRIMARY KEY (call_sid, turn)
);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    call_sid TEXT NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    at       BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    -- JSON text.
    detail   TEXT NOT NULL
);
CREATE INDEX events_by_call ON events (call_sid, at, id);

-- One row per (call, SequenceNumber): a retried callback is recognised.
CREATE TABLE status_callbacks (
    call_sid TEXT NOT NULL REFERENCES calls (sid) ON DELETE CASCADE,
    sequence BIGINT NOT NULL,
    status   TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (call_sid, sequence)
);

CREATE TABLE replicas (
    id           TEXT PRIMARY KEY NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- Caller memory: one summary per call, looked up by the caller's number.
-- No foreign key: a summary is worth keeping even if the call's own row
-- could not be written; delete_call removes it explicitly.
CREATE TABLE summaries (
    call_sid TEXT PRIMARY KEY NOT NULL,
    number   TEXT NOT NULL,
    at       BIGINT NOT NULL,
    summary  TEXT NOT NULL
);
CREATE INDEX summaries_by_number ON summaries (number, at);
