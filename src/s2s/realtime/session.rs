//! One call's Realtime conversation, as a pure state machine: server events
//! and the call's commands in, client events and the call's events out. No
//! socket and no clock of its own (time is an argument), so barge-in,
//! truncation and the transcript are tested without a network.
//!
//! Who decides what:
//! - The model's voice detection ends the caller's turn (`speech_stopped`)
//!   and starts its answer by itself (`create_response`); Pronto reports the
//!   turn to the call, which starts turn N, and the next response is N's.
//!   A response the call did not ask for (the caller spoke over a greeting
//!   that cannot be interrupted) is cancelled unheard.
//! - Barge-in is the call's decision, on `speech_started`: the call clears
//!   Twilio's queue and cancels turn N with how much of its audio the
//!   caller heard. Only then is the model's item truncated there (never
//!   when everything received was heard: the model would repeat itself),
//!   and the response cancelled if it is still running; its late deltas are
//!   dropped by response id.
//! - The record: the caller's words come from the input transcription,
//!   which may arrive after the answer, even after its turn is recorded (then
//!   the turn is amended). The agent's words are the output transcript; when
//!   interrupted, what was heard is that text cut in proportion to the audio
//!   heard, at a word, and marked approximate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::protocol::{self, PCMU, ServerEvent, Usage};
use crate::agent::history::History;
use crate::agent::tools::Tools;
use crate::engine::{
    Announcement, Command, Event, InputTiming, Output, Speak, TurnError, TurnInput,
};
use crate::model::{CallAction, Timing, TokenUsage, TurnDecider, TurnRecord, millis};
use crate::providers::ProviderError;
use crate::redact::Outside;

const PROVIDER: &str = "openai-realtime";

/// A mark goes after at least this much of the model's audio (100 ms), so
/// Twilio's echoes follow the playback closely.
const MARK_EVERY: usize = 800;

/// A turn waiting for a response that never comes (the model answered
/// nothing) is over after this long.
const RESPONSE_WAIT: Duration = Duration::from_secs(8);

/// Turns kept for amendments (a late transcript comes within seconds).
const KEPT_RECORDS: usize = 8;

/// What the session says in fixed situations, and how it prices tokens.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// The greeting (empty: none).
    pub greeting: String,
    pub still_there: String,
    pub closing: String,
    /// USD per million tokens: text in, audio in, cached in, text out,
    /// audio out.
    pub prices: [f64; 5],
    /// The silence `server_vad` waits for (0 for `semantic_vad`): its
    /// `speech_stopped` reports the end of the audio it judged, that silence
    /// included, so the caller's last word was this much earlier.
    pub vad_silence_ms: u64,
}

/// One audio item of the model's, in the turn it belongs to.
#[derive(Debug, Clone, Default)]
struct Item {
    id: String,
    /// μ-law received (8 bytes per ms).
    received: usize,
    transcript: String,
    audio_done: bool,
    text_done: bool,
    /// Its segment end (with its text) was reported.
    ended: bool,
}

/// The agent's turn in progress.
#[derive(Debug)]
struct Turn {
    id: u32,
    /// When the call started it.
    started: Instant,
    /// The response producing it, once created.
    response: Option<String>,
    /// It waits for a response (created by the model, or asked for).
    expects: bool,
    items: Vec<Item>,
    /// Audio since the last mark.
    since_mark: usize,
    /// Its first audio was timed (an answer's; a fixed line's is not).
    first_audio: bool,
    /// After the response, another is needed (a tool's result went back).
    again: bool,
    /// All of it was produced; kept until the call says it is over (its
    /// audio may still be playing, and be interrupted).
    produced: bool,
}

/// A turn the call cancelled, kept until its record comes.
struct Cut {
    id: u32,
    heard: Duration,
    items: Vec<Item>,
}

/// The caller's utterance, as the model's item.
#[derive(Debug, Default)]
struct Utterance {
    turn: Option<u32>,
    transcript: Option<String>,
}

