//! Pronto's Prometheus metrics: every family's name, HELP text, histogram
//! buckets and labels, and the functions the rest of Pronto calls to record
//! them. `GET /metrics` (`http/scrape.rs`) serves [`Metrics::render`].
//!
//! Names follow <https://prometheus.io/docs/practices/naming/>: the
//! `pronto_` prefix, base units in the name (`_seconds`), `_total` on
//! counters, build metadata in an `_info` gauge. Every label is bounded: a
//! direction, an end reason, a stage, a provider's name from the code, never
//! a call SID or a phone number (those are in the call history and the logs).
//! Every `_seconds` family is a histogram with explicit buckets, so that it
//! can be aggregated across replicas (without buckets the exporter would
//! render a summary, which cannot).
//!
//! One recorder serves the whole process (the `metrics` crate's global one),
//! installed on first use: several servers in one process (the tests,
//! `pronto self-test`) share it, so what it counts is the process's.
//!
//! Cost: the handles of every fixed label set are registered once and kept
//! in a static, so recording is an atomic add on a handle; nothing here
//! formats a label or allocates on the path of a media frame. The pure cores
//! (`call/machine.rs`, `call/playback.rs`) never call in here: they fill a
//! [`PlaybackSample`] that the session hands over.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::model::{CallEvent, Direction, EndReason, TurnDecider, TurnRecord};

const BUILD_INFO: &str = "pronto_build_info";
const CALLS_STARTED: &str = "pronto_calls_started_total";
const CALLS_ENDED: &str = "pronto_calls_ended_total";
const ACTIVE_CALLS: &str = "pronto_active_calls";
const CALL_DURATION: &str = "pronto_call_duration_seconds";
const TURN_STAGE: &str = "pronto_turn_stage_seconds";
const TURN_RESPONSE: &str = "pronto_turn_response_seconds";
const TURN_OVERHEAD: &str = "pronto_turn_overhead_seconds";
const TURNS: &str = "pronto_turns_total";
const BARGE_INS: &str = "pronto_barge_ins_total";
const PROVIDER_REQUESTS: &str = "pronto_provider_requests_total";
const TWILIO_BAD_MESSAGES: &str = "pronto_twilio_bad_messages_total";
const TWILIO_WEBHOOKS: &str = "pronto_twilio_webhooks_total";
const PLAYBACK_UNDERRUNS: &str = "pronto_playback_underruns_total";
const MARK_ROUNDTRIP: &str = "pronto_mark_roundtrip_seconds";
const DASHBOARD_SESSIONS: &str = "pronto_dashboard_sessions";

/// A phone call's length: seconds to an hour.
const CALL_DURATION_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];
/// A stage of a turn and the whole response: tens of milliseconds (a fast
/// stage) to seconds (a slow provider), finest around the 0.5-1 s that a
/// caller notices.
const LATENCY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5,
    10.0,
];
/// Pronto's own part of a turn: about a millisecond when all is well.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// A mark's round trip includes the audio queued before it (the playback
/// lead, about a second).
const MARK_ROUNDTRIP_BUCKETS: &[f64] = &[
    0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
];

/// Every histogram and its buckets.
const HISTOGRAMS: [(&str, &[f64]); 5] = [
    (CALL_DURATION, CALL_DURATION_BUCKETS),
    (TURN_STAGE, LATENCY_BUCKETS),
    (TURN_RESPONSE, LATENCY_BUCKETS),
    (TURN_OVERHEAD, OVERHEAD_BUCKETS),
    (MARK_ROUNDTRIP, MARK_ROUNDTRIP_BUCKETS),
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (each render does it too): until then the samples are kept one by
/// one, so without it a server never scraped would grow.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// The process's recorder, for rendering.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// The process's metrics, the recorder installed (with every family
    /// described) on the first call.
    pub fn global() -> &'static Metrics {
        static METRICS: OnceLock<Metrics> = OnceLock::new();
        METRICS.get_or_init(install)
    }

    /// Everything recorded so far, in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        // The families must exist (at zero) before the first scrape, so
        // that dashboards and alerts see them from the start.
        let _ = handles();
        self.handle.run_upkeep();
        self.handle.render()
    }
}

