//! The agent: the engine that answers with speech-to-text, an LLM and
//! text-to-speech, one after the other, sentence by sentence (a cascade).
//!
//! It hears the caller through [`Hearing`] (its speech streamed to the
//! speech-to-text provider as it comes, when the provider streams; the turn
//! ended by the provider, the turn model or a silence), answers each turn
//! inside the call's task ([`pipeline`], [`task`]), and keeps the
//! conversation as the caller heard it ([`history`]). On the provider's
//! early end-of-turn signal it starts the answer speculatively and holds it
//! unheard until the turn is decided: kept if the caller's words are the
//! same, dropped if they went on. What it needs is here too: the sentence
//! splitter, the prompt, the fixed lines, the tools, caller memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tracing::{debug, info};

use crate::audio::vad::VadError;
use crate::engine::hearing::{Ears, Hearing, Hint};
use crate::engine::{
    Abilities, Command, Conversation, Engine, EngineStatus, Event, Output, Speak, SummaryFuture,
    TurnInput,
};
use crate::model::{CallBrief, Timing};
use crate::providers::listen::{Listener, StreamingSpeechToText, driver};
use crate::providers::{LanguageModel, SpeechToText, TextToSpeech};

pub mod history;
pub mod lines;
pub mod memory;
pub mod pipeline;
pub mod prompt;
pub mod sentences;
pub mod setup;
pub mod speaker;
pub mod task;
pub mod tools;

use history::History;
use lines::{Line, SpokenLines};
use pipeline::TurnRequest;
use prompt::Prompt;
use task::TurnWork;
use tools::Tools;

/// The parts the agent is made of.
pub struct AgentParts {
    /// Speech-to-text by request, for a turn's audio: the configured batch
    /// provider; `None` when the provider streams (a turn whose stream
    /// failed then gets the fallback line).
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// The streaming provider, one stream per call.
    pub listen: Option<Arc<dyn StreamingSpeechToText>>,
    pub llm: Arc<dyn LanguageModel>,
    pub tts: Arc<dyn TextToSpeech>,
    pub prompt: Prompt,
    pub lines: Arc<SpokenLines>,
    pub tools: Tools,
    pub tts_lookahead: usize,
    /// How the agent hears turns.
    pub ears: Ears,
    /// Answer on the provider's early end-of-turn signal.
    pub speculative: bool,
    /// Conversation turns kept for the LLM.
    pub max_history_turns: usize,
    /// Caller memory on: the agent summarizes each call.
    pub remembers: bool,
    /// Speculative answers started and dropped unheard, since start.
    pub speculation: Speculation,
    /// Connections to open when a call is admitted.
    pub warmup: Option<crate::providers::http::Warmup>,
}

/// How speculative answers fared, since start.
#[derive(Debug, Default)]
pub struct Speculation {
    pub started: AtomicU64,
    pub wasted: AtomicU64,
}

/// The agent engine.
#[derive(Clone)]
pub struct Agent(Arc<AgentParts>);

impl Agent {
    /// Checks the endpointer settings once, so that opening a call cannot fail.
    pub fn new(parts: AgentParts) -> Result<Agent, VadError> {
        parts.ears.check()?;
        Ok(Agent(Arc::new(parts)))
    }

    /// How speculative answers fared, since start: (started, wasted).
    pub fn speculation(&self) -> (u64, u64) {
        let s = &self.0.speculation;
        (
            s.started.load(Ordering::Relaxed),
            s.wasted.load(Ordering::Relaxed),
        )
    }

    pub fn lines(&self) -> Arc<SpokenLines> {
        Arc::clone(&self.0.lines)
    }
}

impl Engine for Agent {
    fn mode(&self) -> &'static str {
        "agent"
    }

    fn prepare(&self) {
        if let Some(warmup) = &self.0.warmup {
            warmup.start();
        }
    }

    fn status(&self) -> EngineStatus {
        let (started, wasted) = self.speculation();
        EngineStatus {
            turn_detector: self.0.ears.detector(self.0.listen.is_some()).as_str(),
            speech_to_text: self
                .0
                .listen
                .as_ref()
                .map_or("openai", |stt| stt.provider()),
            speculative_answers: started,
            speculative_wasted: wasted,
        }
    }

    fn open(&self, brief: Arc<CallBrief>) -> Box<dyn Conversation> {
        let parts = Arc::clone(&self.0);
        let listener = parts
            .listen
            .as_ref()
            .map(|stt| Listener::open(stt, driver::Settings::default()));
        let hearing = parts.ears.open(listener);
        Box::new(AgentCall {
            history: History::new(parts.max_history_turns),
            heard_turns: 0,
            parts,
            brief,
            hearing,
            turn: None,
            speculation: None,
        })
    }
}

/// An answer started before the caller's turn was decided.
struct Guess {
    /// The words it answers.
    words: String,
    /// The conversation it answers (turns heard when it started).
    heard_turns: u64,
    work: TurnWork,
}

/// The agent's side of one call.
struct AgentCall {
    parts: Arc<AgentParts>,
    brief: Arc<CallBrief>,
    hearing: Hearing,
    history: History,
    /// Turns added to the history: a speculative answer made before the
    /// last one no longer fits the conversation.
    heard_turns: u64,
    /// The turn being produced (its work stops when it is replaced or dropped).
    turn: Option<TurnWork>,
    /// A speculative answer, prepared and not yet heard.
    speculation: Option<Guess>,
}

