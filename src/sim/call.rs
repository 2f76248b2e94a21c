//! [`Call`]: the handle a test (or the CLI) holds while the simulated caller
//! is on the line.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{ACCEPT_ENCODING, USER_AGENT};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self};

use super::codec::FRAME_SAMPLES;
use super::event::{Event, TimedEvent};
use super::protocol::TwilioWriter;
use super::report::Report;
use super::session::{Command, Outgoing, Session};
use super::shared::Shared;
use super::webhook::{VoiceAnswer, map_stream_url, post_voice};
use super::{SimConfig, SimError, random_sid};
use crate::twilio::signature;

/// Twilio gives up on a WebSocket that does not answer (error 31901); the
/// exact time is not documented.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A deadline that never comes in practice (a year), yet fits in an `Instant`.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// What to put in the upgrade's `X-Twilio-Signature` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SignatureHeader {
    /// Sign the stream URL as Twilio does, if the config has an auth token.
    #[default]
    Auto,
    /// Send no header (a forger without the token).
    Omit,
    /// Send this value (a replayed or wrong signature).
    Value(String),
}

/// How to open a stream, for tests that need to do it differently from
/// Twilio. [`StreamOptions::for_answer`] gives what Twilio would do.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The call's `CallSid` (in `start` and `stop`); `None` → the config's or
    /// a random one.
    pub call_sid: Option<String>,
    /// `AccountSid` in `start` and `stop`; `None` → the config's or random.
    pub account_sid: Option<String>,
    /// `start.customParameters`: the TwiML's `<Parameter>`s.
    pub custom_parameters: Vec<(String, String)>,
    /// The upgrade's signature header.
    pub signature: SignatureHeader,
    /// Send `start` right after `connected` (Twilio always does). When false,
    /// a test sends it later with [`Call::send_start`], or never.
    pub send_start: bool,
    /// A different `callSid` to claim in `start` only (a stream trying to
    /// attach to another call).
    pub start_call_sid: Option<String>,
    /// More headers on the upgrade (a browser's `Origin` and cookie, for a
    /// dashboard test call).
    pub headers: Vec<(String, String)>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            call_sid: None,
            account_sid: None,
            custom_parameters: Vec::new(),
            signature: SignatureHeader::Auto,
            send_start: true,
            start_call_sid: None,
            headers: Vec::new(),
        }
    }
}

impl StreamOptions {
    /// What Twilio does after this webhook answer: the same call and account,
    /// the TwiML's parameters, a proper signature.
    pub fn for_answer(answer: &VoiceAnswer) -> Self {
        StreamOptions {
            call_sid: Some(answer.call_sid.clone()),
            account_sid: Some(answer.account_sid.clone()),
            custom_parameters: answer
                .twiml
                .as_ref()
                .map(|t| t.stream_parameters.clone())
                .unwrap_or_default(),
            ..StreamOptions::default()
        }
    }
}

/// A call in progress. The caller's line runs in a background task from
/// the moment the stream opens until [`Call::hang_up`] or the server closes;
/// dropping the handle hangs up too.
pub struct Call {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
    /// Events before this index have been returned by [`Call::wait_for`].
    cursor: Mutex<usize>,
    call_sid: String,
    stream_sid: String,
}

impl Call {
    /// Places a call the way Twilio does: the signed webhook, then the signed
    /// WebSocket to the TwiML's stream, then `connected` and `start`. An
    /// answer without `<Connect><Stream>` is `SimError::NoStream`.
    pub async fn dial(cfg: &SimConfig) -> Result<Call, SimError> {
        let answer = post_voice(cfg).await?;
        let Some(url) = answer.stream_url().map(str::to_string) else {
            return Err(SimError::NoStream(Box::new(answer)));
        };
        let webhook = (answer.answered_at, answer.status);
        open(cfg, &url, StreamOptions::for_answer(&answer), Some(webhook)).await
    }

    /// Opens a stream to `twiml_url` (a URL as it appears in TwiML, mapped to
    /// `cfg.server`; it is also the URL signed) without the webhook: to reuse
    /// an old stream token, make one up, or tamper with the handshake.
    /// A non-101 answer is `SimError::Handshake` with its status.
    pub async fn connect_stream(
        cfg: &SimConfig,
        twiml_url: &str,
        options: StreamOptions,
    ) -> Result<Call, SimError> {
        open(cfg, twiml_url, options, None).await
    }

    /// This call's `CallSid`.
    pub fn call_sid(&self) -> &str {
        &self.call_sid
    }

    /// This stream's `streamSid`.
    pub fn stream_sid(&self) -> &str {
        &self.stream_sid
    }

