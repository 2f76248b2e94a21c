//! One turn of the conversation as it went: what the caller said, what the
//! agent said and what the caller heard of it, and how long each stage took.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who decided that the caller's turn was over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TurnDecider {
    /// A fixed silence after the last word (`[vad] hangover_ms`).
    #[default]
    Silence,
    /// The local end-of-turn model, after a short pause.
    Model,
    /// The streaming speech-to-text provider's end of turn.
    Provider,
    /// Nothing decided sooner: the longest wait (`[turn] max_wait_ms`) ran out.
    Ceiling,
    /// Keypad digits (`#` or their timeout).
    Keypad,
}

impl TurnDecider {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnDecider::Silence => "silence",
            TurnDecider::Model => "model",
            TurnDecider::Provider => "provider",
            TurnDecider::Ceiling => "ceiling",
            TurnDecider::Keypad => "keypad",
        }
    }
}

/// The latency of one caller turn, as Pronto measured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TurnLatency {
    pub turn: u32,
    /// Length of the caller's utterance, pre-roll included.
    pub utterance_ms: u64,
    /// End of the caller's speech → their words ready for the LLM: the wait
    /// for the turn's end, then (streaming speech-to-text) its final
    /// transcript.
    pub endpoint_wait_ms: u64,
    /// Who decided the turn was over.
    #[serde(default)]
    pub decided_by: TurnDecider,
    /// End of the caller's speech → the turn decided.
    #[serde(default)]
    pub turn_decided_ms: u64,
    /// Streaming speech-to-text: the turn decided → its final transcript.
    #[serde(default)]
    pub stt_final_ms: Option<u64>,
    /// The answer was started before the turn was decided (on the
    /// provider's early end-of-turn signal) and kept.
    #[serde(default)]
    pub speculative: bool,
    /// The speech-to-text request.
    pub stt_ms: Option<u64>,
    /// LLM request → first token.
    pub llm_first_token_ms: Option<u64>,
    /// LLM request → first complete sentence.
    pub first_sentence_ms: Option<u64>,
    /// The first sentence's TTS request → its first audio byte.
    pub tts_first_byte_ms: Option<u64>,
    /// LLM request → the first TTS request (the first clause or sentence).
    #[serde(default)]
    pub first_tts_request_ms: Option<u64>,
    /// Speech-to-speech: end of the caller's speech (the model's own voice
    /// detection) → the model's first audio received.
    #[serde(default)]
    pub model_first_audio_ms: Option<u64>,
    /// End of the caller's speech → first audio frame sent to Twilio.
    pub voice_to_voice_ms: Option<u64>,
    /// What Pronto itself added: voice-to-voice minus the endpoint wait, STT,
    /// time to the first sentence and TTS first byte (speech-to-speech: minus
    /// the model's first audio). Only when all are known.
    pub pipeline_overhead_ms: Option<i64>,
    /// The caller spoke over the answer and it was cleared.
    pub interrupted: bool,
}

/// One exchange of the conversation, as it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TurnRecord {
    /// 0 is the greeting.
    pub turn: u32,
    /// When the caller's speech ended (for the greeting and Pronto's own
    /// lines: when the turn started), in ms since the stream started: the
    /// recording's clock. The caller spoke from `at_ms - utterance_ms`; the
    /// agent's first audio went out at `at_ms + voice_to_voice_ms`. `None`
    /// in records older than this field.
    #[serde(default)]
    pub at_ms: Option<u64>,
    /// What the caller said (transcript or keypad), if anything was understood.
    pub caller: Option<String>,
    /// Everything the agent produced for this turn.
    pub agent_said: String,
    /// What the caller heard of it: the sentences whose marks came back.
    pub agent_heard: String,
    /// `agent_heard` is an estimate: the answer's text was cut in
    /// proportion to the audio heard (a speech-to-speech model gives no
    /// word timings).
    #[serde(default)]
    pub heard_approximate: bool,
    /// An operator typed what the agent said (the dashboard's "say").
    #[serde(default)]
    pub by_operator: bool,
    pub interrupted: bool,
    pub latency: TurnLatency,
}

/// How long one stage of a turn took (ms), reported by the engine as soon as
/// it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The speech-to-text request.
    Stt(u64),
    /// LLM request sent → its first token.
    LlmFirstToken(u64),
    /// LLM request sent → its first complete sentence.
    FirstSentence(u64),
    /// The first sentence's TTS request → its first audio byte.
    TtsFirstByte(u64),
    /// LLM request sent → the first TTS request.
    FirstTtsRequest(u64),
    /// The answer was started speculatively and kept.
    Speculative,
    /// Speech-to-speech: the caller's turn reported → the model's first
    /// audio.
    ModelFirstAudio(u64),
}

/// The stage timings reported for one turn (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageTimings {
    pub stt: Option<u64>,
    pub llm_first_token: Option<u64>,
    pub first_sentence: Option<u64>,
    pub tts_first_byte: Option<u64>,
    pub first_tts_request: Option<u64>,
    pub speculative: bool,
    pub model_first_audio: Option<u64>,
}

impl StageTimings {
    pub fn record(&mut self, timing: Timing) {
        match timing {
            Timing::Stt(ms) => self.stt = Some(ms),
            Timing::LlmFirstToken(ms) => self.llm_first_token = Some(ms),
            Timing::FirstSentence(ms) => self.first_sentence = Some(ms),
            Timing::TtsFirstByte(ms) => self.tts_first_byte = Some(ms),
            Timing::FirstTtsRequest(ms) => self.first_tts_request = Some(ms),
            Timing::Speculative => self.speculative = true,
            Timing::ModelFirstAudio(ms) => self.model_first_audio = Some(ms),
        }
    }
}

/// Whole milliseconds of `d`, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