/// What comes out, for the call and for the model.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Client events to send, in order.
    pub send: Vec<String>,
    /// The caller's side: never held back.
    pub events: VecDeque<Event>,
    /// The turn's output: held while the call has no room.
    pub output: VecDeque<Event>,
}

/// How a session ended, for the conversation to act on.
#[derive(Debug, PartialEq)]
pub enum Ending {
    /// Worth a new session with the conversation so far (a drop, the
    /// 60-minute limit).
    Reconnect(String),
    /// Over: the call must end.
    Gone(String),
}

pub struct Session {
    fixed: Fixed,
    tools: Tools,
    /// `session.updated` confirmed μ-law both ways.
    ready: bool,
    /// Client events waiting for `ready`.
    held: Vec<String>,
    /// Caller audio appended (bytes): the session's audio clock.
    appended: u64,
    turn: Option<Turn>,
    cut: Option<Cut>,
    /// The response running on the server, whoever's it is.
    active: Option<String>,
    /// A `response.create` waiting for the active one to end.
    create_after: Option<Option<String>>,
    cancelled: HashSet<String>,
    utterances: HashMap<String, Utterance>,
    /// The utterance just reported to the call as a turn's end.
    reported: Option<String>,
    /// Records of turns that are over, newest last, for amendments.
    records: VecDeque<TurnRecord>,
    /// The conversation as heard, for a new session and the summary.
    pub history: History,
    gone: bool,
}

impl Session {
    pub fn new(fixed: Fixed, tools: Tools, max_history_turns: usize) -> Session {
        Session {
            fixed,
            tools,
            ready: false,
            held: Vec::new(),
            appended: 0,
            turn: None,
            cut: None,
            active: None,
            create_after: None,
            cancelled: HashSet::new(),
            utterances: HashMap::new(),
            reported: None,
            records: VecDeque::new(),
            history: History::new(max_history_turns),
            gone: false,
        }
    }

    /// It has a greeting to say (the call's own, or the configured one).
    pub fn greets(&self) -> bool {
        !self.fixed.greeting.trim().is_empty()
    }

    /// The session is gone for good: fixed lines are said otherwise.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// The socket is open: configure the session; what the model must
    /// know of the conversation so far goes in after it.
    pub fn opened(&mut self, update: String, out: &mut Outbox) {
        self.ready = false;
        out.send.push(update);
        for message in self.history.messages().iter() {
            let role = match message.role {
                crate::providers::Role::Assistant => "assistant",
                _ => "user",
            };
            out.send.push(protocol::text_item(role, &message.content));
        }
    }

    /// The caller's audio; `false` when it is not forwarded (the session
    /// is not confirmed μ-law yet).
    pub fn hear(&mut self, mulaw: &[u8], out: &mut Outbox) -> bool {
        if !self.ready {
            return false;
        }
        self.appended += mulaw.len() as u64;
        out.send.push(protocol::append(mulaw));
        true
    }

    /// A text frame from the server.
    pub fn on_text(&mut self, text: &str, now: Instant, out: &mut Outbox) -> Option<Ending> {
        let event: ServerEvent = match serde_json::from_str(text) {
            Ok(event) => event,
            Err(e) => {
                warn!(error = %e, text = %Outside(&text.chars().take(200).collect::<String>()), "unreadable Realtime event; skipped");
                return None;
            }
        };
        self.on_event(event, now, out)
    }