impl AgentCall {
    fn answer(&self, input: TurnInput) -> impl FnOnce(task::Sink) -> pipeline::Answering {
        let request = TurnRequest {
            brief: Arc::clone(&self.brief),
            input,
            history: self.history.messages(),
        };
        let parts = Arc::clone(&self.parts);
        move |sink| Box::pin(pipeline::answer(parts, request, sink))
    }

    /// Acts on the hearing's early signals: a likely end of turn starts an
    /// answer (when nothing else is being said), a resumption drops it.
    fn speculate(&mut self) {
        while let Some(hint) = self.hearing.hint() {
            match hint {
                Hint::Likely(words) => {
                    let busy = self.turn.as_ref().is_some_and(|t| !t.done());
                    let same = self.speculation.as_ref().is_some_and(|g| g.words == words);
                    if !self.parts.speculative || busy || same {
                        continue;
                    }
                    self.drop_guess("the words changed");
                    debug!("answering speculatively");
                    self.parts
                        .speculation
                        .started
                        .fetch_add(1, Ordering::Relaxed);
                    let work =
                        TurnWork::new(u32::MAX, self.answer(TurnInput::Transcript(words.clone())));
                    self.speculation = Some(Guess {
                        words,
                        heard_turns: self.heard_turns,
                        work,
                    });
                }
                Hint::Resumed => self.drop_guess("the caller went on"),
            }
        }
    }

    fn drop_guess(&mut self, why: &str) {
        if self.speculation.take().is_some() {
            self.wasted(why);
        }
    }

    /// Counts a speculative answer dropped unheard (dropping it stopped its
    /// requests).
    fn wasted(&self, why: &str) {
        debug!(why, "speculative answer dropped unheard");
        self.parts
            .speculation
            .wasted
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The speculative answer for `input`, if it answers exactly that in
    /// this conversation.
    fn adopt(&mut self, turn: u32, input: &TurnInput) -> Option<TurnWork> {
        let guess = self.speculation.take()?;
        let fits = matches!(input, TurnInput::Transcript(words) if *words == guess.words)
            && guess.heard_turns == self.heard_turns;
        if !fits {
            drop(guess);
            self.wasted("the turn ended with other words");
            return None;
        }
        info!(turn, "the speculative answer is kept");
        let mut work = guess.work;
        work.id = turn;
        work.announce(Output::Timing(Timing::Speculative));
        Some(work)
    }
}

impl Conversation for AgentCall {
    fn abilities(&self) -> Abilities {
        let own_greeting = self
            .brief
            .greeting
            .as_deref()
            .is_some_and(|g| !g.trim().is_empty());
        Abilities {
            greets: own_greeting || !self.parts.lines.text(Line::Greeting).trim().is_empty(),
            speaks: true,
            playback_lead: None,
        }
    }

    fn hear(&mut self, mulaw: &[u8], events: &mut Vec<Event>) {
        self.hearing.hear(mulaw, events);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Start { turn, speak } => {
                let parts = Arc::clone(&self.parts);
                self.turn = Some(match speak {
                    Speak::Greeting => {
                        let brief = Arc::clone(&self.brief);
                        TurnWork::new(turn, |sink| pipeline::greet(parts, brief, sink))
                    }
                    Speak::Announcement(what) => {
                        TurnWork::new(turn, |sink| pipeline::announce(parts, what, sink))
                    }
                    Speak::Operator(text) => {
                        TurnWork::new(turn, |sink| pipeline::say(parts, text, sink))
                    }
                    Speak::Answer(input) => match self.adopt(turn, &input) {
                        Some(work) => work,
                        None => TurnWork::new(turn, self.answer(input)),
                    },
                });
            }
            Command::Cancel { turn, .. } => {
                if self.turn.as_ref().is_some_and(|t| t.id == turn) {
                    self.turn = None;
                }
            }
            Command::Heard(record) => {
                self.history
                    .add_turn(record.caller.as_deref(), &record.agent_heard);
                self.heard_turns += 1;
            }
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, room: bool) -> Poll<Event> {
        // The caller first: what the provider or the turn model learnt.
        if let Poll::Ready(event) = self.hearing.poll_event(cx) {
            return Poll::Ready(event);
        }
        self.speculate();
        if let Some(guess) = self.speculation.as_mut() {
            guess.work.prepare(cx);
        }
        // The turn's output waits for room: the work runs only when it can
        // be handed over.
        let Some(turn) = self.turn.as_mut() else {
            return Poll::Pending;
        };
        if !room {
            turn.pause();
            return Poll::Pending;
        }
        turn.poll(cx).map(|output| Event::Turn {
            turn: turn.id,
            output,
        })
    }

    fn summary(&mut self) -> Option<SummaryFuture> {
        if !self.parts.remembers {
            return None;
        }
        let llm = Arc::clone(&self.parts.llm);
        let history = self.history.messages();
        Some(Box::pin(async move {
            memory::summarize(llm.as_ref(), &history).await
        }))
    }
}
