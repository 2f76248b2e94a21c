//! What the self-test concludes from what it saw: one [`Check`] per thing a
//! user's phone calls depend on. Pure functions of the observations, so that
//! each verdict, failures included, is tested without a server.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::audio::mulaw;
use crate::sim::{Event, Report, VoiceAnswer};

/// One verdict, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short name, the same on every run (scripts grep for it).
    pub name: &'static str,
    pub passed: bool,
    /// What was seen, with a figure: enough to act on when it failed.
    pub detail: String,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            passed: true,
            detail: detail.into(),
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            passed: false,
            detail: detail.into(),
        }
    }

    /// Passes with `passed` when none of `problems` is present, else fails
    /// with `failed` followed by the problems found.
    fn unless(
        name: &'static str,
        problems: impl IntoIterator<Item = Option<String>>,
        passed: impl FnOnce() -> String,
        failed: &str,
    ) -> Check {
        let problems: Vec<String> = problems.into_iter().flatten().collect();
        if problems.is_empty() {
            Check::pass(name, passed())
        } else {
            Check::fail(name, format!("{failed} {}", problems.join(", ")))
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok  " } else { "FAIL" };
        write!(f, "{mark} {:<9} {}", self.name, self.detail)
    }
}

/// Whole milliseconds, for the figures.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `GET /health`: up, in echo mode (no AI key got in), checking signatures.
pub fn health(status: u16, body: &Value, took: Duration) -> Check {
    const NAME: &str = "health";
    if status != 200 {
        return Check::fail(NAME, format!("/health answered HTTP {status}: {body}"));
    }
    let mode = body["mode"].as_str().unwrap_or("?");
    Check::unless(
        NAME,
        [
            (body["status"] != "ok").then(|| format!("status {}", body["status"])),
            (mode != "echo").then(|| format!("mode {mode}, expected echo")),
            (body["signature_checks"] != true).then(|| "signature checks are off".to_string()),
        ],
        || {
            format!(
                "/health answered in {} ms: echo mode, signature checks on",
                ms(took)
            )
        },
        "/health says",
    )
}

/// An unsigned `POST /voice` must be refused, or anyone could place calls.
pub fn unsigned_refused(status: u16) -> Check {
    const NAME: &str = "signature";
    if status == 403 {
        Check::pass(NAME, "an unsigned /voice webhook was refused (HTTP 403)")
    } else {
        Check::fail(
            NAME,
            format!("an unsigned /voice webhook was answered HTTP {status}, expected 403"),
        )
    }
}

/// The signed `POST /voice`: TwiML that connects a stream under the public
/// URL's `wss://` form.
pub fn webhook(answer: &VoiceAnswer, ws_public_base: &str) -> Check {
    const NAME: &str = "webhook";
    let expected = format!("{ws_public_base}/stream/");
    match answer.stream_url() {
        Some(url) if answer.status == 200 && url.starts_with(&expected) => Check::pass(
            NAME,
            format!(
                "the signed /voice webhook answered TwiML <Connect><Stream> to {expected}… in {} ms",
                ms(answer.took)
            ),
        ),
        Some(url) => Check::fail(
            NAME,
            format!("the stream URL is {url:?}, expected one under {expected}"),
        ),
        None => Check::fail(
            NAME,
            format!(
                "the signed /voice webhook answered HTTP {} without a stream ({})",
                answer.status,
                answer.summary()
            ),
        ),
    }
}

/// The WebSocket upgrade was accepted and the server took the `start`
/// message: `/api/status` shows the call with this stream.
pub fn stream(api_status: &Value, call_sid: &str, stream_sid: &str, took: Duration) -> Check {
    const NAME: &str = "stream";
    let calls = api_status["calls"].as_array().map(Vec::as_slice);
    let ours = calls
        .unwrap_or_default()
        .iter()
        .find(|c| c["call_sid"] == call_sid);
    match ours {
        Some(c) if c["stream_sid"] == stream_sid => Check::pass(
            NAME,
            format!(
                "the signed WebSocket upgrade was accepted in {} ms and the call is live",
                ms(took)
            ),
        ),
        Some(c) => Check::fail(
            NAME,
            format!(
                "the call is registered but its stream is {}, not the one opened",
                c["stream_sid"]
            ),
        ),
        None => Check::fail(
            NAME,
            format!("/api/status does not show the call: {api_status}"),
        ),
    }
}

/// The caller hears audio after speaking: echo mode plays their words back.
pub fn echo(report: &Report) -> Check {
    const NAME: &str = "echo";
    let Some(turn) = report.turns.first() else {
        return Check::fail(NAME, "the caller's speech was never sent");
    };
    match turn.voice_to_voice_ms {
        Some(v2v) => Check::pass(
            NAME,
            format!(
                "the caller heard their words back {v2v} ms after they stopped speaking (voice-to-voice)"
            ),
        ),
        None => Check::fail(
            NAME,
            format!(
                "the caller spoke for {:.1} s and heard nothing back{}",
                speech_secs(turn.speech_start_ms, turn.speech_end_ms),
                closed_early(report)
            ),
        ),
    }
}

fn speech_secs(start_ms: i64, end_ms: Option<i64>) -> f64 {
    end_ms.map_or(0.0, |end| (end - start_ms) as f64 / 1000.0)
}

fn closed_early(report: &Report) -> String {
    match &report.close {
        Some(c) if c.by == crate::sim::Closer::Server => format!(" ({c})"),
        _ => String::new(),
    }
}

/// The loud part of a recording: from the first to the last sample above a
/// small threshold. The echo keeps only a bounded part of the silence around
/// speech, so that is all that can be looked for.
pub fn speech_part(pcm: &[i16]) -> &[i16] {
    let loud = |s: &i16| s.unsigned_abs() > 300;
    let first = pcm.iter().position(loud).unwrap_or(0);
    let last = pcm.iter().rposition(loud).map_or(0, |i| i + 1);
    &pcm[first..last.max(first)]
}