fn install() -> Metrics {
    let builder = builder().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "metrics: histogram buckets refused; histograms render as summaries");
        PrometheusBuilder::new()
    });
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(e) = ::metrics::set_global_recorder(recorder) {
        // Only possible when something else in the process installed one
        // first: what Pronto records then goes there, not to /metrics.
        tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics stays empty");
    }
    describe();
    let upkeep = handle.clone();
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "metrics: no upkeep thread; histogram samples are folded only when scraped");
    }
    Metrics { handle }
}

/// The exporter, with the buckets of every histogram.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    HISTOGRAMS
        .iter()
        .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
            builder.set_buckets_for_metric(Matcher::Full((*name).to_string()), buckets)
        })
}

/// The HELP text of every family.
fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version of Pronto serving, as a label."
    );
    describe_counter!(
        CALLS_STARTED,
        "Calls admitted at the /voice webhook (their record written), by direction: those refused there (rejected, busy) included. An outbound call counts once answered."
    );
    describe_counter!(
        CALLS_ENDED,
        "Calls ended, by direction and end reason (the call record's end_reason; no_stream: the media stream never started)."
    );
    describe_gauge!(
        ACTIVE_CALLS,
        "Calls whose media stream is running on this process, by direction."
    );
    describe_histogram!(
        CALL_DURATION,
        "Length of a call's media stream, from Twilio's start to the end of the session, by direction."
    );
    describe_histogram!(
        TURN_STAGE,
        "Each stage of a turn that answers the caller: turn_decision (end of speech to the turn decided), stt (the transcription request), stt_final (streaming STT: turn decided to final transcript), llm_first_token, first_sentence (LLM request to its first sentence), tts_first_byte, model_first_audio (speech-to-speech: end of speech to the model's first audio)."
    );
    describe_histogram!(
        TURN_RESPONSE,
        "Voice to voice: the caller's end of speech to the first frame of the answer sent to Twilio, per turn that answers the caller."
    );
    describe_histogram!(
        TURN_OVERHEAD,
        "Pronto's own part of a turn's response time: voice to voice less the endpoint wait, STT, first sentence and TTS first byte (speech-to-speech: less the model's first audio); negatives count as 0."
    );
    describe_counter!(
        TURNS,
        "Agent turns recorded (the greeting, announcements and operators' lines included), by result: answered (its audio was sent), interrupted (cut by the caller or the end of the call), empty (nothing was sent)."
    );
    describe_counter!(
        BARGE_INS,
        "Times the caller spoke over (or keyed over) the agent and its answer was cut."
    );
    describe_counter!(
        PROVIDER_REQUESTS,
        "AI provider requests by provider, kind (stt, llm, tts, stt_stream, s2s) and result: ok or error once per request (HTTP: after its retry; stt_stream: per call's stream, reconnect included; s2s: per connection), retry for each attempt made again. A request cancelled by a barge-in or the end of the call counts neither ok nor error."
    );
    describe_counter!(
        TWILIO_BAD_MESSAGES,
        "Media Stream messages from Twilio skipped as malformed (unparsable, undecodable, binary)."
    );
    describe_counter!(
        TWILIO_WEBHOOKS,
        "Twilio webhooks answered, by endpoint (voice, status) and result (ok, bad_signature, error: a malformed request or a failure storing it)."
    );
    describe_counter!(
        PLAYBACK_UNDERRUNS,
        "Times the agent's audio ran dry in the middle of a turn: a frame of an answer already playing was sent more than 20 ms after Twilio should, by Pronto's playback estimate (corrected by each mark echo), have played everything sent before it. Estimated: Twilio does not report its buffer."
    );
    describe_histogram!(
        MARK_ROUNDTRIP,
        "A mark sent to Twilio to its echo (played, not cleared): the audio queued ahead of it plus the network's round trip."
    );
    describe_gauge!(
        DASHBOARD_SESSIONS,
        "Dashboard sessions open, by kind: sse (live view), listen (listen-in), test_call (browser test call)."
    );
}

