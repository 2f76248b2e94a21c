//! OpenAI's Realtime API as the engine: the caller's voice goes to a
//! speech-to-speech model and its voice comes back, one WebSocket per call.
//!
//! Twilio's μ-law goes out as `input_audio_buffer.append` unchanged, and the
//! model's `response.output_audio.delta` comes back as the agent's audio
//! unchanged (the session is `audio/pcmu` both ways, checked before any
//! audio is forwarded). The conversation's decisions are in [`session`]
//! (pure); this module runs it in the call's task over a
//! [`Pipe`](crate::providers::socket::Pipe).
//!
//! Choices, and why:
//! - The greeting and Pronto's fixed lines are spoken by the model ("say
//!   exactly …"), not played from the cascade's cached TTS audio: one voice
//!   for the whole call, and the model knows what it said. The cost is the
//!   greeting's start: the session's set-up and a response (~1 s) instead
//!   of cached audio at once.
//! - A session that drops, or reaches OpenAI's 60-minute limit, is opened
//!   again once per call with the conversation so far as text items (what
//!   the caller said, and what they heard); the turn in progress is lost
//!   and the caller is listened to again. A refusal (the key, the model, a
//!   session that does not take μ-law) ends the call politely: the closing
//!   line in the cascade's TTS voice when its keys are set (the same
//!   `OPENAI_API_KEY` is enough), else at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tracing::{Instrument, info, info_span, warn};

use crate::agent::lines::{Line, SpokenLines};
use crate::agent::memory;
use crate::agent::prompt::Prompt;
use crate::agent::tools::Tools;
use crate::config::engine::RealtimeSection;
use crate::config::{Config, ConfigError};
use crate::engine::{
    Abilities, Announcement, Command, Conversation, Engine, EngineStatus, Event, Output, Speak,
    SummaryFuture, TurnError,
};
use crate::metrics::{ProviderKind, RequestResult};
use crate::model::CallBrief;
use crate::providers::socket::{Pipe, Piped};
use crate::providers::{Endpoint, LanguageModel, ProviderError, http};

pub mod protocol;
pub mod session;

use session::{Ending, Fixed, Outbox, Session};

const PROVIDER: &str = "openai-realtime";

/// The upgrade, TLS included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// New sessions per call after a drop or the time limit.
const RECONNECTS: u32 = 1;

/// What every call's conversation is made of.
struct Parts {
    endpoint: Endpoint,
    settings: RealtimeSection,
    prompt: Prompt,
    language: String,
    tools: Tools,
    /// The fixed lines' texts, and the prices.
    fixed: Fixed,
    /// The cascade's fixed lines in its TTS voice, for when the model
    /// cannot speak (its session is gone); `None` without the cascade's keys.
    lines: Option<Arc<SpokenLines>>,
    /// Caller memory's summaries, by the cascade's LLM.
    memory: Option<Arc<dyn LanguageModel>>,
    max_history_turns: usize,
}

/// The Realtime engine.
pub struct Realtime(Arc<Parts>);

impl Realtime {
    /// Must run inside the tokio runtime (the fixed lines are synthesized in
    /// the background).
    pub fn build(
        config: &Config,
        endpoint: Endpoint,
        settings: RealtimeSection,
    ) -> Result<Realtime, ConfigError> {
        let t = &config.tunables;
        let texts = t.lines();
        let (lines, llm) = match &config.ai {
            Some(stages) => {
                let client = http::client().map_err(ConfigError)?;
                let (_, llm, tts) = crate::agent::setup::providers(stages, &client);
                let lines = Arc::new(SpokenLines::new(texts.clone(), tts));
                let warm = Arc::clone(&lines);
                tokio::spawn(async move { warm.warm_up().await }.instrument(info_span!("lines")));
                (Some(lines), Some(llm))
            }
            None => (None, None),
        };
        info!(
            model = %settings.model,
            voice = %settings.voice,
            turn_detection = %settings.turn_detection,
            language = %t.agent.language,
            "speech-to-speech engine ready: OpenAI Realtime"
        );
        Ok(Realtime(Arc::new(Parts {
            prompt: Prompt::load(&t.agent)?,
            language: t.agent.language.clone(),
            tools: Tools::for_deployment(config),
            fixed: Fixed {
                greeting: texts.greeting,
                still_there: texts.still_there,
                closing: texts.closing,
                prices: [
                    settings.price_text_in,
                    settings.price_audio_in,
                    settings.price_audio_in_cached,
                    settings.price_text_out,
                    settings.price_audio_out,
                ],
                vad_silence_ms: match settings.turn_detection.as_str() {
                    "server_vad" => u64::from(settings.silence_ms),
                    _ => 0,
                },
            },
            lines,
            memory: llm.filter(|_| t.store.caller_memory),
            max_history_turns: usize::try_from(t.agent.max_history_turns).unwrap_or(20),
            endpoint,
            settings,
        })))
    }
}

