//! One simulated caller of the benchmark: dials, hears the greeting, then
//! asks the same question turn after turn (with real-time paced speech and
//! mark echoes, as Twilio plays), interrupting every third answer, until its
//! time is up. What it measured comes back as a [`CallResult`].

use std::time::{Duration, Instant};

use crate::sim::{Call, Event, SimConfig};

/// What one call measured, on the simulator's clock (ms since the stream
/// started), plus the server-side record's per-turn overhead, read later.
#[derive(Debug, Clone, Default)]
pub struct CallResult {
    pub call_sid: String,
    /// `start` sent → first audio of the greeting received.
    pub greeting_ms: Option<i64>,
    /// Caller stopped speaking → the answer audible (the simulator's view).
    pub voice_to_voice_ms: Vec<i64>,
    /// Interrupting speech onset → `clear` received.
    pub barge_in_ms: Vec<i64>,
    /// Audio gaps inside an answer (the server fell behind real time).
    pub underruns: u64,
    pub turns: u32,
    /// The simulator's own late ticks and worst lateness.
    pub late_ticks: u64,
    pub max_tick_lateness_ms: u64,
    pub duration: Duration,
    pub error: Option<String>,
}

/// What one simulated caller does.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The call lasts this long (turns continue until then).
    pub length: Duration,
    /// Every Nth answer is interrupted (barge-in); 0 = never.
    pub barge_in_every: u32,
    /// Hears the greeting, then only listens (sends silence) until the end:
    /// what holding a call open costs, without any turn.
    pub listen_only: bool,
    /// Operators listening in to the call (a WebSocket each, read and
    /// dropped) from the moment it connects.
    pub listeners: u32,
    /// Providers fail on purpose (a soak with faults): an answer may be the
    /// one-sentence fallback line, so each turn waits for any answer's mark
    /// instead of the two sentences of the scripted answer, and never
    /// barges in.
    pub tolerant: bool,
    /// The engine marks its audio every 100 ms, not after each sentence (a
    /// speech-to-speech model): the greeting and each answer are over when
    /// their sound stops, not at their first or second mark.
    pub marks_by_time: bool,
}

impl Plan {
    /// Waits until the answer (or the greeting) of turn `turn`, already
    /// being heard, is over.
    async fn answer_heard(&self, call: &Call, turn: u32) -> Result<(), String> {
        if self.marks_by_time {
            call.wait_for(|e| matches!(e, Event::AudioHeardEnd), PATIENCE)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else if turn == 0 {
            Ok(())
        } else {
            mark(call, &format!("t{turn}-s1")).await
        }
    }
}

/// How long to wait for anything the server should do within seconds.
const PATIENCE: Duration = Duration::from_secs(30);

pub async fn run(cfg: SimConfig, speech: &[i16], plan: Plan, api_token: &str) -> CallResult {
    let started = Instant::now();
    let mut result = CallResult::default();
    let call = match Call::dial(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("dial: {e}"));
            return result;
        }
    };
    result.call_sid = call.call_sid().to_string();
    for _ in 0..plan.listeners {
        let url = format!(
            "{}/api/calls/{}/listen",
            cfg.server.replacen("http", "ws", 1),
            result.call_sid
        );
        tokio::spawn(listen_in(url, cfg.server.clone(), api_token.to_string()));
    }
    if let Err(e) = converse(&call, speech, plan, &mut result).await {
        result.error = Some(e);
    }
    let (late, worst) = call.tick_health();
    result.late_ticks = late;
    result.max_tick_lateness_ms = u64::try_from(worst.as_millis()).unwrap_or(u64::MAX);
    match call.hang_up().await {
        Ok(report) => {
            result.voice_to_voice_ms = report
                .turns
                .iter()
                .filter_map(|t| t.voice_to_voice_ms)
                .collect();
            measure_events(&report.timeline(), &mut result);
        }
        Err(e) => result.error = result.error.take().or(Some(format!("hang up: {e}"))),
    }
    result.duration = started.elapsed();
    result
}

