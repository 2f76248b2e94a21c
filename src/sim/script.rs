//! A scripted call: what `pronto call` does, usable from tests too.
//!
//! The caller behaves politely: waits for the greeting to finish, says an
//! utterance, waits for the reply to finish, says the next one, and after the
//! last one stays on the line until the server has been quiet for the tail.

use std::path::Path;
use std::time::Duration;

use super::event::Event;
use super::report::Report;
use super::{Call, SimConfig, SimError};

/// What the caller does on a scripted call.
#[derive(Debug, Clone)]
pub struct Script {
    /// The caller's utterances (8 kHz PCM), one per turn.
    pub utterances: Vec<Vec<i16>>,
    /// Key presses, at times since the stream started.
    pub dtmf: Vec<(Duration, char)>,
    /// How long to wait for a greeting to start before speaking anyway.
    pub greeting_timeout: Duration,
    /// How long to wait for a reply to start before the next utterance.
    pub reply_timeout: Duration,
    /// Quiet needed after a greeting or reply before the caller speaks.
    pub turn_gap: Duration,
    /// After the last utterance, hang up once the server has been quiet
    /// (nothing queued, no mark pending, nothing received) this long.
    pub tail: Duration,
    /// Hang up after this long whatever happens.
    pub max_call: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            utterances: Vec::new(),
            dtmf: Vec::new(),
            greeting_timeout: Duration::from_secs(3),
            reply_timeout: Duration::from_secs(15),
            turn_gap: Duration::from_millis(800),
            tail: Duration::from_secs(4),
            max_call: Duration::from_secs(120),
        }
    }
}

/// Reads a WAV file (any rate, mono or the first channel) as 8 kHz PCM.
pub fn load_wav_8k(path: &Path) -> Result<Vec<i16>, SimError> {
    super::codec::read_wav_8k(path)
}

/// Reads WAV bytes in memory (any rate, channels mixed to mono) as 8 kHz
/// PCM, e.g. a recording built into the binary.
pub fn load_wav_8k_from_bytes(bytes: &[u8]) -> Result<Vec<i16>, SimError> {
    super::codec::read_wav_bytes_8k(bytes)
}

/// Places the call, plays the script, hangs up, returns the report. Only a
/// call that cannot be placed is an error; whatever the server does once
/// connected is in the report.
pub async fn run(cfg: &SimConfig, script: &Script) -> Result<Report, SimError> {
    let call = Call::dial(cfg).await?;
    for &(at, digit) in &script.dtmf {
        call.dtmf_at(digit, at);
    }
    let deadline = tokio::time::Instant::now() + script.max_call;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    for (i, utterance) in script.utterances.iter().enumerate() {
        let wait = if i == 0 {
            script.greeting_timeout
        } else {
            script.reply_timeout
        };
        if !let_the_server_finish(&call, wait.min(left()), script.turn_gap, left()).await {
            break;
        }
        call.say(utterance);
        if call.wait_said().await.is_err() {
            break;
        }
        // The reply is what starts after this utterance's speech ended, which
        // may be before its trailing silence has been sent: move the cursor to
        // the speech end, not to now.
        let turn = i + 1;
        let spoke = call
            .wait_for(|e| *e == Event::SpeechEnd { turn }, Duration::ZERO)
            .await;
        if spoke.is_err() {
            // A silent utterance: anything from now on is the reply.
            call.skip_seen();
        }
    }
    // Ended or out of time: either way, time to hang up.
    let _ = call.wait_quiet(script.tail, left()).await;
    call.hang_up().await
}

/// Waits up to `start_within` for the server to start speaking (the next
/// onset not yet consumed), and if it does, until it has been quiet for
/// `gap`. False if the call ended.
async fn let_the_server_finish(
    call: &Call,
    start_within: Duration,
    gap: Duration,
    limit: Duration,
) -> bool {
    match call
        .wait_for(|e| *e == Event::AudioHeardStart, start_within)
        .await
    {
        Ok(_) => !matches!(call.wait_quiet(gap, limit).await, Err(SimError::Ended)),
        Err(SimError::Ended) => false,
        Err(_) => true,
    }
}
