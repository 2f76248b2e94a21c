//! Range and consistency checks of the tunables, after loading: each failure
//! is one line naming the setting.

use std::net::IpAddr;

use std::collections::BTreeMap;

use super::TurnSection;
use super::agent::{AgentSettings, Lines, LlmSection, SttSection, TtsSection};
use super::{ConfigError, Tunables, err};
use crate::model::is_e164;

fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return err(format!("{name} must be between {lo} and {hi} (it is {v})"));
    }
    Ok(())
}

pub(super) fn validate(t: &Tunables) -> Result<(), ConfigError> {
    if t.server.bind.parse::<IpAddr>().is_err() {
        return err(format!(
            "server.bind (or BIND) must be an IP address such as 0.0.0.0 (it is {:?})",
            t.server.bind
        ));
    }
    in_range(
        "server.max_concurrent_calls",
        t.server.max_concurrent_calls,
        1,
        100_000,
    )?;
    in_range(
        "server.drain_timeout_secs",
        t.server.drain_timeout_secs,
        0,
        86_400,
    )?;
    in_range(
        "server.max_connections",
        t.server.max_connections,
        1,
        1_000_000,
    )?;
    // 0 would turn the timeouts off, which is the defect they exist to fix.
    in_range(
        "server.header_timeout_secs",
        t.server.header_timeout_secs,
        1,
        300,
    )?;
    in_range(
        "server.body_timeout_secs",
        t.server.body_timeout_secs,
        1,
        300,
    )?;
    in_range(
        "twilio.stream_token_ttl_secs",
        t.twilio.stream_token_ttl_secs,
        5,
        3600,
    )?;
    in_range(
        "twilio.start_timeout_secs",
        t.twilio.start_timeout_secs,
        1,
        120,
    )?;
    in_range(
        "twilio.max_message_bytes",
        t.twilio.max_message_bytes,
        1024,
        1 << 20,
    )?;
    // Twilio's <Say> limit is 4096 characters for basic voices, 3000 for Polly.
    for (name, text) in [
        ("twilio.pre_stream_say", &t.twilio.pre_stream_say),
        ("twilio.busy_message", &t.twilio.busy_message),
    ] {
        in_range(name, text.chars().count(), 0, 3000)?;
    }
    if t.twilio.busy_message.trim().is_empty() {
        return err("twilio.busy_message must not be empty: it is what callers above the cap hear");
    }
    in_range("call.barge_in_min_ms", t.call.barge_in_min_ms, 20, 5000)?;
    in_range(
        "call.max_playback_lead_ms",
        t.call.max_playback_lead_ms,
        100,
        10_000,
    )?;
    t.vad.validate().map_err(ConfigError)?;
    for (name, list) in [
        ("limits.allow_numbers", &t.limits.allow_numbers),
        ("limits.deny_numbers", &t.limits.deny_numbers),
    ] {
        if let Some(bad) = list.iter().find(|n| !is_e164(n)) {
            return err(format!(
                "{name}: {bad:?} is not an E.164 number such as +15551234567"
            ));
        }
    }
    in_range(
        "limits.max_call_duration_secs",
        t.limits.max_call_duration_secs,
        0,
        86_400,
    )?;
    in_range(
        "limits.idle_prompt_secs",
        t.limits.idle_prompt_secs,
        0,
        3600,
    )?;
    in_range(
        "limits.idle_hangup_secs",
        t.limits.idle_hangup_secs,
        0,
        3600,
    )?;
    in_range(
        "store.recordings_min_free_mb",
        t.store.recordings_min_free_mb,
        0,
        1 << 30,
    )?;
    in_range(
        "store.caller_memory_summaries",
        t.store.caller_memory_summaries,
        1,
        20,
    )?;
    turn(&t.turn)?;
    agent(&t.agent, &t.lines, &t.stt, &t.llm, &t.tts)
}

