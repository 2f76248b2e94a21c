-- What speech-to-speech engines add to a turn (issue 15): the model's first
-- audio after the caller's speech ended, and whether what the caller heard
-- of an interrupted answer is an estimate (its text cut in proportion to the
-- audio heard). Older rows keep NULL/false.
ALTER TABLE turns ADD COLUMN model_first_audio_ms BIGINT;
ALTER TABLE turns ADD COLUMN heard_approximate BOOLEAN NOT NULL DEFAULT FALSE;