    fn on_event(&mut self, event: ServerEvent, now: Instant, out: &mut Outbox) -> Option<Ending> {
        match event {
            ServerEvent::SessionUpdated { session } => {
                let formats = (
                    protocol::format_of(&session, "input"),
                    protocol::format_of(&session, "output"),
                );
                if formats != (Some(PCMU.into()), Some(PCMU.into())) {
                    // Never play 24 kHz PCM to Twilio as μ-law: static.
                    return Some(self.give_up(format!(
                        "the session kept the audio formats {:?}/{:?}, not audio/pcmu",
                        formats.0.unwrap_or_default(),
                        formats.1.unwrap_or_default()
                    )));
                }
                if !self.ready {
                    info!("Realtime session ready (μ-law both ways)");
                    self.ready = true;
                    out.send.append(&mut self.held);
                }
            }
            ServerEvent::Error { error } => {
                let code = error.code.unwrap_or_default();
                if error.event_id.as_deref() == Some(protocol::SESSION_UPDATE_ID) && !self.ready {
                    return Some(self.give_up(format!(
                        "the session was refused: {code}: {}",
                        Outside(&error.message)
                    )));
                }
                match code.as_str() {
                    "response_cancel_not_active" => debug!("nothing to cancel"),
                    _ => {
                        warn!(code = %Outside(&code), message = %Outside(&error.message), "Realtime error event")
                    }
                }
            }
            ServerEvent::SpeechStarted { item_id, .. } => {
                self.utterances.entry(item_id).or_default();
                self.reported = None;
                out.events.push_back(Event::SpeechStarted);
                out.events.push_back(Event::Interrupting);
            }
            ServerEvent::SpeechStopped {
                audio_end_ms,
                item_id,
            } => {
                let heard_ms = self.appended / 8;
                let last_word_ms = audio_end_ms.saturating_sub(self.fixed.vad_silence_ms);
                let wait = Duration::from_millis(heard_ms.saturating_sub(last_word_ms));
                self.utterances.entry(item_id.clone()).or_default();
                self.reported = Some(item_id);
                out.events.push_back(Event::TurnEnded {
                    input: TurnInput::Spoken,
                    timing: InputTiming {
                        endpoint_wait: wait,
                        decided_after: wait,
                        decided_by: TurnDecider::Provider,
                        streamed: true,
                        utterance: Duration::ZERO,
                    },
                });
            }
            ServerEvent::InputTranscript {
                item_id,
                transcript,
            } => self.caller_words(&item_id, transcript, out),
            ServerEvent::ResponseCreated { response } => {
                self.active = Some(response.id.clone());
                match self
                    .turn
                    .as_mut()
                    .filter(|t| t.expects && t.response.is_none())
                {
                    Some(turn) => {
                        turn.response = Some(response.id);
                        turn.expects = false;
                    }
                    None => {
                        debug!(
                            "a response nobody asked for (the caller spoke over a turn that goes on); cancelled"
                        );
                        out.send.push(protocol::response_cancel(&response.id));
                        self.cancelled.insert(response.id);
                    }
                }
            }
            ServerEvent::OutputItemAdded { response_id, item } => {
                if item.kind == "message"
                    && let Some(turn) = self.turn_of(&response_id)
                {
                    turn.items.push(Item {
                        id: item.id,
                        ..Item::default()
                    });
                }
            }
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                delta,
            } => {
                let turn = self.turn_of(&response_id)?;
                let Some(audio) = protocol::audio_of(&delta) else {
                    warn!("an audio delta that is not base64; skipped");
                    return None;
                };
                let id = turn.id;
                if !turn.first_audio {
                    turn.first_audio = true;
                    let ms = millis(now.saturating_duration_since(turn.started));
                    out.output
                        .push_back(output(id, Output::Timing(Timing::ModelFirstAudio(ms))));
                }
                match turn.items.iter_mut().find(|i| i.id == item_id) {
                    Some(item) => item.received += audio.len(),
                    None => turn.items.push(Item {
                        id: item_id,
                        received: audio.len(),
                        ..Item::default()
                    }),
                }
                turn.since_mark += audio.len();
                out.output
                    .push_back(output(id, Output::Audio(Bytes::from(audio))));
                if turn.since_mark >= MARK_EVERY {
                    turn.since_mark = 0;
                    out.output.push_back(output(
                        id,
                        Output::SegmentEnd {
                            text: String::new(),
                        },
                    ));
                }
            }
            ServerEvent::TranscriptDelta {
                response_id,
                item_id,
                delta,
            } => {
                if let Some(item) = self.item_of(&response_id, &item_id) {
                    item.transcript.push_str(&delta);
                }
            }
            ServerEvent::AudioDone {
                response_id,
                item_id,
            } => self.item_done(&response_id, &item_id, None, out),
            ServerEvent::TranscriptDone {
                response_id,
                item_id,
                transcript,
            } => self.item_done(&response_id, &item_id, Some(transcript), out),
            ServerEvent::FunctionCall {
                response_id,
                call_id,
                name,
                arguments,
            } => self.function_call(&response_id, &call_id, &name, &arguments, out),
            ServerEvent::ResponseDone { response } => {
                if self.active.as_deref() == Some(response.id.as_str()) {
                    self.active = None;
                }
                if let Some(usage) = response.usage {
                    out.events.push_back(Event::Usage(self.priced(usage)));
                }
                self.cancelled.remove(&response.id);
                self.response_done(&response.id, &response.status, out);
                if let Some(instructions) = self.create_after.take() {
                    self.create(instructions, out);
                }
            }
            ServerEvent::Other => {}
        }
        None
    }

    /// The socket ended: a new session for a drop or the time limit, the
    /// end for a refusal.
    pub fn ended(&mut self, closed: crate::providers::socket::Ending, out: &mut Outbox) -> Ending {
        use crate::providers::socket::{Closed, Ending as Socket};
        let why = match closed {
            Socket::NotOpened(Closed::Fatal(e)) => return self.give_up(e.to_string()),
            Socket::NotOpened(Closed::Retry(e)) => e.to_string(),
            Socket::NotOpened(Closed::Clean) => "the connection closed".into(),
            Socket::ClosedBy(code, reason) => {
                let reason = format!(
                    "closed by OpenAI ({}): {}",
                    code.unwrap_or(0),
                    Outside(&reason)
                );
                // 1001: the session's time limit or a restart; 1011: a
                // server error. Anything else (4000: a refused protocol, a
                // policy) would only be refused again.
                if !matches!(code, None | Some(1001 | 1006 | 1011 | 1012 | 1013)) {
                    return self.give_up(reason);
                }
                reason
            }
            Socket::Dropped(why) => format!("the connection dropped: {}", Outside(&why)),
        };
        // What was being said is lost with the session.
        self.ready = false;
        self.held.clear();
        self.active = None;
        self.create_after = None;
        if let Some(turn) = self.turn.take().filter(|t| !t.produced) {
            out.output.push_back(output(
                turn.id,
                Output::Failed(TurnError::Provider(ProviderError::Connect {
                    provider: PROVIDER,
                    detail: why.clone(),
                })),
            ));
        }
        Ending::Reconnect(why)
    }

    /// The session cannot go on.
    pub fn give_up(&mut self, why: String) -> Ending {
        self.gone = true;
        self.ready = false;
        Ending::Gone(why)
    }

    /// A command of the call's.
    pub fn command(&mut self, command: Command, now: Instant, out: &mut Outbox) {
        match command {
            Command::Start { turn, speak } => self.start(turn, speak, now, out),
            Command::Cancel { turn, heard } => self.cancel(turn, heard, out),
            Command::Heard(record) => self.heard(*record, out),
        }
    }

    /// Time has passed: a turn whose response never came is over.
    pub fn tick(&mut self, now: Instant, out: &mut Outbox) {
        if let Some(turn) = self.turn.as_ref()
            && !turn.produced
            && turn.expects
            && turn.response.is_none()
            && now.saturating_duration_since(turn.started) > RESPONSE_WAIT
        {
            warn!(turn = turn.id, "the model did not answer; the turn is over");
            out.output.push_back(output(turn.id, Output::Finished));
            self.turn = None;
        }
    }

    fn start(&mut self, id: u32, speak: Speak, now: Instant, out: &mut Outbox) {
        let mut turn = Turn {
            id,
            started: now,
            response: None,
            expects: true,
            items: Vec::new(),
            since_mark: 0,
            first_audio: !matches!(speak, Speak::Answer(_)),
            again: false,
            produced: false,
        };
        let instructions = match speak {
            Speak::Greeting => Some(protocol::say_exactly(&self.fixed.greeting)),
            Speak::Announcement(Announcement::StillThere) => {
                Some(protocol::say_exactly(&self.fixed.still_there))
            }
            Speak::Announcement(Announcement::Closing) => {
                Some(protocol::say_exactly(&self.fixed.closing))
            }
            Speak::Operator(text) => Some(protocol::say_exactly(&text)),
            // The model heard it and answers by itself.
            Speak::Answer(TurnInput::Spoken) => {
                if let Some(item) = self.reported.take()
                    && let Some(utterance) = self.utterances.get_mut(&item)
                {
                    utterance.turn = Some(id);
                    if let Some(text) = utterance.transcript.take() {
                        out.output.push_back(output(id, Output::Transcript(text)));
                        self.utterances.remove(&item);
                    }
                }
                self.turn = Some(turn);
                return;
            }
            Speak::Answer(TurnInput::Keypad(text) | TurnInput::Transcript(text)) => {
                out.output
                    .push_back(output(id, Output::Transcript(text.clone())));
                self.send(protocol::text_item("user", &text), out);
                None
            }
            Speak::Answer(TurnInput::Speech(_)) => {
                // Only the cascade transcribes a turn's audio.
                turn.expects = false;
                out.output.push_back(output(id, Output::Finished));
                return;
            }
        };
        self.turn = Some(turn);
        self.create(instructions, out);
    }

    /// Asks for a response now, or after the one running.
    fn create(&mut self, instructions: Option<String>, out: &mut Outbox) {
        if self.active.is_some() {
            self.create_after = Some(instructions);
        } else {
            self.send(protocol::response_create(instructions.as_deref()), out);
        }
    }

    /// Sends now, or once the session is ready.
    fn send(&mut self, message: String, out: &mut Outbox) {
        if self.ready {
            out.send.push(message);
        } else {
            self.held.push(message);
        }
    }

    fn cancel(&mut self, id: u32, heard: Duration, out: &mut Outbox) {
        let Some(turn) = self.turn.take_if(|t| t.id == id) else {
            return;
        };
        let received: usize = turn.items.iter().map(|i| i.received).sum();
        let heard_bytes = usize::try_from(heard.as_millis() * 8).unwrap_or(usize::MAX);
        if heard_bytes < received {
            // Truncate the item that was playing where the caller stopped
            // hearing it: the model then knows what it was heard saying.
            let mut before = 0;
            for item in turn.items.iter().filter(|i| i.received > 0) {
                if before + item.received > heard_bytes {
                    let ms = (heard_bytes.saturating_sub(before) / 8) as u64;
                    info!(
                        turn = id,
                        audio_end_ms = ms,
                        "truncating the model's item at what was heard"
                    );
                    out.send.push(protocol::truncate(&item.id, ms));
                    break;
                }
                before += item.received;
            }
        }
        if let Some(response) = turn.response.filter(|r| self.active.as_ref() == Some(r)) {
            out.send.push(protocol::response_cancel(&response));
            self.cancelled.insert(response);
        }
        if turn.expects {
            // Its response may still be created: it is nobody's now.
            self.create_after = None;
        }
        self.cut = Some(Cut {
            id,
            heard,
            items: turn.items,
        });
    }

    /// A turn is over: the record, corrected where Pronto knows better.
    fn heard(&mut self, mut record: TurnRecord, out: &mut Outbox) {
        if self.turn.as_ref().is_some_and(|t| t.id == record.turn) {
            self.turn = None;
        }
        let mut amended = false;
        if let Some(cut) = self.cut.take().filter(|c| c.id == record.turn) {
            let (said, heard, approximate) = heard_of(&cut.items, cut.heard);
            if record.agent_said.trim().is_empty() && !said.is_empty() {
                record.agent_said = said;
                amended = true;
            }
            if approximate || heard != record.agent_heard {
                record.agent_heard = heard;
                record.heard_approximate = approximate;
                amended = true;
            }
        }
        if record.caller.is_none() {
            let late = self
                .utterances
                .iter()
                .find(|(_, u)| u.turn == Some(record.turn) && u.transcript.is_some())
                .map(|(k, _)| k.clone());
            if let Some(item) = late
                && let Some(u) = self.utterances.remove(&item)
            {
                record.caller = u.transcript;
                amended = true;
            }
        }
        self.history
            .add_turn(record.caller.as_deref(), &record.agent_heard);
        if amended {
            out.events
                .push_back(Event::Amended(Box::new(record.clone())));
        }
        if self.records.len() >= KEPT_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// The caller's words for item `item_id`, placed in their turn.
    fn caller_words(&mut self, item_id: &str, text: String, out: &mut Outbox) {
        let text = text.trim().to_string();
        let Some(utterance) = self.utterances.get_mut(item_id) else {
            debug!("a transcript for an utterance this call does not know; ignored");
            return;
        };
        let Some(turn) = utterance.turn else {
            // Not yet a turn (or never: spoken over a turn that went on).
            utterance.transcript = Some(text);
            return;
        };
        if self.turn.as_ref().is_some_and(|t| t.id == turn) {
            out.output.push_back(output(turn, Output::Transcript(text)));
            self.utterances.remove(item_id);
        } else if let Some(record) = self.records.iter_mut().find(|r| r.turn == turn) {
            debug!(
                turn,
                "the caller's words came after their turn; amending it"
            );
            record.caller = Some(text);
            out.events
                .push_back(Event::Amended(Box::new(record.clone())));
            self.utterances.remove(item_id);
        } else {
            // The turn is being recorded right now (cancelled): with its record.
            utterance.transcript = Some(text);
        }
    }

    fn function_call(
        &mut self,
        response_id: &str,
        call_id: &str,
        name: &str,
        arguments: &str,
        out: &mut Outbox,
    ) {
        let action = self.tools.action(name);
        let Some(turn) = self.turn_of(response_id) else {
            return;
        };
        let id = turn.id;
        let result = match &action {
            Some(CallAction::EndCall) => "The call ends once the caller has heard your words.",
            Some(CallAction::Transfer { .. }) => {
                "The caller is transferred once they have heard your words."
            }
            None => {
                turn.again = true;
                "Error: no such tool."
            }
        };
        info!(turn = id, tool = %Outside(name), arguments_chars = arguments.len(), "tool called");
        out.send.push(protocol::function_output(call_id, result));
        if let Some(action) = action {
            out.output.push_back(output(id, Output::Action(action)));
        }
    }

    /// An item's audio is complete (`transcript` `None`), or its text is.
    fn item_done(
        &mut self,
        response_id: &str,
        item_id: &str,
        transcript: Option<String>,
        out: &mut Outbox,
    ) {
        if let Some(item) = self.item_of(response_id, item_id) {
            match transcript {
                Some(text) => {
                    item.transcript = text;
                    item.text_done = true;
                }
                None => item.audio_done = true,
            }
        }
        self.end_items(response_id, false, out);
    }

    /// Reports the segment end of every item of the response whose audio
    /// and text are both complete (all of them when `all`).
    fn end_items(&mut self, response_id: &str, all: bool, out: &mut Outbox) {
        let Some(turn) = self.turn_of(response_id) else {
            return;
        };
        let id = turn.id;
        for item in turn.items.iter_mut().filter(|i| !i.ended) {
            if all || (item.audio_done && item.text_done) {
                item.ended = true;
                turn.since_mark = 0;
                let text = item.transcript.trim().to_string();
                if !text.is_empty() {
                    out.output
                        .push_back(output(id, Output::Planned(text.clone())));
                }
                out.output
                    .push_back(output(id, Output::SegmentEnd { text }));
            }
        }
    }

    fn response_done(&mut self, response_id: &str, status: &str, out: &mut Outbox) {
        self.end_items(response_id, true, out);
        let Some(turn) = self.turn_of(response_id) else {
            return;
        };
        let id = turn.id;
        if status == "failed" {
            warn!(turn = id, "the model's response failed");
        }
        if turn.again {
            // A tool's result went back: the model answers again.
            turn.again = false;
            turn.response = None;
            turn.expects = true;
            self.create(None, out);
            return;
        }
        turn.produced = true;
        out.output.push_back(output(id, Output::Finished));
    }

    /// The turn `response_id` produces, unless it was cancelled.
    fn turn_of(&mut self, response_id: &str) -> Option<&mut Turn> {
        if self.cancelled.contains(response_id) {
            return None;
        }
        self.turn
            .as_mut()
            .filter(|t| t.response.as_deref() == Some(response_id))
    }

    fn item_of(&mut self, response_id: &str, item_id: &str) -> Option<&mut Item> {
        self.turn_of(response_id)?
            .items
            .iter_mut()
            .find(|i| i.id == item_id)
    }

    fn priced(&self, usage: Usage) -> TokenUsage {
        let i = usage.input_token_details;
        let o = usage.output_token_details;
        let cached = i.cached_tokens.min(i.text_tokens + i.audio_tokens);
        let [text_in, audio_in, cached_in, text_out, audio_out] = self.fixed.prices;
        // Cached tokens are counted as audio, most of a voice call's context.
        let uncached_audio = i.audio_tokens.saturating_sub(cached);
        let usd = (i.text_tokens as f64 * text_in
            + uncached_audio as f64 * audio_in
            + cached as f64 * cached_in
            + o.text_tokens as f64 * text_out
            + o.audio_tokens as f64 * audio_out)
            / 1e6;
        TokenUsage {
            text_in: i.text_tokens,
            audio_in: i.audio_tokens,
            cached_in: i.cached_tokens,
            text_out: o.text_tokens,
            audio_out: o.audio_tokens,
            cost_microusd: (usd * 1e6).round() as u64,
        }
    }
}