impl Engine for Realtime {
    fn mode(&self) -> &'static str {
        PROVIDER
    }

    fn status(&self) -> EngineStatus {
        EngineStatus {
            turn_detector: match self.0.settings.turn_detection.as_str() {
                "semantic_vad" => "semantic_vad",
                _ => "server_vad",
            },
            speech_to_text: PROVIDER,
            speculative_answers: 0,
            speculative_wasted: 0,
        }
    }

    fn open(&self, brief: Arc<CallBrief>) -> Box<dyn Conversation> {
        let parts = Arc::clone(&self.0);
        let mut fixed = parts.fixed.clone();
        if let Some(greeting) = brief.greeting.as_deref().filter(|g| !g.trim().is_empty()) {
            fixed.greeting = greeting.to_string();
        }
        let session = Session::new(fixed, parts.tools.clone(), parts.max_history_turns);
        let mut call = RealtimeCall {
            pipe: connect(&parts),
            parts,
            brief,
            session,
            out: Outbox::default(),
            reconnects_left: RECONNECTS,
            line: None,
            gone: false,
        };
        call.flush();
        Box::new(call)
    }
}

fn connect(parts: &Parts) -> Pipe {
    let url = format!(
        "{}?model={}",
        parts.endpoint.url("/realtime"),
        parts.settings.model
    );
    let authorization = format!("Bearer {}", parts.endpoint.api_key.expose());
    match crate::providers::socket::request(PROVIDER, &url, &authorization) {
        Ok(request) => Pipe::open(PROVIDER, request, CONNECT_TIMEOUT),
        Err(e) => {
            // A URL or key that cannot be a request: the pipe ends at once.
            let (pipe, _, tx) = Pipe::detached(PROVIDER);
            let _ = tx.send(Piped::Ended(crate::providers::socket::Ending::NotOpened(
                crate::providers::socket::Closed::Fatal(e),
            )));
            pipe
        }
    }
}

type LineAudio = Pin<Box<dyn Future<Output = Result<Bytes, ProviderError>> + Send>>;

/// A fixed line being said in the cascade's voice (the model is gone).
struct SayLine {
    turn: u32,
    line: Line,
    audio: LineAudio,
}

/// One call's conversation with the model.
struct RealtimeCall {
    parts: Arc<Parts>,
    brief: Arc<CallBrief>,
    pipe: Pipe,
    session: Session,
    out: Outbox,
    reconnects_left: u32,
    line: Option<SayLine>,
    /// `Event::Gone` was reported.
    gone: bool,
}

impl RealtimeCall {
    /// Sends what the session wrote.
    fn flush(&mut self) {
        for message in self.out.send.drain(..) {
            if !self.pipe.send(Message::Text(message.into())) {
                // The socket is over or not reading; its end is reported
                // through the pipe.
                break;
            }
        }
    }

