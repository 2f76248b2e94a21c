//! Caller memory: at the end of a call the LLM writes a short summary of it,
//! kept per caller number; later calls from that number are told the latest
//! ones in their system prompt (see `prompt.rs`). Opt-in (`[store]
//! caller_memory`), because it keeps what callers said beyond the call.

use futures_util::StreamExt;

use crate::providers::{ChatMessage, ChatRequest, LanguageModel, LlmEvent, ProviderError, Role};

const INSTRUCTION: &str = "Summarize the phone call above in two or three short sentences, for your own memory the next time this caller calls: who they are if they said, what they wanted, what was agreed or left open. Write only the summary, in the language of the call.";

/// The summary of a call's conversation; `None` when nothing was said.
pub async fn summarize(
    llm: &dyn LanguageModel,
    history: &[ChatMessage],
) -> Result<Option<String>, ProviderError> {
    if !history.iter().any(|m| m.role == Role::User) {
        return Ok(None);
    }
    let mut messages: Vec<ChatMessage> = history
        .iter()
        .skip_while(|m| m.role != Role::User)
        .cloned()
        .collect();
    // The request must end with the user's turn: the instruction is it.
    match messages.last_mut() {
        Some(last) if last.role == Role::User => {
            last.content.push_str("\n\n");
            last.content.push_str(INSTRUCTION);
        }
        _ => messages.push(ChatMessage {
            role: Role::User,
            content: INSTRUCTION.into(),
        }),
    }
    let request = ChatRequest {
        system: "You keep short notes about phone calls.".into(),
        messages,
        tools: Vec::new(),
    };
    let mut stream = llm.stream(request);
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let LlmEvent::Text(delta) = event? {
            text.push_str(&delta);
        }
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.chars().take(1000).collect()))
}