/// Where `needle` occurs in `haystack`, sample for sample.
fn find(haystack: &[i16], needle: &[i16]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The echo is bit-exact: what the caller heard holds their own speech
/// sample for sample after μ-law both ways (caller → server → caller). A
/// codec or framing fault on this machine would break it.
pub fn bit_exact(heard: &[i16], said: &[i16]) -> Check {
    const NAME: &str = "mulaw";
    let spoken = mulaw::decode(&mulaw::encode(speech_part(said)));
    let secs = spoken.len() as f64 / f64::from(crate::audio::SAMPLE_RATE);
    if find(heard, &spoken).is_some() {
        Check::pass(
            NAME,
            format!(
                "the echo holds the caller's {secs:.1} s of speech bit for bit (μ-law both ways)"
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "the caller's {secs:.1} s of speech is not in what they heard, sample for sample"
            ),
        )
    }
}

/// Playback was acknowledged (a mark echoed after its audio played) and the
/// server sent nothing Twilio would drop.
pub fn marks(report: &Report) -> Check {
    const NAME: &str = "marks";
    let played = report
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::MarkEchoed { cleared: false, .. }))
        .count();
    let errors = report.protocol_errors();
    match (played, errors.first()) {
        (0, _) => Check::fail(NAME, "no mark came back after the echo played"),
        (n, None) => Check::pass(
            NAME,
            format!("{n} mark(s) echoed after their audio played, 0 protocol errors"),
        ),
        (_, Some(first)) => Check::fail(
            NAME,
            format!("{} protocol error(s), the first: {first}", errors.len()),
        ),
    }
}

/// The call's record as `GET /api/calls/{sid}` answers it: finished, with
/// Twilio's final status, the caller's hang-up and the one turn.
pub fn record(status: u16, body: &Value, took: Duration) -> Check {
    const NAME: &str = "record";
    if status != 200 {
        return Check::fail(
            NAME,
            format!("GET /api/calls/<sid> answered HTTP {status}: {body}"),
        );
    }
    let turns = body["turns"].as_array().map_or(0, Vec::len);
    Check::unless(
        NAME,
        [
            (body["status"] != "completed").then(|| format!("status {}", body["status"])),
            body["ended_at"]
                .is_null()
                .then(|| "no end time".to_string()),
            (body["end_reason"] != "caller_hung_up")
                .then(|| format!("end reason {}", body["end_reason"])),
            (turns != 1).then(|| format!("{turns} turns, expected 1")),
        ],
        || {
            format!(
                "stored in SQLite {} ms after hang-up: completed, caller_hung_up, 1 turn",
                ms(took)
            )
        },
        "the stored call has",
    )
}

/// The agent path, against fake providers: the caller heard an answer after
/// they stopped speaking, and the call's record (`GET /api/calls/{sid}`)
/// holds their turn with the fake's `transcript` and `answer`.
pub fn agent(report: &Report, record: &Value, said: (&str, &str)) -> Check {
    const NAME: &str = "agent";
    let (transcript, answer) = said;
    let Some(turn) = report.turns.first() else {
        return Check::fail(NAME, "the caller's speech was never sent");
    };
    let Some(v2v) = turn.voice_to_voice_ms else {
        return Check::fail(
            NAME,
            format!(
                "the caller spoke for {:.1} s and heard no answer{}",
                speech_secs(turn.speech_start_ms, turn.speech_end_ms),
                closed_early(report)
            ),
        );
    };
    let turns = record["turns"].as_array().map(Vec::as_slice);
    let turns = turns.unwrap_or_default();
    if turns
        .iter()
        .any(|t| t["caller"] == transcript && t["agent_said"] == answer)
    {
        return Check::pass(
            NAME,
            format!(
                "the caller heard the agent answer {v2v} ms after they stopped speaking; the record has {transcript:?} → {answer:?} (fake OpenAI-compatible providers on 127.0.0.1)"
            ),
        );
    }
    let stored = match turns {
        _ if !record.is_object() => format!("no record: {record}"),
        [] => "no turns".to_string(),
        turns => turns
            .iter()
            .map(|t| format!("{} → {}", t["caller"], t["agent_said"]))
            .collect::<Vec<_>>()
            .join(", "),
    };
    Check::fail(
        NAME,
        format!("the stored call has no turn {transcript:?} → {answer:?} ({stored})"),
    )
}

/// The two-channel recording (caller left, agent right) was written to disk
/// and is served back as a WAV at least as long as what the caller said.
pub fn recording(status: u16, wav: &[u8], min: Duration) -> Check {
    const NAME: &str = "recording";
    if status != 200 {
        return Check::fail(NAME, format!("recording.wav answered HTTP {status}"));
    }
    let reader = match hound::WavReader::new(wav) {
        Ok(r) => r,
        Err(e) => return Check::fail(NAME, format!("recording.wav is not a WAV file: {e}")),
    };
    let spec = reader.spec();
    let secs = f64::from(reader.duration()) / f64::from(spec.sample_rate.max(1));
    if spec.channels != 2 {
        Check::fail(
            NAME,
            format!("recording.wav has {} channel(s), expected 2", spec.channels),
        )
    } else if secs < min.as_secs_f64() {
        Check::fail(
            NAME,
            format!("recording.wav holds {secs:.1} s, shorter than the call"),
        )
    } else {
        Check::pass(
            NAME,
            format!("a {secs:.1} s two-channel WAV, written and served back"),
        )
    }
}

#[cfg(test)]
mod tests;
