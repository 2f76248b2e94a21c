//! The agent: answers a caller turn with speech-to-text, a streaming LLM and
//! sentence-by-sentence text-to-speech (DESIGN.md §1).
//!
//! End of caller turn → STT → LLM stream → sentence splitter → one TTS
//! request per sentence, started the moment the sentence is complete → audio
//! to the session as it arrives. Nothing waits to fill a buffer, and nothing
//! polls. When a stage fails the caller hears the cached fallback line and the
//! call goes on; the failure is reported to the session for the record.

use std::sync::Arc;
use std::time::Instant;

use chrono::Local;
use futures_util::StreamExt;
use tracing::{info, warn};

use super::conversation::split_opening;
use super::lines::{Line, SpokenLines};
use super::prompt::Prompt;
use super::sentences::{DEFAULT_MAX_CHARS, SentenceSplitter};
use super::speaker::{Speaker, Spoken};
use super::tools::Tools;
use crate::call::responder::{
    Announcement, CallAction, Responder, ResponseEvent, ResponseFuture, ResponseSink, Timing,
    TurnInput, TurnRequest,
};
use crate::model::CallBrief;
use crate::model::millis;
use crate::providers::{
    ChatMessage, ChatRequest, LanguageModel, LlmEvent, ProviderError, Role, SpeechToText,
    TextToSpeech,
};

/// The parts the agent is made of.
pub struct AgentParts {
    pub stt: Arc<dyn SpeechToText>,
    pub llm: Arc<dyn LanguageModel>,
    pub tts: Arc<dyn TextToSpeech>,
    pub prompt: Prompt,
    pub lines: Arc<SpokenLines>,
    pub tools: Tools,
    pub tts_lookahead: usize,
}

#[derive(Clone)]
pub struct Agent(Arc<AgentParts>);

impl Agent {
    pub fn new(parts: AgentParts) -> Agent {
        Agent(Arc::new(parts))
    }

    pub fn lines(&self) -> Arc<SpokenLines> {
        Arc::clone(&self.0.lines)
    }

    /// The language model (also used for caller-memory summaries).
    pub fn llm(&self) -> Arc<dyn LanguageModel> {
        Arc::clone(&self.0.llm)
    }
}

/// Why a turn stopped early.
enum Stop {
    /// The session is gone (barge-in or hang-up): stop quietly.
    Gone,
    Provider(ProviderError),
}

impl From<ProviderError> for Stop {
    fn from(e: ProviderError) -> Self {
        Stop::Provider(e)
    }
}

type Step<T = ()> = Result<T, Stop>;

async fn send(sink: &ResponseSink, event: ResponseEvent) -> Step {
    sink.send(event).await.map_err(|_| Stop::Gone)
}

impl Responder for Agent {
    fn mode(&self) -> &'static str {
        "agent"
    }

    fn greet(&self, call: Arc<CallBrief>, sink: ResponseSink) -> Option<ResponseFuture> {
        let parts = Arc::clone(&self.0);
        // An outbound call's own greeting is synthesized for it; the
        // configured one comes from the cache.
        if let Some(text) = call.greeting.clone().filter(|t| !t.trim().is_empty()) {
            return Some(Box::pin(async move {
                let mut speaker = Speaker::new(Arc::clone(&parts.tts), 0);
                send(&sink, ResponseEvent::Planned(text.clone()))
                    .await
                    .map_err(|_| "call ended".to_string())?;
                speaker.say(text);
                finish_line(speak_all(&mut speaker, &sink).await, "greeting")
            }));
        }
        if self.0.lines.text(Line::Greeting).trim().is_empty() {
            return None;
        }
        Some(Box::pin(async move {
            finish_line(
                say_line(&parts.lines, Line::Greeting, &sink).await,
                "greeting",
            )
        }))
    }

    fn announce(&self, what: Announcement, sink: ResponseSink) -> Option<ResponseFuture> {
        let parts = Arc::clone(&self.0);
        let line = match what {
            Announcement::StillThere => Line::StillThere,
            Announcement::Closing => Line::Closing,
        };
        Some(Box::pin(async move {
            finish_line(say_line(&parts.lines, line, &sink).await, "announcement")
        }))
    }

    fn respond(&self, request: TurnRequest, sink: ResponseSink) -> ResponseFuture {
        let parts = Arc::clone(&self.0);
        Box::pin(async move {
            match answer(&parts, request, &sink).await {
                Ok(()) => Ok(()),
                Err(Stop::Gone) => Err("call ended".into()),
                Err(Stop::Provider(e)) => {
                    warn!(error = %e, "a provider failed; the caller hears the fallback line");
                    if let Err(Stop::Provider(e2)) =
                        say_line(&parts.lines, Line::Fallback, &sink).await
                    {
                        warn!(error = %e2, "cannot play the fallback line either");
                    }
                    Err(e.to_string())
                }
            }
        })
    }
}