/// A call's direction, as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Inbound,
    Outbound,
    /// A test call from the dashboard.
    Browser,
    /// Anything else Twilio says (`trunking-originating`, `unknown`).
    Other,
}

impl CallDirection {
    const ALL: [CallDirection; 4] = [
        CallDirection::Inbound,
        CallDirection::Outbound,
        CallDirection::Browser,
        CallDirection::Other,
    ];

    pub fn of(direction: &Direction) -> CallDirection {
        match direction {
            Direction::Inbound => CallDirection::Inbound,
            Direction::Browser => CallDirection::Browser,
            d if d.is_outbound() => CallDirection::Outbound,
            _ => CallDirection::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
            CallDirection::Browser => "browser",
            CallDirection::Other => "other",
        }
    }

    /// Its place in [`CallDirection::ALL`] (the declaration order).
    fn index(self) -> usize {
        self as usize
    }
}

/// A stage of a turn, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    TurnDecision,
    Stt,
    SttFinal,
    LlmFirstToken,
    FirstSentence,
    TtsFirstByte,
    ModelFirstAudio,
}

impl Stage {
    const ALL: [Stage; 7] = [
        Stage::TurnDecision,
        Stage::Stt,
        Stage::SttFinal,
        Stage::LlmFirstToken,
        Stage::FirstSentence,
        Stage::TtsFirstByte,
        Stage::ModelFirstAudio,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Stage::TurnDecision => "turn_decision",
            Stage::Stt => "stt",
            Stage::SttFinal => "stt_final",
            Stage::LlmFirstToken => "llm_first_token",
            Stage::FirstSentence => "first_sentence",
            Stage::TtsFirstByte => "tts_first_byte",
            Stage::ModelFirstAudio => "model_first_audio",
        }
    }
}

/// How a turn went, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TurnResult {
    Answered,
    Interrupted,
    Empty,
}

impl TurnResult {
    const ALL: [TurnResult; 3] = [
        TurnResult::Answered,
        TurnResult::Interrupted,
        TurnResult::Empty,
    ];

    fn of(record: &TurnRecord) -> TurnResult {
        if record.interrupted {
            TurnResult::Interrupted
        } else if record.latency.voice_to_voice_ms.is_none() {
            // No frame of it was sent (echo of a keypad turn, a cancelled
            // announcement).
            TurnResult::Empty
        } else {
            TurnResult::Answered
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TurnResult::Answered => "answered",
            TurnResult::Interrupted => "interrupted",
            TurnResult::Empty => "empty",
        }
    }
}

/// What a provider request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// A transcription request (one utterance).
    Stt,
    Llm,
    /// One sentence's synthesis.
    Tts,
    /// A call's streaming speech-to-text connection.
    SttStream,
    /// A speech-to-speech model's connection.
    S2s,
}

impl ProviderKind {
    fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Stt => "stt",
            ProviderKind::Llm => "llm",
            ProviderKind::Tts => "tts",
            ProviderKind::SttStream => "stt_stream",
            ProviderKind::S2s => "s2s",
        }
    }
}

/// How a provider request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    Ok,
    Error,
    /// An attempt failed and is made again.
    Retry,
}

impl RequestResult {
    fn as_str(self) -> &'static str {
        match self {
            RequestResult::Ok => "ok",
            RequestResult::Error => "error",
            RequestResult::Retry => "retry",
        }
    }
}

/// A Twilio webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    /// `POST /voice`: a call comes in.
    Voice,
    /// `POST /voice/status`: a status callback.
    Status,
}

impl Webhook {
    const ALL: [Webhook; 2] = [Webhook::Voice, Webhook::Status];

    fn as_str(self) -> &'static str {
        match self {
            Webhook::Voice => "voice",
            Webhook::Status => "status",
        }
    }
}

/// How a webhook was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    Ok,
    BadSignature,
    /// Malformed (no call SID, too large) or not stored.
    Error,
}

impl WebhookResult {
    const ALL: [WebhookResult; 3] = [
        WebhookResult::Ok,
        WebhookResult::BadSignature,
        WebhookResult::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            WebhookResult::Ok => "ok",
            WebhookResult::BadSignature => "bad_signature",
            WebhookResult::Error => "error",
        }
    }
}