    /// Queues an utterance (8 kHz PCM) on the caller's line, after anything
    /// already queued. Each call with audible sound is one caller turn.
    pub fn say(&self, pcm_8k: &[i16]) {
        let frames = pcm_8k.len().div_ceil(FRAME_SAMPLES);
        self.shared.update(|s| s.speech_pending += frames);
        let _ = self.commands.send(Command::Say(pcm_8k.to_vec()));
    }

    /// Waits until everything queued with [`Call::say`] has been sent
    /// (`Ended` if the call ended first). Speech is bounded, so no timeout.
    pub async fn wait_said(&self) -> Result<(), SimError> {
        self.shared
            .wait_until(FOREVER, "waiting for speech to be sent", |s| {
                (s.speech_pending == 0).then_some(())
            })
            .await
    }

    /// Presses a key now.
    pub fn dtmf(&self, digit: char) {
        let _ = self.commands.send(Command::Dtmf { digit, at: None });
    }

    /// Presses a key at `at` after the stream started (at once if past).
    pub fn dtmf_at(&self, digit: char, at: Duration) {
        let _ = self.commands.send(Command::Dtmf {
            digit,
            at: Some(at),
        });
    }

    async fn send(&self, what: Outgoing) -> Result<(), SimError> {
        let (done, sent) = oneshot::channel();
        self.commands
            .send(Command::Send { what, done })
            .map_err(|_| SimError::Ended)?;
        match sent.await {
            Ok(true) => Ok(()),
            _ => Err(SimError::Ended),
        }
    }

    /// Sends a `start` (again, or for the first time when the options
    /// skipped it). Returns once it is on the wire.
    pub async fn send_start(&self) -> Result<(), SimError> {
        self.send(Outgoing::Start).await
    }

    /// Sends any text frame, as is.
    pub async fn send_raw_text(&self, text: impl Into<String>) -> Result<(), SimError> {
        self.send(Outgoing::Text(text.into())).await
    }

    /// Sends a binary frame (Twilio never does).
    pub async fn send_raw_binary(&self, bytes: Vec<u8>) -> Result<(), SimError> {
        self.send(Outgoing::Binary(bytes)).await
    }

    /// Sends a text frame of exactly `len` bytes: a well-formed `media`
    /// message (μ-law silence, padded with JSON whitespace), so that a size
    /// limit is the only thing it can trip. Lengths too small to hold one
    /// are sent as that many spaces.
    pub async fn send_text_of_len(&self, len: usize) -> Result<(), SimError> {
        let text = media_of_len(&self.stream_sid, len);
        self.send(Outgoing::Text(text)).await
    }

    /// Waits for the next event matching `pred`. Each call continues after
    /// the event the previous call returned (the first looks from the start
    /// of the call), so waiting twice for a mark echo yields two echoes.
    pub async fn wait_for(
        &self,
        pred: impl Fn(&Event) -> bool,
        timeout: Duration,
    ) -> Result<TimedEvent, SimError> {
        let from = *self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let (index, event) = self
            .shared
            .wait_until(timeout, "waiting for an event", |s| {
                s.events
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, e)| pred(&e.event))
                    .map(|(i, e)| (i, e.clone()))
            })
            .await?;
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = index + 1;
        Ok(event)
    }

    /// Makes the next [`Call::wait_for`] look only at events recorded from now on.
    pub fn skip_seen(&self) {
        let len = self.shared.read(|s| s.events.len());
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = len;
    }

    /// Waits until the server's side has been quiet for `quiet`: nothing
    /// queued, no mark pending, no message received. Quiet before this call
    /// does not count (a server still thinking about the last utterance is
    /// quiet too), so this always waits at least `quiet`.
    pub async fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> Result<(), SimError> {
        let called = Instant::now();
        self.shared
            .wait_until(timeout, "waiting for the server to be quiet", |s| {
                (s.last_busy.max(called).elapsed() >= quiet).then_some(())
            })
            .await
    }

    /// The timeline so far.
    pub fn events(&self) -> Vec<TimedEvent> {
        self.shared.read(|s| s.events.clone())
    }

    /// What the caller has heard so far (8 kHz PCM).
    pub fn heard(&self) -> Vec<i16> {
        self.shared.read(|s| s.heard.clone())
    }

    /// The WebSocket has closed (either side).
    pub fn is_closed(&self) -> bool {
        self.shared
            .read(|s| s.ended || s.events.iter().any(|e| matches!(e.event, Event::Closed(_))))
    }

    /// The simulator's own health so far: ticks that ran late, and the worst
    /// lateness. Non-zero means the machine running the simulator was busy.
    pub fn tick_health(&self) -> (u64, Duration) {
        self.shared.read(|s| (s.late_ticks, s.max_tick_lateness))
    }

    /// Time since the stream started.
    pub fn elapsed(&self) -> Duration {
        self.shared.read(|s| s.origin.elapsed())
    }

    /// Hangs up (`stop`, then a normal close) and returns the report. If the
    /// server already closed, just returns the report.
    pub async fn hang_up(self) -> Result<Report, SimError> {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::HangUp { done }).is_ok() {
            let _ = finished.await;
        }
        let _ = self.task.await;
        let (events, heard) = self.shared.read(|s| (s.events.clone(), s.heard.clone()));
        Ok(Report::new(self.call_sid, self.stream_sid, events, heard))
    }
}