/// `[turn]`: a known detector and waits that make sense together.
fn turn(turn: &TurnSection) -> Result<(), ConfigError> {
    if !["provider", "model", "silence"].contains(&turn.detector.as_str()) {
        return err(format!(
            "turn.detector must be \"provider\", \"model\" or \"silence\" (it is {:?})",
            turn.detector
        ));
    }
    in_range("turn.stop_ms", turn.stop_ms, 60, 2000)?;
    // The ceiling is the local endpointer's hangover under model/provider.
    in_range("turn.max_wait_ms", turn.max_wait_ms, 100, 5000)?;
    if turn.max_wait_ms <= turn.stop_ms {
        return err(format!(
            "turn.max_wait_ms ({}) must be longer than turn.stop_ms ({})",
            turn.max_wait_ms, turn.stop_ms
        ));
    }
    in_range("turn.threshold", turn.threshold, 0.05, 0.95)?;
    in_range("turn.final_wait_ms", turn.final_wait_ms, 100, 10_000)?;
    Ok(())
}

/// The agent's sections: its language and its lines, its stages' providers
/// and limits.
fn agent(
    agent: &AgentSettings,
    lines: &BTreeMap<String, Lines>,
    stt: &SttSection,
    llm: &LlmSection,
    tts: &TtsSection,
) -> Result<(), ConfigError> {
    let language = &agent.language;
    if language.len() < 2
        || !language
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-')
    {
        return err(format!(
            "agent.language must be a language code such as \"en\" or \"it\" (it is {language:?})"
        ));
    }
    if !lines.contains_key(language) {
        return err(format!(
            "agent.language = {language:?} has no [lines.{language}] with greeting, fallback, goodbye, transfer, still_there and closing"
        ));
    }
    for (lang, l) in lines {
        for (key, text) in [
            ("fallback", &l.fallback),
            ("goodbye", &l.goodbye),
            ("transfer", &l.transfer),
        ] {
            if text.trim().is_empty() {
                return err(format!("lines.{lang}.{key} must not be empty"));
            }
        }
    }
    in_range("agent.max_history_turns", agent.max_history_turns, 1, 200)?;
    in_range("agent.dtmf_timeout_ms", agent.dtmf_timeout_ms, 200, 30_000)?;
    in_range("agent.tts_lookahead", agent.tts_lookahead, 0, 4)?;
    let number = &agent.transfer_number;
    if !number.is_empty() && !is_e164(number) {
        return err(format!(
            "agent.transfer_number must be an E.164 number such as +15551234567 (it is {number:?})"
        ));
    }
    in_range("stt.timeout_ms", stt.timeout_ms, 500, 120_000)?;
    if !["server_vad", "semantic_vad"].contains(&stt.openai_turn_detection.as_str()) {
        return err(format!(
            "stt.openai_turn_detection must be \"server_vad\" or \"semantic_vad\" (it is {:?})",
            stt.openai_turn_detection
        ));
    }
    if !["", "anthropic", "openai"].contains(&llm.provider.as_str()) {
        return err(format!(
            "llm.provider must be \"anthropic\", \"openai\" or empty (it is {:?})",
            llm.provider
        ));
    }
    in_range("llm.max_tokens", llm.max_tokens, 16, 32_000)?;
    in_range("llm.temperature", llm.temperature, -1.0, 2.0)?;
    in_range(
        "llm.first_token_timeout_ms",
        llm.first_token_timeout_ms,
        500,
        120_000,
    )?;
    if !["openai", "elevenlabs"].contains(&tts.provider.as_str()) {
        return err(format!(
            "tts.provider must be \"openai\" or \"elevenlabs\" (it is {:?})",
            tts.provider
        ));
    }
    in_range("tts.speed", tts.speed, 0.25, 4.0)?;
    in_range(
        "tts.first_byte_timeout_ms",
        tts.first_byte_timeout_ms,
        500,
        120_000,
    )
}