async fn mark(call: &Call, name: &str) -> Result<(), String> {
    let name = name.to_string();
    call.wait_for(
        move |e| matches!(e, Event::MarkEchoed { name: n, .. } if *n == name),
        PATIENCE,
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn converse(
    call: &Call,
    speech: &[i16],
    plan: Plan,
    result: &mut CallResult,
) -> Result<(), String> {
    mark(call, "t0-s0").await?;
    plan.answer_heard(call, 0).await?;
    if plan.listen_only {
        // The line keeps sending 20 ms frames of silence meanwhile.
        tokio::time::sleep(plan.length.saturating_sub(call.elapsed())).await;
        return Ok(());
    }
    if plan.tolerant {
        while call.elapsed() < plan.length {
            call.skip_seen();
            call.say(speech);
            call.wait_for(|e| matches!(e, Event::MarkEchoed { .. }), PATIENCE)
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            // The rest of the answer, if it has more sentences.
            tokio::time::sleep(Duration::from_secs(3)).await;
            result.turns += 1;
        }
        return Ok(());
    }
    let barge_in_every = plan.barge_in_every;
    let mut turn = 0u32;
    while call.elapsed() < plan.length {
        turn += 1;
        call.say(speech);
        mark(call, &format!("t{turn}-s0")).await?;
        if barge_in_every > 0 && turn.is_multiple_of(barge_in_every) {
            // Talk over the second sentence: the server must clear it, and
            // the interruption is the next turn.
            call.skip_seen();
            call.say(speech);
            call.wait_for(|e| matches!(e, Event::ClearReceived { .. }), PATIENCE)
                .await
                .map_err(|e| format!("no clear: {e}"))?;
            turn += 1;
        }
        plan.answer_heard(call, turn).await?;
        result.turns = turn;
    }
    Ok(())
}

/// Greeting time, barge-in reaction times and underruns, from the timeline.
fn measure_events(timeline: &[&crate::sim::TimedEvent], result: &mut CallResult) {
    let start = timeline
        .iter()
        .find(|e| matches!(e.event, Event::StartSent { .. }))
        .map(|e| e.at_ms);
    let first_audio = timeline
        .iter()
        .find(|e| matches!(e.event, Event::MediaReceived { .. }))
        .map(|e| e.at_ms);
    if let (Some(s), Some(a)) = (start, first_audio) {
        result.greeting_ms = Some(a - s);
    }
    let mut speech_start = None;
    let mut answering = false;
    let mut gap = false;
    for e in timeline {
        match &e.event {
            Event::SpeechStart { .. } => speech_start = Some(e.at_ms),
            Event::ClearReceived { .. } => {
                if let Some(s) = speech_start {
                    result.barge_in_ms.push(e.at_ms - s);
                }
            }
            Event::MarkReceived { .. } => answering = true,
            Event::MarkEchoed { .. } => {
                answering = false;
                gap = false;
            }
            // Sound stopped, then resumed, before the sentence's mark came
            // back: the server fell behind real time.
            Event::AudioHeardEnd if answering => gap = true,
            Event::AudioHeardStart if answering && gap => {
                result.underruns += 1;
                gap = false;
            }
            _ => {}
        }
    }
}

/// Listens in to a call as the dashboard does, reading (and dropping) its
/// audio until the call ends.
async fn listen_in(url: String, origin: String, api_token: String) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let Ok(mut request) = url.into_client_request() else {
        return;
    };
    let headers = request.headers_mut();
    if let (Ok(auth), Ok(origin)) = (format!("Bearer {api_token}").parse(), origin.parse()) {
        headers.insert("authorization", auth);
        headers.insert("origin", origin);
    }
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await else {
        eprintln!("bench: a listener could not connect");
        return;
    };
    while let Some(Ok(_)) = ws.next().await {}
}

/// Follows the dashboard's live event stream until aborted.
pub async fn watch_events(server: String, api_token: &'static str) {
    use futures_util::StreamExt;
    let Ok(response) = reqwest::Client::new()
        .get(format!("{server}/api/events"))
        .bearer_auth(api_token)
        .send()
        .await
    else {
        eprintln!("bench: the event stream could not be opened");
        return;
    };
    let mut body = response.bytes_stream();
    while let Some(Ok(_)) = body.next().await {}
}