fn output(turn: u32, output: Output) -> Event {
    Event::Turn { turn, output }
}

/// What the model said in `items`, and what the caller heard of it after
/// `heard` of their audio: whole items, then the playing one's text cut in
/// proportion to its audio heard, at a word (then approximate).
fn heard_of(items: &[Item], heard: Duration) -> (String, String, bool) {
    let mut left = usize::try_from(heard.as_millis() * 8).unwrap_or(usize::MAX);
    let mut said = Vec::new();
    let mut heard_parts = Vec::new();
    let mut approximate = false;
    for item in items {
        let text = item.transcript.trim();
        if text.is_empty() {
            continue;
        }
        said.push(text);
        if left >= item.received {
            left -= item.received;
            heard_parts.push(text.to_string());
        } else if left > 0 {
            approximate = true;
            let share = left as f64 / item.received as f64;
            let cut = cut_at_word(text, share);
            if !cut.is_empty() {
                heard_parts.push(cut);
            }
            left = 0;
        }
    }
    (said.join(" "), heard_parts.join(" "), approximate)
}

/// The first `share` of `text` by characters, back to the last whole word.
fn cut_at_word(text: &str, share: f64) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = ((chars.len() as f64) * share.clamp(0.0, 1.0)).floor() as usize;
    if n >= chars.len() {
        return text.to_string();
    }
    let kept: String = chars[..n].iter().collect();
    // A word cut in the middle was not heard whole.
    let whole = if chars[n].is_whitespace() {
        kept.as_str()
    } else {
        kept.rsplit_once(char::is_whitespace).map_or("", |(w, _)| w)
    };
    whole.trim_end().to_string()
}

#[cfg(test)]
mod tests;
