-- The stages of a turn that streaming speech-to-text and turn detection
-- added (issue 14): who decided the turn was over and when, the final
-- transcript's delay after that, whether the answer was started
-- speculatively, and the first TTS request. Older rows keep NULL/defaults.
ALTER TABLE turns ADD COLUMN decided_by TEXT NOT NULL DEFAULT 'silence';
ALTER TABLE turns ADD COLUMN turn_decided_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE turns ADD COLUMN stt_final_ms BIGINT;
ALTER TABLE turns ADD COLUMN speculative BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE turns ADD COLUMN first_tts_request_ms BIGINT;
