//! One line of a check's report: what was found, how much it matters, and (in
//! its text) how to fix it. The levels decide `pronto check`'s exit status.

use std::fmt;

/// How much a finding matters. Ordered: the worst one decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Checked, and fine.
    Ok,
    /// Worth knowing, but calls work: exit status 0.
    Note,
    /// Calls would fail, or not work as configured: exit status 1.
    Error,
    /// `pronto serve` would not start: exit status 2, as `serve`'s own.
    Fatal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

impl Finding {
    pub fn ok(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Ok,
            text: text.into(),
        }
    }

    pub fn note(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Note,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Error,
            text: text.into(),
        }
    }

    pub fn fatal(text: impl Into<String>) -> Self {
        Finding {
            level: Level::Fatal,
            text: text.into(),
        }
    }
}

/// `error: …`, `note: …`, `ok: …`: the label first, so that the lines can be
/// grepped. A fatal finding reads as an error; only the exit status differs.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.level {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Error | Level::Fatal => "error",
        };
        write!(f, "{label}: {}", self.text)
    }
}

/// The exit status for these findings: 0, 1 or 2 (see [`Level`]).
pub fn exit_status(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Fatal) => 2,
        Some(Level::Error) => 1,
        _ => 0,
    }
}

/// The closing line: how many errors and notes, or that all is well.
pub fn summary(findings: &[Finding]) -> String {
    let count = |levels: &[Level]| {
        findings
            .iter()
            .filter(|f| levels.contains(&f.level))
            .count()
    };
    let errors = count(&[Level::Error, Level::Fatal]);
    let notes = count(&[Level::Note]);
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    match (errors, notes) {
        (0, 0) => "No problems found.".to_string(),
        (0, n) => format!("No errors, {}.", plural(n, "note")),
        (e, n) => format!("{}, {}.", plural(e, "error"), plural(n, "note")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_finding_decides_the_exit_status() {
        assert_eq!(exit_status(&[]), 0);
        assert_eq!(exit_status(&[Finding::ok("a"), Finding::note("b")]), 0);
        assert_eq!(exit_status(&[Finding::note("b"), Finding::error("c")]), 1);
        assert_eq!(exit_status(&[Finding::fatal("d"), Finding::error("c")]), 2);
    }

    #[test]
    fn lines_and_summary() {
        assert_eq!(Finding::fatal("x").to_string(), "error: x");
        assert_eq!(Finding::note("y").to_string(), "note: y");
        assert_eq!(summary(&[Finding::ok("a")]), "No problems found.");
        assert_eq!(summary(&[Finding::note("a")]), "No errors, 1 note.");
        assert_eq!(
            summary(&[Finding::error("a"), Finding::error("b")]),
            "2 errors, 0 notes."
        );
    }
}
