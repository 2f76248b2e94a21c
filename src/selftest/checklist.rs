//! The self-test's output: every check printed as it completes, the ones an
//! early failure prevented listed as failed (not run is not passed), and the
//! verdict that becomes the exit code.

use std::process::ExitCode;

use tokio::time::Instant;

use super::checks::Check;

/// Every check in the order it runs, so that the ones an earlier failure
/// prevents are still listed (as failed: not run is not passed).
pub const CHECKS: [&str; 12] = [
    "server",
    "health",
    "signature",
    "webhook",
    "stream",
    "echo",
    "mulaw",
    "marks",
    "record",
    "recording",
    "shutdown",
    "agent",
];

/// The checks so far, printed as they come.
#[derive(Default)]
pub struct Checklist {
    done: Vec<Check>,
}

impl Checklist {
    pub fn add(&mut self, check: Check) {
        println!("{check}");
        self.done.push(check);
    }

    /// Lists the checks not done before `next` as failed, saying why.
    pub fn skip_to(&mut self, next: &str, why: &str) {
        let missing: Vec<&'static str> = CHECKS
            .iter()
            .copied()
            .take_while(|name| *name != next)
            .filter(|name| !self.done.iter().any(|c| c.name == *name))
            .collect();
        for name in missing {
            self.add(Check::fail(name, format!("not run: {why}")));
        }
    }

    /// Lists what was not run, prints the verdict and returns the exit code.
    pub fn finish(mut self, why: &str, started: Instant) -> ExitCode {
        self.skip_to("", why);
        let (passed, total) = self.tally();
        let secs = started.elapsed().as_secs_f64();
        if passed == total {
            println!("self-test passed: {passed} of {total} checks in {secs:.1} s");
            ExitCode::SUCCESS
        } else {
            println!(
                "self-test FAILED: {passed} of {total} checks passed in {secs:.1} s (--verbose shows the server's log)"
            );
            ExitCode::FAILURE
        }
    }

    /// (checks passed, checks listed).
    fn tally(&self) -> (usize, usize) {
        let passed = self.done.iter().filter(|c| c.passed).count();
        (passed, self.done.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_not_run_are_listed_as_failed_and_counted() {
        let mut list = Checklist::default();
        list.add(Check::pass("server", "started"));
        list.skip_to("echo", "the webhook failed");
        let names: Vec<&str> = list.done.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["server", "health", "signature", "webhook", "stream"]
        );
        assert!(list.done[1..].iter().all(|c| !c.passed));
        assert_eq!(list.done[4].detail, "not run: the webhook failed");
        list.add(Check::pass("echo", "heard"));
        list.skip_to("", "timed out");
        assert_eq!(list.done.len(), CHECKS.len());
        assert_eq!(list.tally(), (2, CHECKS.len()));
    }

    #[test]
    fn one_failure_fails_the_whole() {
        let mut list = Checklist::default();
        for name in CHECKS {
            list.add(Check::pass(name, "fine"));
        }
        assert_eq!(list.tally(), (CHECKS.len(), CHECKS.len()));
        list.done[5].passed = false;
        assert_eq!(list.tally(), (CHECKS.len() - 1, CHECKS.len()));
    }
}
