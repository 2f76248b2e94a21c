//! The system prompt: the prompt file (Markdown) and the knowledge files, read
//! once at start-up, then per turn a language instruction, the caller's number,
//! the local time and, once greeted, what the agent opened the call with.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Local};

use crate::config::ConfigError;
use crate::config::agent::AgentSettings;
use crate::model::CallBrief;

/// Used when the configured prompt file is the default one and is absent
/// (e.g. a binary run outside the repository).
const BUILT_IN_PROMPT: &str = include_str!("../../prompts/system.md");
const DEFAULT_PROMPT_FILE: &str = "prompts/system.md";

#[derive(Debug, Clone)]
pub struct Prompt {
    /// Prompt file + knowledge files.
    base: String,
    language: String,
}

impl Prompt {
    pub fn load(agent: &AgentSettings) -> Result<Prompt, ConfigError> {
        let mut base = match std::fs::read_to_string(&agent.prompt_file) {
            Ok(text) => text,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && agent.prompt_file == DEFAULT_PROMPT_FILE =>
            {
                BUILT_IN_PROMPT.to_string()
            }
            Err(e) => {
                return Err(ConfigError(format!(
                    "agent.prompt_file = {:?}: cannot read it: {e}",
                    agent.prompt_file
                )));
            }
        };
        for file in &agent.knowledge_files {
            let text = std::fs::read_to_string(file).map_err(|e| {
                ConfigError(format!("agent.knowledge_files: cannot read {file:?}: {e}"))
            })?;
            let name = Path::new(file)
                .file_name()
                .map_or(file.as_str(), |n| n.to_str().unwrap_or(file));
            let _ = write!(base, "\n\n# Knowledge: {name}\n\n{}", text.trim());
        }
        Ok(Prompt {
            base: base.trim().to_string(),
            language: agent.language.clone(),
        })
    }

    /// The system prompt for a turn of the call `brief` describes.
    pub fn system(&self, brief: &CallBrief, opening: Option<&str>, now: DateTime<Local>) -> String {
        let mut s = self.base.clone();
        let language = language_name(&self.language);
        let _ = write!(
            s,
            "\n\n# This call\n\nAlways answer in {language}, the language of this phone line."
        );
        let call = &brief.call;
        let caller = call.caller();
        if !caller.is_empty() {
            let _ = write!(s, "\nThe caller's number: {caller}.");
        }
        let _ = write!(
            s,
            "\nLocal time: {}.",
            now.format("%A %-d %B %Y, %H:%M (UTC%:z)")
        );
        if call.direction.is_outbound() {
            s.push_str("\nYou placed this call.");
        }
        if let Some(instructions) = brief
            .instructions
            .as_deref()
            .filter(|i| !i.trim().is_empty())
        {
            let _ = write!(s, "\n\n# Why you are calling\n\n{}", instructions.trim());
        }
        if !brief.memory.is_empty() {
            s.push_str("\n\n# You spoke with this caller before\n");
            for summary in &brief.memory {
                let _ = write!(s, "\n- {}", summary.trim());
            }
        }
        if let Some(opening) = opening {
            let _ = write!(s, "\nYou opened the call by saying: \"{opening}\"");
        }
        s
    }
}

/// The English name of a language code, for the instruction to the LLM.
pub fn language_name(code: &str) -> String {
    let base = code.split('-').next().unwrap_or(code).to_ascii_lowercase();
    let name = match base.as_str() {
        "en" => "English",
        "it" => "Italian",
        "es" => "Spanish",
        "fr" => "French",
        "de" => "German",
        "pt" => "Portuguese",
        "nl" => "Dutch",
        "pl" => "Polish",
        "sv" => "Swedish",
        "ja" => "Japanese",
        "zh" => "Chinese",
        "ar" => "Arabic",
        "hi" => "Hindi",
        _ => return format!("the language with code \"{code}\""),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallInfo;
    use chrono::TimeZone;

    fn settings(language: &str) -> AgentSettings {
        AgentSettings {
            language: language.into(),
            prompt_file: DEFAULT_PROMPT_FILE.into(),
            knowledge_files: vec![],
            max_history_turns: 10,
            greeting_interruptible: false,
            end_call: true,
            transfer_number: String::new(),
            dtmf_timeout_ms: 2000,
            tts_lookahead: 2,
        }
    }

    fn call(direction: &str) -> CallBrief {
        CallBrief::of(CallInfo {
            call_sid: "CA1".into(),
            from: "+393331234567".into(),
            to: "+15550002222".into(),
            direction: direction.into(),
            agent: "default".into(),
            started_at: chrono::Utc::now(),
        })
    }

    #[test]
    fn the_prompt_names_language_caller_time_and_opening() {
        let prompt = Prompt::load(&settings("it")).expect("built-in prompt");
        let now = Local
            .with_ymd_and_hms(2026, 11, 21, 10, 30, 0)
            .single()
            .expect("a valid local time");
        let s = prompt.system(&call("inbound"), Some("Buongiorno!"), now);
        assert!(s.starts_with("You are the voice on the phone line"));
        assert!(s.contains("Always answer in Italian"));
        assert!(s.contains("The caller's number: +393331234567."));
        assert!(s.contains("Saturday 21 November 2026, 10:30"));
        assert!(s.contains("You opened the call by saying: \"Buongiorno!\""));
        let outbound = prompt.system(&call("outbound-api"), None, now);
        assert!(outbound.contains("The caller's number: +15550002222."));
        assert!(!outbound.contains("opened the call"));
    }

    #[test]
    fn knowledge_files_are_appended_and_missing_ones_are_errors() {
        let dir = std::env::temp_dir().join(format!("pronto-prompt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let hours = dir.join("hours.md");
        std::fs::write(&hours, "We open at 9.\n").expect("write");
        let mut s = settings("en");
        s.knowledge_files = vec![hours.to_string_lossy().into_owned()];
        let prompt = Prompt::load(&s).expect("loads");
        let text = prompt.system(&call("inbound"), None, Local::now());
        assert!(text.contains("# Knowledge: hours.md\n\nWe open at 9."));
        s.knowledge_files = vec![dir.join("nope.md").to_string_lossy().into_owned()];
        let e = Prompt::load(&s).expect_err("missing file");
        assert!(e.0.contains("agent.knowledge_files"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_language_codes_are_passed_through() {
        assert_eq!(language_name("en-GB"), "English");
        assert_eq!(language_name("xx"), "the language with code \"xx\"");
    }
}