fn finish_line(step: Step, what: &str) -> Result<(), String> {
    match step {
        Ok(()) => Ok(()),
        Err(Stop::Gone) => Err("call ended".into()),
        Err(Stop::Provider(e)) => Err(format!("{what}: {e}")),
    }
}

/// Forwards everything the speaker has queued until it is idle.
async fn speak_all(speaker: &mut Speaker, sink: &ResponseSink) -> Step {
    while speaker.busy() {
        forward(speaker.next().await?, sink).await?;
    }
    Ok(())
}

/// Sends what the head sentence produced.
async fn forward(spoken: Spoken, sink: &ResponseSink) -> Step {
    match spoken {
        Spoken::Audio {
            audio,
            first_byte_ms,
        } => {
            if let Some(ms) = first_byte_ms {
                send(sink, ResponseEvent::Timing(Timing::TtsFirstByte(ms))).await?;
            }
            send(sink, ResponseEvent::Audio(audio)).await
        }
        Spoken::SentenceEnd { text } => send(sink, ResponseEvent::SegmentEnd { text }).await,
    }
}

/// Plays one of the fixed lines as a segment.
async fn say_line(lines: &SpokenLines, line: Line, sink: &ResponseSink) -> Step {
    let audio = lines.audio(line).await?;
    let text = lines.text(line).to_string();
    send(sink, ResponseEvent::Planned(text.clone())).await?;
    send(sink, ResponseEvent::Audio(audio)).await?;
    send(sink, ResponseEvent::SegmentEnd { text }).await
}

async fn answer(parts: &AgentParts, request: TurnRequest, sink: &ResponseSink) -> Step {
    let said = match request.input {
        TurnInput::Speech(audio) => {
            let started = Instant::now();
            let text = parts.stt.transcribe(audio).await?;
            send(
                sink,
                ResponseEvent::Timing(Timing::Stt(millis(started.elapsed()))),
            )
            .await?;
            text
        }
        TurnInput::Keypad(text) => text,
    };
    if !is_meaningful(&said) {
        info!(
            transcript_chars = said.len(),
            "nothing intelligible was said; not answering"
        );
        return Ok(());
    }
    send(sink, ResponseEvent::Transcript(said.clone())).await?;

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
        system: parts.prompt.system(&request.call, opening, Local::now()),
        messages,
        tools: parts.tools.specs(),
    };
    speak_answer(parts, chat, sink).await
}

/// Streams the LLM's answer into sentences, each into TTS, each into the sink.
async fn speak_answer(parts: &AgentParts, chat: ChatRequest, sink: &ResponseSink) -> Step {
    let started = Instant::now();
    let mut llm = parts.llm.stream(chat);
    let mut llm_done = false;
    let mut splitter = SentenceSplitter::new(DEFAULT_MAX_CHARS);
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
                            sentences += 1;
                            send(sink, ResponseEvent::Planned(rest.clone())).await?;
                            speaker.say(rest);
                        }
                        continue;
                    }
                    Some(event) => event?,
                };
                if first_token {
                    first_token = false;
                    let ms = millis(started.elapsed());
                    send(sink, ResponseEvent::Timing(Timing::LlmFirstToken(ms))).await?;
                }
                match event {
                    LlmEvent::Text(delta) => {
                        for sentence in splitter.push(&delta) {
                            if sentences == 0 {
                                let ms = millis(started.elapsed());
                                send(sink, ResponseEvent::Timing(Timing::FirstSentence(ms))).await?;
                            }
                            sentences += 1;
                            send(sink, ResponseEvent::Planned(sentence.clone())).await?;
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
        send(sink, ResponseEvent::Action(action)).await?;
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