/// What a dashboard session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// The live view's event stream.
    Sse,
    /// Listening in on a call.
    Listen,
    /// A test call from the browser's microphone.
    TestCall,
}

impl WatchKind {
    const ALL: [WatchKind; 3] = [WatchKind::Sse, WatchKind::Listen, WatchKind::TestCall];

    fn as_str(self) -> &'static str {
        match self {
            WatchKind::Sse => "sse",
            WatchKind::Listen => "listen",
            WatchKind::TestCall => "test_call",
        }
    }
}

/// The handles of every fixed label set, registered once. The arrays are
/// indexed by their label enum `as usize`: each enum's `ALL` lists it in
/// declaration order.
struct Handles {
    calls_started: [Counter; 4],
    /// By direction, then by the index of the reason in `EndReason::ALL`.
    calls_ended: [[Counter; EndReason::ALL.len()]; 4],
    active_calls: [Gauge; 4],
    call_duration: [Histogram; 4],
    turn_stage: [Histogram; Stage::ALL.len()],
    turn_response: Histogram,
    turn_overhead: Histogram,
    turns: [Counter; TurnResult::ALL.len()],
    barge_ins: Counter,
    twilio_bad_messages: Counter,
    twilio_webhooks: [[Counter; WebhookResult::ALL.len()]; Webhook::ALL.len()],
    playback_underruns: Counter,
    mark_roundtrip: Histogram,
    dashboard_sessions: [Gauge; WatchKind::ALL.len()],
}

fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        // Registered with Pronto's recorder, not the no-op one that stands
        // in until a recorder is installed.
        let _ = Metrics::global();
        Handles::register()
    })
}

impl Handles {
    fn register() -> Handles {
        use ::metrics::{counter, gauge, histogram};
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let by_direction = |name: &'static str| {
            CallDirection::ALL.map(|d| counter!(name, "direction" => d.as_str()))
        };
        Handles {
            calls_started: by_direction(CALLS_STARTED),
            calls_ended: CallDirection::ALL.map(|d| {
                EndReason::ALL.map(|r| {
                    counter!(CALLS_ENDED, "direction" => d.as_str(), "end_reason" => r.as_str())
                })
            }),
            active_calls: CallDirection::ALL
                .map(|d| gauge!(ACTIVE_CALLS, "direction" => d.as_str())),
            call_duration: CallDirection::ALL
                .map(|d| histogram!(CALL_DURATION, "direction" => d.as_str())),
            turn_stage: Stage::ALL.map(|s| histogram!(TURN_STAGE, "stage" => s.as_str())),
            turn_response: histogram!(TURN_RESPONSE),
            turn_overhead: histogram!(TURN_OVERHEAD),
            turns: TurnResult::ALL.map(|r| counter!(TURNS, "result" => r.as_str())),
            barge_ins: counter!(BARGE_INS),
            twilio_bad_messages: counter!(TWILIO_BAD_MESSAGES),
            twilio_webhooks: Webhook::ALL.map(|w| {
                WebhookResult::ALL.map(
                    |r| counter!(TWILIO_WEBHOOKS, "endpoint" => w.as_str(), "result" => r.as_str()),
                )
            }),
            playback_underruns: counter!(PLAYBACK_UNDERRUNS),
            mark_roundtrip: histogram!(MARK_ROUNDTRIP),
            dashboard_sessions: WatchKind::ALL
                .map(|k| gauge!(DASHBOARD_SESSIONS, "kind" => k.as_str())),
        }
    }

    fn call_ended(&self, direction: CallDirection, reason: EndReason) {
        let at = EndReason::ALL.iter().position(|r| *r == reason);
        if let Some(counter) = at.and_then(|i| self.calls_ended[direction.index()].get(i)) {
            counter.increment(1);
        }
    }
}

/// A call admitted at the webhook, counted as started; [`Admitted::ended`]
/// counts its end when it ends there too (refused, busy).
#[derive(Debug, Clone, Copy)]
#[must_use = "a call refused at the webhook must be counted as ended"]
pub struct Admitted(CallDirection);

