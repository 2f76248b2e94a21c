//! OpenAI Realtime's wire format (the GA interface), both ways: the client
//! events Pronto sends, built here and nowhere else, and the server events
//! it reads, parsed into types. References:
//! <https://developers.openai.com/api/docs/guides/realtime-websocket>,
//! <https://developers.openai.com/api/docs/api-reference/realtime-client-events>,
//! <https://developers.openai.com/api/docs/api-reference/realtime-server-events>.
//!
//! The GA shapes differ from the beta ones still found in examples: the
//! session has a `type`, audio formats are objects (`{"type":
//! "audio/pcmu"}`), the audio events are `response.output_audio.*`, and the
//! `OpenAI-Beta` header gets the socket refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::engine::RealtimeSection;
use crate::providers::ToolSpec;

/// The `event_id` of Pronto's `session.update`: an `error` carrying it
/// means the session was refused.
pub const SESSION_UPDATE_ID: &str = "pronto_session_update";

/// The format Twilio's audio has, both ways: μ-law 8 kHz.
pub const PCMU: &str = "audio/pcmu";

/// `session.update`: μ-law both ways, the voice, the instructions, the turn
/// detection and the tools. The model creates a response when the caller's
/// turn ends; it does not cancel one when they start speaking (Pronto
/// decides a barge-in, and cancels).
pub fn session_update(
    settings: &RealtimeSection,
    instructions: &str,
    language: &str,
    tools: &[ToolSpec],
) -> String {
    let turn_detection = match settings.turn_detection.as_str() {
        "semantic_vad" => json!({
            "type": "semantic_vad",
            "eagerness": settings.eagerness,
            "create_response": true,
            "interrupt_response": false,
        }),
        _ => json!({
            "type": "server_vad",
            "threshold": settings.threshold,
            "prefix_padding_ms": settings.prefix_padding_ms,
            "silence_duration_ms": settings.silence_ms,
            "create_response": true,
            "interrupt_response": false,
        }),
    };
    let mut input = json!({
        "format": {"type": PCMU},
        "turn_detection": turn_detection,
    });
    if !settings.transcription_model.is_empty() {
        input["transcription"] = json!({
            "model": settings.transcription_model,
            "language": language,
        });
    }
    input["noise_reduction"] = if settings.noise_reduction.is_empty() {
        Value::Null
    } else {
        json!({"type": settings.noise_reduction})
    };
    let tools: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            })
        })
        .collect();
    json!({
        "type": "session.update",
        "event_id": SESSION_UPDATE_ID,
        "session": {
            "type": "realtime",
            "model": settings.model,
            "output_modalities": ["audio"],
            "instructions": instructions,
            "audio": {
                "input": input,
                "output": {"format": {"type": PCMU}, "voice": settings.voice},
            },
            "tools": tools,
            "tool_choice": "auto",
        }
    })
    .to_string()
}

/// `input_audio_buffer.append` with Twilio's payload as it came.
pub fn append(mulaw: &[u8]) -> String {
    // One allocation: the JSON around the base64, written in place.
    const HEAD: &str = r#"{"type":"input_audio_buffer.append","audio":""#;
    let mut s = String::with_capacity(HEAD.len() + mulaw.len().div_ceil(3) * 4 + 2);
    s.push_str(HEAD);
    STANDARD.encode_string(mulaw, &mut s);
    s.push_str("\"}");
    s
}

/// `response.create`, with instructions for this response only (a fixed
/// line to say) or none (answer the conversation).
pub fn response_create(instructions: Option<&str>) -> String {
    match instructions {
        Some(text) => json!({"type": "response.create", "response": {"instructions": text}}),
        None => json!({"type": "response.create"}),
    }
    .to_string()
}

/// The instructions that make the model say `line`, and nothing else.
pub fn say_exactly(line: &str) -> String {
    format!("Say exactly this to the caller, word for word, and nothing else: \"{line}\"")
}

/// `response.cancel` of `response_id`.
pub fn response_cancel(response_id: &str) -> String {
    json!({"type": "response.cancel", "response_id": response_id}).to_string()
}

/// `conversation.item.truncate`: the caller heard `audio_end_ms` of `item_id`.
pub fn truncate(item_id: &str, audio_end_ms: u64) -> String {
    json!({
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    })
    .to_string()
}

/// A text message in the conversation: the caller's (`user`, e.g. keypad
/// digits) or the agent's (`assistant`, when a conversation is carried into
/// a new session).
pub fn text_item(role: &str, text: &str) -> String {
    let kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    json!({
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    })
    .to_string()
}

/// A tool's result.
pub fn function_output(call_id: &str, output: &str) -> String {
    json!({
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    })
    .to_string()
}