/// A `media` message of exactly `len` bytes.
fn media_of_len(stream_sid: &str, len: usize) -> String {
    let head = r#"{"event":"media","sequenceNumber":"0","media":{"track":"inbound","chunk":"0","timestamp":"0","payload":""#;
    let tail = format!(r#""}},"streamSid":"{stream_sid}"}}"#);
    let room = len.saturating_sub(head.len() + tail.len());
    if len < head.len() + tail.len() {
        return " ".repeat(len);
    }
    let payload = "/".repeat(room / 4 * 4);
    let pad = " ".repeat(room % 4);
    format!("{head}{payload}{tail}{pad}")
}

async fn open(
    cfg: &SimConfig,
    twiml_url: &str,
    options: StreamOptions,
    webhook: Option<(Instant, u16)>,
) -> Result<Call, SimError> {
    let target = map_stream_url(twiml_url, cfg.public_base(), cfg.server_base());
    let ws_error = |e: tungstenite::Error| SimError::WebSocket(Box::new(e));
    let mut request = target.as_str().into_client_request().map_err(ws_error)?;
    let headers = request.headers_mut();
    // As in a captured Twilio upgrade.
    headers.insert(USER_AGENT, HeaderValue::from_static("Twilio.TmeWs/1.0"));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let signature = match &options.signature {
        SignatureHeader::Auto => cfg
            .auth_token
            .as_ref()
            .map(|token| signature::compute(token, twiml_url, &[])),
        SignatureHeader::Omit => None,
        SignatureHeader::Value(v) => Some(v.clone()),
    };
    if let Some(sig) = signature {
        let value = HeaderValue::from_str(&sig)
            .map_err(|_| SimError::Config("signature is not a valid header value".into()))?;
        headers.insert("X-Twilio-Signature", value);
    }
    for (name, value) in &options.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) else {
            return Err(SimError::Config(format!("not a header: {name}")));
        };
        headers.insert(name, value);
    }
    let connecting = tokio_tungstenite::connect_async_with_config(request, None, true);
    let (ws, _response) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| SimError::Timeout(CONNECT_TIMEOUT, "for the WebSocket upgrade"))?
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => SimError::Handshake {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            },
            other => ws_error(other),
        })?;
    let origin = Instant::now();

    let call_sid = options
        .call_sid
        .or_else(|| cfg.call_sid.clone())
        .unwrap_or_else(|| random_sid("CA"));
    let account_sid = options
        .account_sid
        .or_else(|| cfg.account_sid.clone())
        .unwrap_or_else(|| random_sid("AC"));
    let stream_sid = random_sid("MZ");
    let shared = Shared::new(origin);
    shared.update(|s| {
        if let Some((at, status)) = webhook {
            s.push(at, Event::WebhookAnswered { status });
        }
        s.push(origin, Event::StreamConnected);
    });
    let writer = TwilioWriter::new(&account_sid, &call_sid, &stream_sid);
    let mut session = Session::new(
        ws,
        shared.clone(),
        origin,
        writer,
        options.start_call_sid,
        options.custom_parameters,
        cfg.fast,
    );
    session.greet(options.send_start).await;
    let (commands, receiver) = mpsc::unbounded_channel();
    let task = tokio::spawn(session.run(receiver));
    Ok(Call {
        shared,
        commands,
        task,
        cursor: Mutex::new(0),
        call_sid,
        stream_sid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_of_len_is_exact_and_well_formed() {
        for len in [200, 201, 202, 203, 1000, 65_536, 1 << 20] {
            let text = media_of_len("MZ1", len);
            assert_eq!(text.len(), len);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["event"], "media");
        }
        assert_eq!(media_of_len("MZ1", 5), "     ");
    }
}