/// Counts a call admitted at the webhook.
pub fn call_started(direction: &Direction) -> Admitted {
    let direction = CallDirection::of(direction);
    handles().calls_started[direction.index()].increment(1);
    Admitted(direction)
}

impl Admitted {
    pub fn ended(self, reason: EndReason) {
        handles().call_ended(self.0, reason);
    }
}

/// Counts the end of a call admitted whose media stream never started:
/// `no_stream`, whether it lapsed (as its record says) or Twilio reported it
/// over first (its record then keeps only Twilio's final status).
pub fn never_streamed(direction: &Direction) {
    handles().call_ended(CallDirection::of(direction), EndReason::NoStream);
}

/// One call's share of the metrics while its media stream runs: it is an
/// active call from [`CallMetrics::start`] until dropped, when its duration
/// is observed.
#[derive(Debug)]
pub struct CallMetrics {
    direction: CallDirection,
    started: Instant,
    ended: bool,
    /// The last turn counted: turns are recorded in order, and a turn's
    /// record amended later (a speech-to-speech model's late transcript)
    /// must not count it again.
    last_turn: Option<u32>,
}

impl CallMetrics {
    /// The call's stream has started.
    pub fn start(direction: &Direction) -> CallMetrics {
        let direction = CallDirection::of(direction);
        handles().active_calls[direction.index()].increment(1.0);
        CallMetrics {
            direction,
            started: Instant::now(),
            ended: false,
            last_turn: None,
        }
    }

    /// The call ended for `reason` (counted once).
    pub fn ended(&mut self, reason: EndReason) {
        if !std::mem::replace(&mut self.ended, true) {
            handles().call_ended(self.direction, reason);
        }
    }

    /// A turn's record: counted the first time this turn is recorded.
    pub fn turn_recorded(&mut self, record: &TurnRecord) {
        if self.first_record_of(record.turn) {
            turn_counted(handles(), record);
        }
    }

    /// Whether `turn` is recorded for the first time (and from now on, not).
    fn first_record_of(&mut self, turn: u32) -> bool {
        if self.last_turn.is_some_and(|last| turn <= last) {
            return false;
        }
        self.last_turn = Some(turn);
        true
    }
}

impl Drop for CallMetrics {
    fn drop(&mut self) {
        let h = handles();
        h.active_calls[self.direction.index()].decrement(1.0);
        h.call_duration[self.direction.index()].record(self.started.elapsed().as_secs_f64());
    }
}

fn turn_counted(h: &Handles, record: &TurnRecord) {
    if let Some(counter) = h.turns.get(TurnResult::of(record) as usize) {
        counter.increment(1);
    }
    if !answers_caller(record) {
        return;
    }
    let l = &record.latency;
    let stages = [
        (l.decided_by != TurnDecider::Keypad).then_some(l.turn_decided_ms),
        l.stt_ms,
        l.stt_final_ms,
        l.llm_first_token_ms,
        l.first_sentence_ms,
        l.tts_first_byte_ms,
        l.model_first_audio_ms,
    ];
    for (histogram, ms) in h.turn_stage.iter().zip(stages) {
        if let Some(ms) = ms {
            histogram.record(seconds(ms));
        }
    }
    if let Some(ms) = l.voice_to_voice_ms {
        h.turn_response.record(seconds(ms));
    }
    if let Some(ms) = l.pipeline_overhead_ms {
        h.turn_overhead
            .record(seconds(u64::try_from(ms.max(0)).unwrap_or(0)));
    }
}

