//! How the agent produces one turn: the greeting, an announcement, an
//! operator's words, or the answer to what the caller said.
//!
//! An answer: speech-to-text → LLM stream → sentence splitter → one TTS
//! request per sentence, started the moment the sentence is complete →
//! audio to the call as it arrives. Nothing waits to fill a buffer, and
//! nothing polls. When a stage fails the caller hears the cached fallback
//! line and the call goes on; the failure is reported for the record.

use std::sync::Arc;
use std::time::Instant;

use chrono::Local;
use futures_util::StreamExt;
use tracing::{info, warn};

use super::AgentParts;
use super::history::split_opening;
use super::lines::{Line, SpokenLines};
use super::sentences::{DEFAULT_MAX_CHARS, SentenceSplitter};

/// The first piece of an answer may be a clause of at least this many
/// characters: TTS starts on it instead of waiting for the whole first
/// sentence, and shorter openings ("Sure,") would sound clipped alone.
const FIRST_CLAUSE_MIN_CHARS: usize = 24;
use super::speaker::{Speaker, Spoken};
use super::task::Sink;
use crate::engine::{Announcement, Output, TurnError, TurnInput};
use crate::model::{CallAction, CallBrief, Timing, millis};
use crate::providers::{ChatMessage, ChatRequest, LlmEvent, ProviderError, Role};

/// One caller turn to answer.
pub struct TurnRequest {
    pub brief: Arc<CallBrief>,
    pub input: TurnInput,
    /// The conversation before this turn: what was said, and of the agent's
    /// answers only what the caller heard.
    pub history: Arc<[ChatMessage]>,
}

type Step<T = ()> = Result<T, TurnError>;

/// An answer being produced (a turn's work).
pub type Answering = std::pin::Pin<Box<dyn std::future::Future<Output = Step> + Send>>;

/// The greeting: an outbound call's own (synthesized for it), else the
/// configured one (cached).
pub async fn greet(parts: Arc<AgentParts>, brief: Arc<CallBrief>, sink: Sink) -> Step {
    let step = match brief.greeting.clone().filter(|t| !t.trim().is_empty()) {
        Some(text) => say_text(&parts, text, &sink).await,
        None => say_line(&parts.lines, Line::Greeting, &sink).await,
    };
    as_line(step, "greeting")
}

/// What an operator typed on the dashboard, in the agent's voice.
pub async fn say(parts: Arc<AgentParts>, text: String, sink: Sink) -> Step {
    say_text(&parts, text, &sink).await
}

/// `text`, synthesized now (not a cached line).
async fn say_text(parts: &AgentParts, text: String, sink: &Sink) -> Step {
    let mut speaker = Speaker::new(Arc::clone(&parts.tts), 0);
    sink.send(Output::Planned(text.clone())).await;
    speaker.say(text);
    speak_all(&mut speaker, sink).await
}

/// One of Pronto's announcements, in its fixed line.
pub async fn announce(parts: Arc<AgentParts>, what: Announcement, sink: Sink) -> Step {
    let line = match what {
        Announcement::StillThere => Line::StillThere,
        Announcement::Closing => Line::Closing,
    };
    as_line(say_line(&parts.lines, line, &sink).await, "announcement")
}

/// The answer to one caller turn; when a provider fails, the caller hears
/// the fallback line.
pub async fn answer(parts: Arc<AgentParts>, request: TurnRequest, sink: Sink) -> Step {
    let answered = answer_with(&parts, request, &sink).await;
    if let Err(e) = &answered {
        warn!(error = %e, "a provider failed; the caller hears the fallback line");
        if let Err(e2) = say_line(&parts.lines, Line::Fallback, &sink).await {
            warn!(error = %e2, "cannot play the fallback line either");
        }
    }
    answered
}

/// A fixed line's failure, named after the line.
fn as_line(step: Step, line: &'static str) -> Step {
    step.map_err(|e| match e {
        TurnError::Provider(error) => TurnError::Line { line, error },
        other => other,
    })
}

/// Forwards everything the speaker has queued until it is idle.
async fn speak_all(speaker: &mut Speaker, sink: &Sink) -> Step {
    while speaker.busy() {
        forward(speaker.next().await?, sink).await?;
    }
    Ok(())
}

/// Sends what the head sentence produced.
async fn forward(spoken: Spoken, sink: &Sink) -> Step {
    match spoken {
        Spoken::Audio {
            audio,
            first_byte_ms,
        } => {
            if let Some(ms) = first_byte_ms {
                sink.send(Output::Timing(Timing::TtsFirstByte(ms))).await;
            }
            sink.send(Output::Audio(audio)).await;
            Ok(())
        }
        Spoken::SentenceEnd { text } => {
            sink.send(Output::SegmentEnd { text }).await;
            Ok(())
        }
    }
}

/// Plays one of the fixed lines as a segment.
async fn say_line(lines: &SpokenLines, line: Line, sink: &Sink) -> Step {
    let audio = lines.audio(line).await?;
    let text = lines.text(line).to_string();
    sink.send(Output::Planned(text.clone())).await;
    sink.send(Output::Audio(audio)).await;
    sink.send(Output::SegmentEnd { text }).await;
    Ok(())
}

