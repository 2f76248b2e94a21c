//! Range and consistency checks of the tunables, after loading: each failure
//! is one line naming the setting.

use std::net::IpAddr;

use super::{ConfigError, Tunables, agent, err};

pub(super) fn in_range<T: PartialOrd + std::fmt::Display>(
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
        if let Some(bad) = list.iter().find(|n| !agent::is_e164(n)) {
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
        "store.caller_memory_summaries",
        t.store.caller_memory_summaries,
        1,
        20,
    )?;
    agent::validate(&t.agent, &t.lines, &t.stt, &t.llm, &t.tts)
}