/// Whether a turn answers something the caller said or keyed, so that its
/// latency means something: not the greeting, not an announcement ("are you
/// still there?", the closing line), not an operator's line and not a Moshi
/// turn, all of which start with no end of the caller's speech to measure
/// from. The record does not say which kind of turn it was; the caller's
/// input does: a transcript, an utterance, a wait for the turn's end, or
/// someone other than a fixed silence deciding it (keypad, a provider's end
/// of turn).
fn answers_caller(record: &TurnRecord) -> bool {
    let l = &record.latency;
    record.turn > 0
        && !record.by_operator
        && (record.caller.is_some()
            || l.utterance_ms > 0
            || l.endpoint_wait_ms > 0
            || l.decided_by != TurnDecider::Silence)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Counts what the call's record gets that is worth counting (barge-ins).
pub fn event_recorded(event: &CallEvent) {
    if let CallEvent::BargeIn { .. } = event {
        handles().barge_ins.increment(1);
    }
}

/// A malformed Media Stream message was skipped.
pub fn twilio_bad_message() {
    handles().twilio_bad_messages.increment(1);
}

/// A Twilio webhook was answered.
pub fn twilio_webhook(endpoint: Webhook, result: WebhookResult) {
    if let Some(counter) = handles()
        .twilio_webhooks
        .get(endpoint as usize)
        .and_then(|results| results.get(result as usize))
    {
        counter.increment(1);
    }
}

/// A provider request's outcome. `provider` is a client's constant name
/// (`openai-stt`, `anthropic`, `deepgram`...), so the label stays bounded.
/// Per request, not per frame: the label set is looked up each time.
pub fn provider_request(provider: &'static str, kind: ProviderKind, result: RequestResult) {
    let _ = handles();
    ::metrics::counter!(
        PROVIDER_REQUESTS,
        "provider" => provider,
        "kind" => kind.as_str(),
        "result" => result.as_str()
    )
    .increment(1);
}

/// The most mark round trips a sample keeps between two takes. The session
/// takes the sample after every message, and one message echoes one mark.
const MARKS_PER_SAMPLE: usize = 4;

/// What one call's playback measured since the session last took it: plain
/// data, filled by the pure playback (`call/playback.rs`, `call/machine.rs`)
/// and recorded by the session with [`playback_measured`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlaybackSample {
    underruns: u32,
    roundtrips: [Duration; MARKS_PER_SAMPLE],
    marks: usize,
}

impl PlaybackSample {
    /// The agent's audio ran dry mid-turn.
    pub fn underrun(&mut self) {
        self.underruns = self.underruns.saturating_add(1);
    }

    /// A mark came back `roundtrip` after it was sent (beyond
    /// [`MARKS_PER_SAMPLE`] before a take, the rest are not kept).
    pub fn mark_roundtrip(&mut self, roundtrip: Duration) {
        if let Some(slot) = self.roundtrips.get_mut(self.marks) {
            *slot = roundtrip;
            self.marks += 1;
        }
    }

    pub fn underruns(&self) -> u32 {
        self.underruns
    }

    /// The round trips kept, oldest first.
    pub fn roundtrips(&self) -> &[Duration] {
        self.roundtrips.get(..self.marks).unwrap_or(&[])
    }

    fn is_empty(&self) -> bool {
        self.underruns == 0 && self.marks == 0
    }
}

/// Records what a call's playback measured. Called after every message of
/// every call: an empty sample (nearly all) costs one comparison.
pub fn playback_measured(sample: PlaybackSample) {
    if sample.is_empty() {
        return;
    }
    let h = handles();
    if sample.underruns > 0 {
        h.playback_underruns.increment(u64::from(sample.underruns));
    }
    for roundtrip in sample.roundtrips() {
        h.mark_roundtrip.record(roundtrip.as_secs_f64());
    }
}

/// A dashboard session, counted in `pronto_dashboard_sessions` while this
/// value lives: keep it in the handler's state (the SSE stream, the
/// WebSocket task) so that it is dropped when the session ends.
#[derive(Debug)]
#[must_use = "the session counts only while this value lives"]
pub struct Watching(WatchKind);

impl Watching {
    pub fn new(kind: WatchKind) -> Watching {
        if let Some(gauge) = Watching::gauge(kind) {
            gauge.increment(1.0);
        }
        Watching(kind)
    }

    fn gauge(kind: WatchKind) -> Option<&'static Gauge> {
        handles().dashboard_sessions.get(kind as usize)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(gauge) = Watching::gauge(self.0) {
            gauge.decrement(1.0);
        }
    }
}

#[cfg(test)]
mod tests;
