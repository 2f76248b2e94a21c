//! Keypad digits collected into one message for the agent: sent on `#`, or
//! once no key has been pressed for a while (a caller typing a number pauses
//! between digits; one message per digit would make the agent answer each).

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Keypad {
    digits: Vec<String>,
    deadline: Option<Instant>,
}

/// Longest run of digits kept; more is a stuck key or abuse.
const MAX_DIGITS: usize = 64;

impl Keypad {
    /// Adds a digit. Returns true when the digits should be sent now (`#`).
    pub fn push(&mut self, digit: &str, now: Instant, timeout: Duration) -> bool {
        if self.digits.len() < MAX_DIGITS {
            self.digits.push(digit.chars().take(4).collect());
        }
        self.deadline = Some(now + timeout);
        digit == "#"
    }

    /// When the collected digits are due, if any are waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Sends later (the agent is busy and must not be interrupted).
    pub fn postpone(&mut self, until: Instant) {
        if !self.digits.is_empty() {
            self.deadline = Some(until);
        }
    }

    /// The digits as the agent reads them, `[keypad: 1 2 #]`, and empties the
    /// buffer.
    pub fn take(&mut self) -> Option<String> {
        self.deadline = None;
        if self.digits.is_empty() {
            return None;
        }
        let text = format!("[keypad: {}]", self.digits.join(" "));
        self.digits.clear();
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_sent_together_on_hash_or_after_a_pause() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(2);
        let mut k = Keypad::default();
        assert_eq!(k.deadline(), None);
        assert!(!k.push("1", t0, timeout));
        assert!(!k.push("2", t0 + Duration::from_millis(500), timeout));
        assert_eq!(k.deadline(), Some(t0 + Duration::from_millis(2500)));
        assert!(k.push("#", t0 + Duration::from_secs(1), timeout));
        assert_eq!(k.take().as_deref(), Some("[keypad: 1 2 #]"));
        assert_eq!(k.take(), None);
        assert_eq!(k.deadline(), None);
        k.postpone(t0);
        assert_eq!(k.deadline(), None, "nothing waiting, nothing scheduled");
    }
}
