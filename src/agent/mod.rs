//! The agent: the engine that answers with speech-to-text, an LLM and
//! text-to-speech, one after the other, sentence by sentence (a cascade).
//!
//! It hears the caller with [`Endpointing`] (the turn ends after a
//! silence), answers each turn in a child task ([`pipeline`]), and keeps
//! the conversation as the caller heard it ([`history`]). What it needs is
//! here too: the sentence splitter, the prompt, the fixed lines, the tools,
//! caller memory.

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::audio::vad::{EndpointerConfig, VadError};
use crate::engine::endpointing::Endpointing;
use crate::engine::{Abilities, Command, Conversation, Engine, Event, Speak, SummaryFuture};
use crate::model::CallBrief;
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
    pub stt: Arc<dyn SpeechToText>,
    pub llm: Arc<dyn LanguageModel>,
    pub tts: Arc<dyn TextToSpeech>,
    pub prompt: Prompt,
    pub lines: Arc<SpokenLines>,
    pub tools: Tools,
    pub tts_lookahead: usize,
    /// How the agent hears turns.
    pub vad: EndpointerConfig,
    pub barge_in_min_ms: u32,
    /// Conversation turns kept for the LLM.
    pub max_history_turns: usize,
    /// Caller memory on: the agent summarizes each call.
    pub remembers: bool,
}

/// The agent engine.
#[derive(Clone)]
pub struct Agent(Arc<AgentParts>);

impl Agent {
    /// Checks the endpointer settings once, so that opening a call cannot fail.
    pub fn new(parts: AgentParts) -> Result<Agent, VadError> {
        Endpointing::new(&parts.vad, parts.barge_in_min_ms)?;
        Ok(Agent(Arc::new(parts)))
    }

    pub fn lines(&self) -> Arc<SpokenLines> {
        Arc::clone(&self.0.lines)
    }
}

impl Engine for Agent {
    fn mode(&self) -> &'static str {
        "agent"
    }

    fn open(&self, brief: Arc<CallBrief>) -> Box<dyn Conversation> {
        let parts = Arc::clone(&self.0);
        let hearing = Endpointing::new(&parts.vad, parts.barge_in_min_ms)
            .unwrap_or_else(|_| unreachable!("checked in Agent::new"));
        Box::new(AgentCall {
            history: History::new(parts.max_history_turns),
            parts,
            brief,
            hearing,
            turn: None,
        })
    }
}

/// The agent's side of one call.
struct AgentCall {
    parts: Arc<AgentParts>,
    brief: Arc<CallBrief>,
    hearing: Endpointing,
    history: History,
    /// The turn being produced (its work stops when it is replaced or dropped).
    turn: Option<TurnWork>,
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
                    Speak::Answer(input) => {
                        let request = TurnRequest {
                            brief: Arc::clone(&self.brief),
                            input,
                            history: self.history.messages(),
                        };
                        TurnWork::new(turn, |sink| pipeline::answer(parts, request, sink))
                    }
                });
            }
            Command::Cancel { turn } => {
                if self.turn.as_ref().is_some_and(|t| t.id == turn) {
                    self.turn = None;
                }
            }
            Command::Heard(record) => self
                .history
                .add_turn(record.caller.as_deref(), &record.agent_heard),
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, room: bool) -> Poll<Event> {
        // The agent's only events after `hear` are its turn's output, which
        // waits for room: the work runs only when it can be handed over.
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