    /// Reads what the pipe has, until it has nothing more now, or until
    /// something is for the call: the call acts on it (starts the turn the
    /// model is about to answer, cancels the one the caller spoke over)
    /// before the next server event is read.
    fn read(&mut self, cx: &mut Context<'_>) {
        let now = Instant::now();
        while self.out.events.is_empty()
            && let Poll::Ready(Some(piped)) = self.pipe.poll_recv(cx)
        {
            match piped {
                Piped::Open => {
                    let instructions =
                        self.parts
                            .prompt
                            .system(&self.brief, None, chrono::Local::now());
                    let update = protocol::session_update(
                        &self.parts.settings,
                        &instructions,
                        &self.parts.language,
                        &self.parts.tools.specs(),
                    );
                    self.session.opened(update, &mut self.out);
                }
                Piped::Text(text) => {
                    if let Some(Ending::Gone(why)) = self.session.on_text(&text, now, &mut self.out)
                    {
                        self.report_gone(why);
                    }
                }
                Piped::Binary(_) => {}
                Piped::Ended(ending) => match self.session.ended(ending, &mut self.out) {
                    Ending::Reconnect(why) if self.reconnects_left > 0 => {
                        self.reconnects_left -= 1;
                        warn!(reason = %why, "Realtime session lost; opening a new one with the conversation so far");
                        crate::metrics::provider_request(
                            PROVIDER,
                            ProviderKind::S2s,
                            RequestResult::Retry,
                        );
                        self.pipe = connect(&self.parts);
                    }
                    Ending::Reconnect(why) => {
                        self.session.give_up(why.clone());
                        self.report_gone(why);
                    }
                    Ending::Gone(why) => self.report_gone(why),
                },
            }
        }
    }

    fn report_gone(&mut self, why: String) {
        if !self.gone {
            self.gone = true;
            self.out.events.push_back(Event::Gone(why));
        }
    }

    /// A fixed line while the model is gone: in the cascade's voice, or
    /// nothing.
    fn say_without_model(&mut self, turn: u32, speak: &Speak) {
        let line = match speak {
            Speak::Greeting => Line::Greeting,
            Speak::Announcement(Announcement::StillThere) => Line::StillThere,
            Speak::Announcement(Announcement::Closing) => Line::Closing,
            Speak::Answer(_) | Speak::Operator(_) => Line::Fallback,
        };
        match self.parts.lines.clone() {
            Some(lines) => {
                let audio = Box::pin(async move { lines.audio(line).await });
                self.line = Some(SayLine { turn, line, audio });
            }
            None => self.out.output.push_back(Event::Turn {
                turn,
                output: Output::Finished,
            }),
        }
    }

    fn poll_line(&mut self, cx: &mut Context<'_>) {
        let Some(say) = self.line.as_mut() else {
            return;
        };
        let Poll::Ready(result) = say.audio.as_mut().poll(cx) else {
            return;
        };
        let turn = say.turn;
        let line = say.line;
        self.line = None;
        let outputs = match (result, &self.parts.lines) {
            (Ok(audio), Some(lines)) => {
                let text = lines.text(line).to_string();
                vec![
                    Output::Planned(text.clone()),
                    Output::Audio(audio),
                    Output::SegmentEnd { text },
                    Output::Finished,
                ]
            }
            (Err(error), _) => vec![Output::Failed(TurnError::Line {
                line: line.name(),
                error,
            })],
            (Ok(_), None) => vec![Output::Finished],
        };
        for output in outputs {
            self.out.output.push_back(Event::Turn { turn, output });
        }
    }
}

impl Conversation for RealtimeCall {
    fn abilities(&self) -> Abilities {
        Abilities {
            greets: self.session.greets(),
            speaks: true,
            playback_lead: None,
        }
    }

    fn hear(&mut self, mulaw: &[u8], _events: &mut Vec<Event>) {
        if self.session.hear(mulaw, &mut self.out) {
            self.flush();
        }
    }

    fn command(&mut self, command: Command) {
        if let Command::Start { turn, speak } = &command
            && self.session.is_gone()
        {
            let (turn, speak) = (*turn, speak.clone());
            self.say_without_model(turn, &speak);
            return;
        }
        self.session.command(command, Instant::now(), &mut self.out);
        self.flush();
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, room: bool) -> Poll<Event> {
        self.read(cx);
        self.session.tick(Instant::now(), &mut self.out);
        self.flush();
        self.poll_line(cx);
        if let Some(event) = self.out.events.pop_front() {
            return Poll::Ready(event);
        }
        if room && let Some(event) = self.out.output.pop_front() {
            return Poll::Ready(event);
        }
        Poll::Pending
    }

    fn summary(&mut self) -> Option<SummaryFuture> {
        let llm = Arc::clone(self.parts.memory.as_ref()?);
        let history = self.session.history.messages();
        Some(Box::pin(async move {
            memory::summarize(llm.as_ref(), &history).await
        }))
    }
}
