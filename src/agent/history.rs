//! The conversation of one call as the LLM sees it: what the caller said,
//! and of the agent's answers only what the caller heard (the call tells the
//! agent after each turn). The LLM never "remembers" saying what was cleared.
//!
//! Kept as alternating user/assistant messages (consecutive messages of one
//! role are merged, as both Claude and GPT want), bounded to the last
//! `max_turns` caller turns. The greeting, heard before the caller has said
//! anything, is the one assistant message that may come first; the pipeline
//! moves it into the system prompt.

use std::sync::Arc;

use crate::providers::{ChatMessage, Role};

#[derive(Debug, Clone)]
pub struct History {
    messages: Vec<ChatMessage>,
    max_turns: usize,
}

impl History {
    pub fn new(max_turns: usize) -> Self {
        History {
            messages: Vec::new(),
            max_turns: max_turns.max(1),
        }
    }

    /// Records one turn: what the caller said (if anything was understood) and
    /// what the caller heard of the answer (may be empty).
    pub fn add_turn(&mut self, caller: Option<&str>, heard: &str) {
        if let Some(text) = caller.map(str::trim).filter(|t| !t.is_empty()) {
            self.push(Role::User, text);
        }
        let heard = heard.trim();
        if !heard.is_empty() {
            self.push(Role::Assistant, heard);
        }
        self.trim();
    }

    /// The messages so far, for the next request.
    pub fn messages(&self) -> Arc<[ChatMessage]> {
        Arc::from(self.messages.as_slice())
    }

    fn push(&mut self, role: Role, text: &str) {
        match self.messages.last_mut() {
            Some(last) if last.role == role => {
                last.content.push('\n');
                last.content.push_str(text);
            }
            _ => self.messages.push(ChatMessage {
                role,
                content: text.to_string(),
            }),
        }
    }

    /// Drops the oldest turns beyond `max_turns`; the kept part starts with a
    /// caller message.
    fn trim(&mut self) {
        let user_messages = self
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .count();
        if user_messages <= self.max_turns {
            return;
        }
        let mut to_drop = user_messages - self.max_turns;
        let mut cut = 0;
        for (i, m) in self.messages.iter().enumerate() {
            if m.role == Role::User {
                if to_drop == 0 {
                    cut = i;
                    break;
                }
                to_drop -= 1;
            }
        }
        self.messages.drain(..cut);
    }
}

/// Splits a history into its opening (assistant messages before the caller
/// said anything, i.e. the greeting) and the rest, which starts with the caller.
pub fn split_opening(history: &[ChatMessage]) -> (Option<&str>, &[ChatMessage]) {
    match history.first() {
        Some(first) if first.role == Role::Assistant => {
            (Some(first.content.as_str()), &history[1..])
        }
        _ => (None, history),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(c: &History) -> Vec<(Role, String)> {
        c.messages()
            .iter()
            .map(|m| (m.role, m.content.clone()))
            .collect()
    }

    #[test]
    fn turns_alternate_and_keep_only_heard_text() {
        let mut c = History::new(10);
        c.add_turn(None, "Hello, how can I help?");
        c.add_turn(Some("What time do you open?"), "We open at nine.");
        c.add_turn(Some("And on Sunday?"), "");
        c.add_turn(Some(" Sorry, on Saturday? "), "On Saturday at ten.");
        assert_eq!(
            roles(&c),
            vec![
                (Role::Assistant, "Hello, how can I help?".into()),
                (Role::User, "What time do you open?".into()),
                (Role::Assistant, "We open at nine.".into()),
                (Role::User, "And on Sunday?\nSorry, on Saturday?".into()),
                (Role::Assistant, "On Saturday at ten.".into()),
            ]
        );
        let history = c.messages();
        let (opening, rest) = split_opening(&history);
        assert_eq!(opening, Some("Hello, how can I help?"));
        assert_eq!(rest[0].role, Role::User);
    }

    #[test]
    fn an_empty_turn_changes_nothing() {
        let mut c = History::new(10);
        c.add_turn(Some("   "), "  ");
        c.add_turn(None, "");
        assert!(c.messages().is_empty());
    }

    #[test]
    fn old_turns_are_dropped_and_the_rest_starts_with_the_caller() {
        let mut c = History::new(2);
        c.add_turn(None, "Hi!");
        for i in 1..=4 {
            c.add_turn(Some(&format!("q{i}")), &format!("a{i}"));
        }
        assert_eq!(
            roles(&c),
            vec![
                (Role::User, "q3".into()),
                (Role::Assistant, "a3".into()),
                (Role::User, "q4".into()),
                (Role::Assistant, "a4".into()),
            ]
        );
    }
}
