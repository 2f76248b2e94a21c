//! The agent's turn in progress, as the call sees it: when the caller
//! stopped speaking, what the engine produced (its sentences, its timings),
//! what was sent and what Twilio says was heard. Pure: times are given.

use std::time::Instant;

use crate::engine::{InputTiming, TurnInput};

use crate::model::{CallAction, StageTimings, TurnLatency, TurnRecord, millis};

pub struct Turn {
    pub id: u32,
    /// When the caller stopped speaking (the last voiced frame), by the local clock.
    pub speech_ended_at: Instant,
    /// How the caller's turn ended (the wait, who decided, the utterance).
    pub input: InputTiming,
    pub first_audio_sent_at: Option<Instant>,
    /// The engine has produced all of it.
    pub produced: bool,
    /// Segments completed by the responder (a mark was queued for each).
    pub segments: u32,
    /// Segments whose mark came back: the caller heard them.
    pub segments_heard: u32,
    pub interrupted: bool,
    /// The caller may interrupt it (false only for a greeting configured so).
    pub interruptible: bool,
    /// What the caller said, once the responder understood it.
    pub transcript: Option<String>,
    /// The text of each completed segment, in order.
    pub texts: Vec<String>,
    /// Every sentence the responder set out to speak, completed or not.
    pub planned: Vec<String>,
    pub timings: StageTimings,
    /// To do once every segment has been heard.
    pub action: Option<CallAction>,
    /// The caller's speech it answers, kept until the answer is heard in
    /// part: if the caller speaks again before that, they had only paused,
    /// and both parts are answered together.
    pub speech: Option<TurnInput>,
    /// The call's audio sent before this turn's (bytes): where its own
    /// audio starts in the playback.
    pub audio_from: u64,
    /// An operator typed what it says (the dashboard's "say").
    pub by_operator: bool,
}

impl Turn {
    pub fn new(id: u32, speech_ended_at: Instant, input: InputTiming) -> Self {
        Turn {
            id,
            speech_ended_at,
            input,
            first_audio_sent_at: None,
            produced: false,
            segments: 0,
            segments_heard: 0,
            interrupted: false,
            interruptible: true,
            transcript: None,
            texts: Vec::new(),
            planned: Vec::new(),
            timings: StageTimings::default(),
            action: None,
            speech: None,
            audio_from: 0,
            by_operator: false,
        }
    }

    /// Whether the caller has heard any of the answer yet.
    pub fn anything_heard(&self) -> bool {
        self.segments_heard > 0 || self.first_audio_sent_at.is_some()
    }

    /// The segments whose marks came back, joined.
    pub fn heard_text(&self) -> String {
        let heard = usize::try_from(self.segments_heard).unwrap_or(usize::MAX);
        join(self.texts.iter().take(heard))
    }

    /// How the turn went, for the record; `call_start` is the origin of
    /// the call's clock (the stream's start, as the recording's).
    pub fn record(&self, call_start: Instant) -> TurnRecord {
        TurnRecord {
            turn: self.id,
            at_ms: Some(millis(
                self.speech_ended_at.saturating_duration_since(call_start),
            )),
            caller: self.transcript.clone(),
            agent_said: if self.planned.is_empty() {
                join(self.texts.iter())
            } else {
                join(self.planned.iter())
            },
            agent_heard: self.heard_text(),
            heard_approximate: false,
            by_operator: self.by_operator,
            interrupted: self.interrupted,
            latency: self.latency(),
        }
    }

    /// The name of the mark after segment `index` of this turn.
    pub fn mark_name(&self, index: u32) -> String {
        format!("t{}-s{}", self.id, index)
    }

    /// Whether a mark name belongs to this turn.
    pub fn owns_mark(&self, name: &str) -> bool {
        name.strip_prefix('t')
            .and_then(|rest| rest.split_once("-s"))
            .and_then(|(turn, _)| turn.parse::<u32>().ok())
            == Some(self.id)
    }