async fn answer_with(parts: &AgentParts, request: TurnRequest, sink: &Sink) -> Step {
    let said = match request.input {
        TurnInput::Speech(audio) => {
            let Some(stt) = parts.stt.as_ref() else {
                return Err(TurnError::Provider(ProviderError::protocol(
                    "stt",
                    "the speech-to-text stream was down for this turn, and no provider transcribes by request",
                )));
            };
            let started = Instant::now();
            let text = stt.transcribe(audio).await?;
            sink.send(Output::Timing(Timing::Stt(millis(started.elapsed()))))
                .await;
            text
        }
        TurnInput::Transcript(text) | TurnInput::Keypad(text) => text,
        // Only a speech-to-speech engine hears the caller itself.
        TurnInput::Spoken => String::new(),
    };
    if !is_meaningful(&said) {
        info!(
            transcript_chars = said.len(),
            "nothing intelligible was said; not answering"
        );
        return Ok(());
    }
    sink.send(Output::Transcript(said.clone())).await;

    let (opening, earlier) = split_opening(&request.history);
    let mut messages = earlier.to_vec();
    match messages.last_mut() {
        // The last answer was not heard at all: the caller spoke twice in a row.
        Some(last) if last.role == Role::User => {
            last.content.push('\n');
            last.content.push_str(&said);
        }
        _ => messages.push(ChatMessage {
            role: Role::User,
            content: said,
        }),
    }
    let chat = ChatRequest {
        system: parts.prompt.system(&request.brief, opening, Local::now()),
        messages,
        tools: parts.tools.specs(),
    };
    speak_answer(parts, chat, sink).await
}

/// Streams the LLM's answer into sentences, each into TTS, each into the sink.
async fn speak_answer(parts: &AgentParts, chat: ChatRequest, sink: &Sink) -> Step {
    let started = Instant::now();
    let mut llm = parts.llm.stream(chat);
    let mut llm_done = false;
    let mut splitter =
        SentenceSplitter::new(DEFAULT_MAX_CHARS).first_clause(FIRST_CLAUSE_MIN_CHARS);
    let mut speaker = Speaker::new(Arc::clone(&parts.tts), parts.tts_lookahead);
    let mut first_token = true;
    let mut sentences = 0u32;
    let mut action: Option<CallAction> = None;
    loop {
        tokio::select! {
            event = llm.next(), if !llm_done => {
                let event = match event {
                    None => {
                        llm_done = true;
                        if let Some(rest) = splitter.finish() {
                            if sentences == 0 {
                                // A one-sentence answer ends with the stream.
                                let ms = millis(started.elapsed());
                                sink.send(Output::Timing(Timing::FirstSentence(ms))).await;
                                sink.send(Output::Timing(Timing::FirstTtsRequest(ms))).await;
                            }
                            sentences += 1;
                            sink.send(Output::Planned(rest.clone())).await;
                            speaker.say(rest);
                        }
                        continue;
                    }
                    Some(event) => event?,
                };
                if first_token {
                    first_token = false;
                    let ms = millis(started.elapsed());
                    sink.send(Output::Timing(Timing::LlmFirstToken(ms))).await;
                }
                match event {
                    LlmEvent::Text(delta) => {
                        for sentence in splitter.push(&delta) {
                            if sentences == 0 {
                                let ms = millis(started.elapsed());
                                sink.send(Output::Timing(Timing::FirstSentence(ms))).await;
                                sink.send(Output::Timing(Timing::FirstTtsRequest(ms))).await;
                            }
                            sentences += 1;
                            sink.send(Output::Planned(sentence.clone())).await;
                            speaker.say(sentence);
                        }
                    }
                    LlmEvent::ToolCall { name, .. } => match parts.tools.action(&name) {
                        Some(a) => {
                            info!(tool = %name, "the agent called a tool");
                            action = Some(a);
                        }
                        None => warn!(tool = %name, "the LLM called a tool that is not offered; ignored"),
                    },
                }
            }
            spoken = speaker.next(), if speaker.busy() => forward(spoken?, sink).await?,
            else => break,
        }
    }
    if let Some(action) = action {
        if sentences == 0 {
            let line = match action {
                CallAction::EndCall => Line::Goodbye,
                CallAction::Transfer { .. } => Line::Transfer,
            };
            say_line(&parts.lines, line, sink).await?;
        }
        sink.send(Output::Action(action)).await;
    }
    Ok(())
}

/// Whether a transcript is worth answering: it has a letter or digit, and is
/// not one of the phrases Whisper-family models invent from noise (they were
/// trained on subtitled videos).
pub fn is_meaningful(transcript: &str) -> bool {
    const HALLUCINATIONS: [&str; 6] = [
        "thanks for watching",
        "thank you for watching",
        "subtitles by",
        "please subscribe",
        "sottotitoli creati",
        "amara.org",
    ];
    let lower = transcript.to_lowercase();
    lower.chars().any(char::is_alphanumeric) && !HALLUCINATIONS.iter().any(|h| lower.contains(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_transcripts_are_not_answered() {
        for noise in ["", "   ", "...", " . ", "Thanks for watching!", "♪ ♪"] {
            assert!(!is_meaningful(noise), "{noise:?}");
        }
        for speech in ["Hi.", "no", "42", "[keypad: 1 #]", "Buongiorno"] {
            assert!(is_meaningful(speech), "{speech:?}");
        }
    }
}