/// A server event Pronto acts on; anything else is [`ServerEvent::Other`].
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type")]
pub enum ServerEvent {
    #[serde(rename = "session.updated")]
    SessionUpdated { session: Value },
    #[serde(rename = "error")]
    Error { error: ApiError },
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        #[serde(default)]
        audio_start_ms: u64,
        item_id: String,
    },
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        #[serde(default)]
        audio_end_ms: u64,
        item_id: String,
    },
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    InputTranscript { item_id: String, transcript: String },
    #[serde(rename = "response.created")]
    ResponseCreated { response: ResponseRef },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        response_id: String,
        item: OutputItem,
    },
    #[serde(rename = "response.output_audio.delta")]
    AudioDelta {
        response_id: String,
        item_id: String,
        delta: String,
    },
    #[serde(rename = "response.output_audio.done")]
    AudioDone {
        response_id: String,
        item_id: String,
    },
    #[serde(rename = "response.output_audio_transcript.delta")]
    TranscriptDelta {
        response_id: String,
        item_id: String,
        delta: String,
    },
    #[serde(rename = "response.output_audio_transcript.done")]
    TranscriptDone {
        response_id: String,
        item_id: String,
        transcript: String,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCall {
        response_id: String,
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: String,
    },
    #[serde(rename = "response.done")]
    ResponseDone { response: ResponseDone },
    #[serde(other)]
    Other,
}

/// An `error` event's `error`.
#[derive(Debug, Deserialize, PartialEq, Default)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub event_id: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct ResponseRef {
    pub id: String,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct OutputItem {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct ResponseDone {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// A response's tokens, as `response.done` reports them.
#[derive(Debug, Deserialize, PartialEq, Default, Clone, Copy)]
pub struct Usage {
    #[serde(default)]
    pub input_token_details: InputTokens,
    #[serde(default)]
    pub output_token_details: OutputTokens,
}

#[derive(Debug, Deserialize, PartialEq, Default, Clone, Copy)]
pub struct InputTokens {
    #[serde(default)]
    pub text_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Debug, Deserialize, PartialEq, Default, Clone, Copy)]
pub struct OutputTokens {
    #[serde(default)]
    pub text_tokens: u64,
    #[serde(default)]
    pub audio_tokens: u64,
}

/// The audio format a `session.updated` says the session has, one way
/// (`"input"` or `"output"`).
pub fn format_of(session: &Value, way: &str) -> Option<String> {
    session
        .pointer(&format!("/audio/{way}/format/type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The μ-law of an `output_audio.delta`.
pub fn audio_of(delta: &str) -> Option<Vec<u8>> {
    STANDARD.decode(delta).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RealtimeSection {
        let config = crate::config::Config::from_sources(None, &Default::default()).unwrap();
        config.tunables.realtime
    }

    #[test]
    fn the_session_update_has_the_ga_shape() {
        let tools = crate::agent::tools::Tools {
            end_call: true,
            transfer_to: None,
        };
        let update: Value = serde_json::from_str(&session_update(
            &settings(),
            "Be kind.",
            "en",
            &tools.specs(),
        ))
        .unwrap();
        let s = &update["session"];
        assert_eq!(update["type"], "session.update");
        assert_eq!(s["type"], "realtime");
        assert_eq!(s["model"], "gpt-realtime");
        assert_eq!(s["audio"]["input"]["format"], json!({"type": "audio/pcmu"}));
        assert_eq!(
            s["audio"]["output"]["format"],
            json!({"type": "audio/pcmu"})
        );
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        let vad = &s["audio"]["input"]["turn_detection"];
        assert_eq!(vad["type"], "server_vad");
        assert_eq!(vad["silence_duration_ms"], 500);
        assert_eq!(
            (&vad["create_response"], &vad["interrupt_response"]),
            (&json!(true), &json!(false))
        );
        assert_eq!(s["instructions"], "Be kind.");
        assert_eq!(s["tools"][0]["type"], "function");
        assert_eq!(s["tools"][0]["name"], "end_call");
        // No beta keys at all.
        for beta in [
            "input_audio_format",
            "voice",
            "turn_detection",
            "modalities",
        ] {
            assert!(s.get(beta).is_none(), "{beta}");
        }
    }

    #[test]
    fn appended_audio_is_twilios_payload_unchanged() {
        let payload = [0xffu8, 0x7f, 0x00, 0x12];
        let v: Value = serde_json::from_str(&append(&payload)).unwrap();
        assert_eq!(v["type"], "input_audio_buffer.append");
        assert_eq!(
            STANDARD.decode(v["audio"].as_str().unwrap()).unwrap(),
            payload
        );
    }

    #[test]
    fn server_events_parse_and_unknown_ones_are_other() {
        let e: ServerEvent = serde_json::from_str(
            r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"AAE="}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            ServerEvent::AudioDelta {
                response_id: "r".into(),
                item_id: "i".into(),
                delta: "AAE=".into()
            }
        );
        let e: ServerEvent =
            serde_json::from_str(r#"{"type":"rate_limits.updated","rate_limits":[]}"#).unwrap();
        assert_eq!(e, ServerEvent::Other);
        let done: ServerEvent = serde_json::from_str(
            r#"{"type":"response.done","response":{"id":"r","status":"completed","usage":{"total_tokens":9,"input_tokens":5,"output_tokens":4,"input_token_details":{"text_tokens":2,"audio_tokens":3,"cached_tokens":1},"output_token_details":{"text_tokens":1,"audio_tokens":3}}}}"#,
        )
        .unwrap();
        let ServerEvent::ResponseDone { response } = done else {
            panic!()
        };
        let usage = response.usage.unwrap();
        assert_eq!(usage.input_token_details.audio_tokens, 3);
        assert_eq!(usage.output_token_details.audio_tokens, 3);
    }
}
