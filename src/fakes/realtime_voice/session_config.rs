//! The session's configuration: the default that `session.created` shows,
//! and `session.update` checked and merged as the GA endpoint does (only
//! the fields present change; a beta-shaped field is refused, not ignored),
//! per <https://developers.openai.com/api/docs/api-reference/realtime-client-events>.

use serde_json::{Value, json};

use crate::fakes::openai_realtime_wire::{Refusal, object, refusal, unknown, update_fields};

/// `server_vad`'s silence when the session gives none (ms).
const SERVER_VAD_MS: u64 = 200;

/// Top-level keys of the beta session shape, refused by the GA endpoint.
const BETA_KEYS: [&str; 9] = [
    "input_audio_format",
    "output_audio_format",
    "modalities",
    "voice",
    "turn_detection",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "temperature",
    "max_response_output_tokens",
];
/// Top-level keys of a GA `session.update` (`type` aside).
const GA_KEYS: [&str; 13] = [
    "model",
    "output_modalities",
    "instructions",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "prompt",
    "include",
    "reasoning",
    "parallel_tool_calls",
];
const INPUT_KEYS: [&str; 4] = [
    "format",
    "transcription",
    "noise_reduction",
    "turn_detection",
];
const OUTPUT_KEYS: [&str; 3] = ["format", "voice", "speed"];

/// A new session: PCM 24 kHz both ways, voice `alloy`, `server_vad`.
pub(super) fn default_session(model: &str, index: usize) -> Value {
    json!({
        "type": "realtime",
        "object": "realtime.session",
        "id": format!("sess_fake{index}"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "truncation": "auto",
        "prompt": null,
        "include": null,
        "expires_at": 0,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": turn_detection_defaults("server_vad"),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
    })
}

fn turn_detection_defaults(kind: &str) -> Value {
    if kind == "semantic_vad" {
        json!({"type": "semantic_vad", "eagerness": "auto",
               "create_response": true, "interrupt_response": true})
    } else {
        json!({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
               "silence_duration_ms": 200, "idle_timeout_ms": null,
               "create_response": true, "interrupt_response": true})
    }
}

/// Applies `update` (the event's `session`) to `session`, or changes
/// nothing and says why not. `keep_pcm`: the formats do not change (a
/// fault); `voice_locked`: audio has gone out, the voice is fixed.
pub(super) fn apply_update(
    session: &mut Value,
    update: &Value,
    keep_pcm: bool,
    voice_locked: bool,
) -> Result<(), Refusal> {
    let update = update_fields(
        update,
        &BETA_KEYS,
        "realtime",
        "A realtime session cannot change its type.",
    )?;
    if let Some(key) = update
        .keys()
        .find(|k| *k != "type" && !GA_KEYS.contains(&k.as_str()))
    {
        return Err(unknown(&format!("session.{key}")));
    }
    let mut next = session.clone();
    for (key, value) in update {
        match key.as_str() {
            "type" => {}
            "audio" => merge_audio(&mut next, value, keep_pcm)?,
            "model" if value != &session["model"] => {
                return Err(refusal(
                    "invalid_value",
                    "The model of a session cannot be changed.".into(),
                    "session.model",
                ));
            }
            _ => next[key.as_str()] = value.clone(),
        }
    }
    if voice_locked && next["audio"]["output"]["voice"] != session["audio"]["output"]["voice"] {
        return Err(refusal(
            "cannot_update_voice",
            "Cannot update a conversation's voice if assistant audio is present.".into(),
            "session.audio.output.voice",
        ));
    }
    *session = next;
    Ok(())
}

fn merge_audio(session: &mut Value, audio: &Value, keep_pcm: bool) -> Result<(), Refusal> {
    let audio = object(audio, "session.audio")?;
    if let Some(key) = audio.keys().find(|k| *k != "input" && *k != "output") {
        return Err(unknown(&format!("session.audio.{key}")));
    }
    for (side, keys) in [("input", &INPUT_KEYS[..]), ("output", &OUTPUT_KEYS[..])] {
        let Some(fields) = audio.get(side) else {
            continue;
        };
        let prefix = format!("session.audio.{side}");
        let fields = object(fields, &prefix)?;
        if let Some(key) = fields.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(unknown(&format!("{prefix}.{key}")));
        }
        for (key, value) in fields {
            let param = format!("{prefix}.{key}");
            let value = match key.as_str() {
                "format" => format(value, &param)?,
                "turn_detection" => turn_detection(value, &param)?,
                _ => value.clone(),
            };
            if key == "format" && keep_pcm {
                continue;
            }
            session["audio"][side][key.as_str()] = value;
        }
    }
    Ok(())
}

/// A format object, normalized (`audio/pcm` gets its rate).
fn format(value: &Value, param: &str) -> Result<Value, Refusal> {
    let fields = object(value, param)?;
    match fields.get("type").and_then(Value::as_str) {
        Some("audio/pcmu") => Ok(json!({"type": "audio/pcmu"})),
        Some("audio/pcma") => Ok(json!({"type": "audio/pcma"})),
        Some("audio/pcm") => match fields.get("rate").map(Value::as_u64) {
            None | Some(Some(24000)) => Ok(json!({"type": "audio/pcm", "rate": 24000})),
            Some(_) => Err(refusal(
                "invalid_value",
                "Invalid value for 'rate': only 24000 is supported.".into(),
                &format!("{param}.rate"),
            )),
        },
        other => Err(refusal(
            "invalid_value",
            format!(
                "Invalid value: '{}'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
                other.unwrap_or_default()
            ),
            &format!("{param}.type"),
        )),
    }
}

/// `null`, or a detection object with the service's defaults filled in.
fn turn_detection(value: &Value, param: &str) -> Result<Value, Refusal> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let fields = object(value, param)?;
    let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "server_vad" && kind != "semantic_vad" {
        return Err(refusal(
            "invalid_value",
            format!(
                "Invalid value: '{kind}'. Supported values are: 'server_vad' and 'semantic_vad'."
            ),
            &format!("{param}.type"),
        ));
    }
    let mut detection = turn_detection_defaults(kind);
    for (key, value) in fields {
        detection[key.as_str()] = value.clone();
    }
    Ok(detection)
}

/// The silence that ends an utterance under the session's detection;
/// `None`: the client commits.
pub(super) fn end_silence(session: &Value) -> Option<u64> {
    crate::fakes::openai_realtime_wire::end_silence(session, SERVER_VAD_MS)
}

/// `create_response` / `interrupt_response` of the detection (false when
/// there is none).
pub(super) fn detection_flag(session: &Value, flag: &str) -> bool {
    let detection = &session["audio"]["input"]["turn_detection"];
    !detection.is_null() && detection[flag].as_bool().unwrap_or(true)
}

/// Bytes per ms of a format: 8 for G.711 at 8 kHz, 48 for PCM16 24 kHz.
pub(super) fn bytes_per_ms(format: &Value) -> usize {
    match format["type"].as_str() {
        Some("audio/pcmu" | "audio/pcma") => 8,
        _ => 48,
    }
}