    pub fn latency(&self) -> TurnLatency {
        let t = self.timings;
        let endpoint_wait_ms = millis(self.input.endpoint_wait);
        let turn_decided_ms = millis(self.input.decided_after);
        let voice_to_voice_ms = self
            .first_audio_sent_at
            .map(|at| millis(at.saturating_duration_since(self.speech_ended_at)));
        // With streaming speech-to-text the transcript's wait is part of
        // the endpoint wait: there is no STT request after it.
        let stt = t.stt.or(self.input.streamed.then_some(0));
        // A speech-to-speech model is one stage: the wait for its first audio.
        let model_first_audio_ms = t.model_first_audio.map(|ms| endpoint_wait_ms + ms);
        let stages = match (
            model_first_audio_ms,
            stt,
            t.first_sentence,
            t.tts_first_byte,
        ) {
            (Some(model), ..) => Some(model),
            (None, Some(stt), Some(sentence), Some(tts)) => {
                Some(endpoint_wait_ms + stt + sentence + tts)
            }
            _ => None,
        };
        let pipeline_overhead_ms = voice_to_voice_ms.zip(stages).map(|(v2v, stages)| {
            i64::try_from(v2v).unwrap_or(i64::MAX) - i64::try_from(stages).unwrap_or(i64::MAX)
        });
        TurnLatency {
            turn: self.id,
            utterance_ms: millis(self.input.utterance),
            endpoint_wait_ms,
            decided_by: self.input.decided_by,
            turn_decided_ms,
            stt_final_ms: self
                .input
                .streamed
                .then(|| endpoint_wait_ms.saturating_sub(turn_decided_ms)),
            speculative: t.speculative,
            first_tts_request_ms: t.first_tts_request,
            stt_ms: t.stt,
            llm_first_token_ms: t.llm_first_token,
            first_sentence_ms: t.first_sentence,
            tts_first_byte_ms: t.tts_first_byte,
            model_first_audio_ms,
            voice_to_voice_ms,
            pipeline_overhead_ms,
            interrupted: self.interrupted,
        }
    }
}

fn join<'a>(texts: impl Iterator<Item = &'a String>) -> String {
    texts
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timing;
    use std::time::Duration;

    fn waited(endpoint_wait_ms: u64, utterance_ms: u64) -> InputTiming {
        InputTiming {
            endpoint_wait: Duration::from_millis(endpoint_wait_ms),
            decided_after: Duration::from_millis(endpoint_wait_ms),
            utterance: Duration::from_millis(utterance_ms),
            ..InputTiming::default()
        }
    }

    #[test]
    fn marks_are_named_by_turn_and_segment() {
        let turn = Turn::new(12, Instant::now(), InputTiming::default());
        assert_eq!(turn.mark_name(0), "t12-s0");
        assert!(turn.owns_mark("t12-s3"));
        assert!(!turn.owns_mark("t1-s0"));
        assert!(!turn.owns_mark("t12"));
        assert!(!turn.owns_mark("greeting"));
    }

    #[test]
    fn heard_text_is_the_segments_whose_marks_came_back() {
        let t0 = Instant::now();
        let mut turn = Turn::new(2, t0 + Duration::from_millis(1500), InputTiming::default());
        turn.texts = vec![
            "We open at nine.".into(),
            "On Sundays".into(),
            "we are closed.".into(),
        ];
        turn.segments_heard = 1;
        turn.interrupted = true;
        let r = turn.record(t0);
        assert_eq!(r.at_ms, Some(1500), "on the call's clock");
        assert_eq!(r.agent_heard, "We open at nine.");
        assert_eq!(r.agent_said, "We open at nine. On Sundays we are closed.");
        assert!(r.interrupted);
    }

    #[test]
    fn pipeline_overhead_is_what_the_stages_do_not_explain() {
        let t0 = Instant::now();
        let mut turn = Turn::new(1, t0, waited(600, 0));
        turn.timings.record(Timing::Stt(300));
        turn.timings.record(Timing::FirstSentence(400));
        assert_eq!(turn.latency().pipeline_overhead_ms, None);
        turn.timings.record(Timing::TtsFirstByte(200));
        turn.first_audio_sent_at = Some(t0 + Duration::from_millis(1508));
        assert_eq!(turn.latency().pipeline_overhead_ms, Some(8));
    }

    #[test]
    fn latency_is_measured_from_the_end_of_speech() {
        let t0 = Instant::now();
        let mut turn = Turn::new(1, t0, waited(600, 1500));
        assert_eq!(turn.latency().voice_to_voice_ms, None);
        turn.first_audio_sent_at = Some(t0 + Duration::from_millis(640));
        let l = turn.latency();
        assert_eq!(
            (l.voice_to_voice_ms, l.endpoint_wait_ms, l.utterance_ms),
            (Some(640), 600, 1500)
        );
    }
}
