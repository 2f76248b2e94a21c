//! The benchmark's figures: percentiles over every turn and call, the
//! server's CPU and memory, the generator's health; printed as a table and
//! written as JSON.

use serde::Serialize;

/// p50/p95/p99/max of a sample, in ms; `None` without samples.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub p50: i64,
    pub p95: i64,
    pub p99: i64,
    pub max: i64,
}

impl Spread {
    pub fn of(mut values: Vec<i64>) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
        Some(Spread {
            n: values.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub calls: usize,
    pub failed_calls: usize,
    pub errors: Vec<String>,
    pub turns: usize,
    /// The simulator's view: caller stopped → answer audible.
    pub voice_to_voice_ms: Option<Spread>,
    /// The server's view, per turn: voice-to-voice minus endpoint wait, STT,
    /// time to first sentence and TTS first byte.
    pub pipeline_overhead_ms: Option<Spread>,
    /// The server's view: end of speech → first frame sent.
    pub server_voice_to_voice_ms: Option<Spread>,
    /// The stages of each answered turn (server): end of speech → the
    /// words ready (the turn decided, then any final transcript), the turn
    /// decided, the batch STT request, LLM request → first sentence, TTS
    /// request → first byte.
    pub endpoint_wait_ms: Option<Spread>,
    pub turn_decided_ms: Option<Spread>,
    pub stt_ms: Option<Spread>,
    pub first_sentence_ms: Option<Spread>,
    pub tts_first_byte_ms: Option<Spread>,
    /// Speech-to-speech: end of speech → the model's first audio.
    pub model_first_audio_ms: Option<Spread>,
    /// Answered turns by who decided they were over.
    pub decided_by: std::collections::BTreeMap<String, usize>,
    /// Answered turns whose answer was started speculatively.
    pub speculative_turns: usize,
    /// Speculative answers the server started, and dropped unheard because
    /// the caller went on (from `/health` at the end).
    pub speculative_started: Option<u64>,
    pub speculative_wasted: Option<u64>,
    /// `start` → the greeting's first audio frame.
    pub greeting_ms: Option<Spread>,
    /// Interrupting speech onset → `clear`.
    pub barge_in_ms: Option<Spread>,
    pub barge_in_min_ms: u32,
    /// Server CPU seconds per minute of call.
    pub cpu_secs_per_call_minute: Option<f64>,
    pub rss_idle_mb: Option<f64>,
    pub rss_peak_mb: Option<f64>,
    pub rss_per_call_mb: Option<f64>,
    /// Gaps in an answer's audio (the server fell behind real time).
    pub underruns: u64,
    /// The generator's own late ticks (>10 ms) and worst lateness: non-zero
    /// means the generator, not the server, may be the bottleneck.
    pub generator_late_ticks: u64,
    pub generator_max_lateness_ms: u64,
    /// The calls each agent answered, by their records.
    pub calls_by_agent: std::collections::BTreeMap<String, usize>,
    /// A soak's samples and record check (`--soak-secs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
}

fn row(name: &str, s: &Option<Spread>) -> String {
    match s {
        Some(s) => format!(
            "{name:<34} {:>7} {:>7} {:>7} {:>7} {:>6}\n",
            s.p50, s.p95, s.p99, s.max, s.n
        ),
        None => format!("{name:<34} {:>7}\n", "-"),
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} calls ({} failed), {} turns",
            self.calls, self.failed_calls, self.turns
        )?;
        writeln!(
            f,
            "{:<34} {:>7} {:>7} {:>7} {:>7} {:>6}",
            "ms", "p50", "p95", "p99", "max", "n"
        )?;
        f.write_str(&row(
            "pipeline overhead (server)",
            &self.pipeline_overhead_ms,
        ))?;
        f.write_str(&row(
            "voice-to-voice (server)",
            &self.server_voice_to_voice_ms,
        ))?;
        f.write_str(&row("voice-to-voice (caller)", &self.voice_to_voice_ms))?;
        f.write_str(&row("  speech end -> words ready", &self.endpoint_wait_ms))?;
        f.write_str(&row("  speech end -> turn decided", &self.turn_decided_ms))?;
        f.write_str(&row("  batch STT request", &self.stt_ms))?;
        f.write_str(&row("  LLM -> first sentence", &self.first_sentence_ms))?;
        f.write_str(&row("  TTS -> first byte", &self.tts_first_byte_ms))?;
        f.write_str(&row(
            "  speech end -> model's first audio",
            &self.model_first_audio_ms,
        ))?;
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            f,
            "turns decided by: {:?} | speculative answers: {} started, {} kept, {} wasted",
            self.decided_by,
            opt(self.speculative_started),
            self.speculative_turns,
            opt(self.speculative_wasted)
        )?;
        f.write_str(&row("greeting: start -> first audio", &self.greeting_ms))?;
        f.write_str(&row(
            &format!("barge-in: onset -> clear (min {})", self.barge_in_min_ms),
            &self.barge_in_ms,
        ))?;
        let num =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        writeln!(
            f,
            "server CPU per call-minute: {} s | RSS idle {} MB, peak {} MB, per added call {} MB",
            num(self.cpu_secs_per_call_minute, 3),
            num(self.rss_idle_mb, 1),
            num(self.rss_peak_mb, 1),
            num(self.rss_per_call_mb, 3)
        )?;
        writeln!(
            f,
            "answer underruns: {} | generator late ticks: {} (worst {} ms)",
            self.underruns, self.generator_late_ticks, self.generator_max_lateness_ms
        )?;
        if self.calls_by_agent.len() > 1 {
            writeln!(f, "calls by agent: {:?}", self.calls_by_agent)?;
        }
        for e in self.errors.iter().take(5) {
            writeln!(f, "error: {e}")?;
        }
        if let Some(soak) = &self.soak {
            write!(f, "{soak}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_hundred() {
        let s = Spread::of((1..=100).collect()).expect("samples");
        assert_eq!((s.p50, s.p95, s.p99, s.max, s.n), (51, 95, 99, 100, 100));
        assert_eq!(Spread::of(vec![]), None);
        assert_eq!(Spread::of(vec![7]).map(|s| (s.p50, s.p99)), Some((7, 7)));
    }
}

/// The server at one moment of the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub at_secs: u64,
    pub rss_mb: f64,
    pub fds: usize,
    pub threads: usize,
    /// Tasks alive in the server's runtime (`/health`).
    pub tasks: Option<u64>,
    pub active_calls: Option<u64>,
}

/// What the soak adds to the report.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub secs: u64,
    pub fault_every_ms: u64,
    pub faults_injected: u64,
    /// Calls made (all callers, one after another).
    pub calls: usize,
    /// Calls whose record lacks its end, or its turns.
    pub incomplete_records: Vec<String>,
    /// Before any call; then every 30 s; then 5 s after the last call
    /// ended, and again once idle provider connections have closed.
    pub samples: Vec<Sample>,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "soak: {} s, {} calls, {} faults injected (one every {} ms), {} incomplete records",
            self.secs,
            self.calls,
            self.faults_injected,
            self.fault_every_ms,
            self.incomplete_records.len()
        )?;
        writeln!(
            f,
            "{:>7} {:>8} {:>5} {:>7} {:>6} {:>6}",
            "s", "RSS MB", "fds", "threads", "tasks", "calls"
        )?;
        for s in &self.samples {
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            writeln!(
                f,
                "{:>7} {:>8.1} {:>5} {:>7} {:>6} {:>6}",
                s.at_secs,
                s.rss_mb,
                s.fds,
                s.threads,
                opt(s.tasks),
                opt(s.active_calls)
            )?;
        }
        Ok(())
    }
}
