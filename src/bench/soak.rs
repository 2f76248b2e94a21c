//! `pronto bench --soak-secs N`: many calls, one after another, for a long
//! time, with the providers failing now and then, to find what a short run
//! cannot: a task, a file descriptor or memory that a call leaves behind,
//! and a record that a failure left incomplete. Not for CI: it takes as long
//! as it is told to. Results are in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::caller::{self, CallResult};
use super::report::{Report, Sample, SoakReport};
use super::{BenchArgs, call_record, fixture_path, process, summarize};
use crate::fakes::Fault;
use crate::fakes::openai::FakeOpenAi;
use crate::sim::SimConfig;

/// How long an idle pooled provider connection may live: 90 s idle
/// (`providers::http`), closed at the pool's next check, which runs every
/// 90 s (https://docs.rs/reqwest/latest/reqwest/struct.ClientBuilder.html#method.pool_idle_timeout).
const POOL_IDLE: Duration = Duration::from_secs(185);

/// How often the server is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(30);

pub async fn run(
    args: &BenchArgs,
    url: &str,
    pid: u32,
    providers: &FakeOpenAi,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let client = reqwest::Client::new();
    let idle =
        process::usage(pid).ok_or_else(|| anyhow::anyhow!("cannot read the server's /proc"))?;
    let mut samples = vec![sample(&client, url, pid, started).await];

    let speech: Arc<Vec<i16>> = Arc::new(crate::sim::load_wav_8k(&fixture_path())?);
    let soak = Duration::from_secs(args.soak_secs);
    let stagger = Duration::from_secs_f64(args.ramp_secs / args.calls.max(1) as f64);
    let plan = caller::Plan {
        length: Duration::from_secs(args.call_secs),
        barge_in_every: args.barge_in_every,
        listen_only: args.listen_only,
        listeners: 0,
        tolerant: args.fault_every_ms > 0,
        marks_by_time: args.engine != "cascade",
    };
    let mut callers = Vec::new();
    for i in 0..args.calls {
        let mut cfg = SimConfig::new(url);
        cfg.auth_token = Some(super::AUTH_TOKEN.into());
        cfg.from = format!("+1555{i:07}");
        let speech = Arc::clone(&speech);
        callers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            while started.elapsed() < soak {
                results.push(caller::run(cfg.clone(), &speech, plan, "").await);
            }
            results
        }));
        tokio::time::sleep(stagger).await;
    }
    let sampler = {
        let (client, url) = (client.clone(), url.to_string());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                tokio::time::sleep(SAMPLE_EVERY).await;
                samples.push(sample(&client, &url, pid, started).await);
                if started.elapsed() >= soak {
                    return samples;
                }
            }
        })
    };
    let gather = async {
        let mut results: Vec<CallResult> = Vec::new();
        for caller in callers {
            results.extend(caller.await.unwrap_or_default());
        }
        results
    };
    let mut faults_injected = 0;
    let faults = async {
        match args.fault_every_ms {
            0 => std::future::pending().await,
            ms => inject_faults(providers, Duration::from_millis(ms), &mut faults_injected).await,
        }
    };
    // The faults stop when the last caller is done.
    let results = tokio::select! {
        results = gather => results,
        () = faults => Vec::new(),
    };
    samples.extend(sampler.await.unwrap_or_default());
    // Every call over: what is left now stays.
    wait_idle(&client, url).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    samples.push(sample(&client, url, pid, started).await);
    // Idle connections to the providers stay pooled for a while, each a
    // socket and a task: after that, only a leak remains.
    tokio::time::sleep(POOL_IDLE).await;
    samples.push(sample(&client, url, pid, started).await);
    let end = process::usage(pid).unwrap_or(idle);
    let incomplete_records = incomplete(&client, url, &results).await;
    let peak = samples
        .iter()
        .map(|s| (s.rss_mb * 1024.0 * 1024.0) as u64)
        .max()
        .unwrap_or(end.rss_bytes);
    let calls = results.len();
    let mut report = summarize(results, idle, end, peak, Vec::new());
    report.soak = Some(SoakReport {
        secs: args.soak_secs,
        fault_every_ms: args.fault_every_ms,
        faults_injected,
        calls,
        incomplete_records,
        samples,
    });
    Ok(report)
}

/// Queues one fault every `every`, for each provider in turn, counting them.
async fn inject_faults(providers: &FakeOpenAi, every: Duration, count: &mut u64) {
    let status = |status: u16| Fault::Status {
        status,
        body: String::new(),
        retry_after: None,
    };
    loop {
        tokio::time::sleep(every).await;
        let (audio, chat) = (&providers.audio, &providers.chat);
        match *count % 6 {
            0 => audio.push_stt_fault(status(503)),
            1 => chat.push_fault(status(429)),
            2 => audio.push_tts_fault(status(500)),
            3 => chat.push_fault(Fault::CutMidway),
            4 => audio.push_tts_fault(Fault::Hang),
            _ => chat.push_fault(Fault::StreamError),
        }
        *count += 1;
    }
}

async fn sample(client: &reqwest::Client, url: &str, pid: u32, started: Instant) -> Sample {
    let health: serde_json::Value = match client.get(format!("{url}/health")).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    Sample {
        at_secs: started.elapsed().as_secs(),
        rss_mb: process::usage(pid).map_or(0.0, |u| u.rss_bytes as f64 / (1024.0 * 1024.0)),
        fds,
        threads,
        tasks: health["tasks"].as_u64(),
        active_calls: health["active_calls"].as_u64(),
    }
}

/// Waits (up to a minute) until the server has no call in progress.
async fn wait_idle(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let active = match client.get(format!("{url}/health")).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|h| h["active_calls"].as_u64()),
            Err(_) => None,
        };
        if active == Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The calls whose record has no end, or no turn though the caller had some.
async fn incomplete(client: &reqwest::Client, url: &str, results: &[CallResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| !r.call_sid.is_empty()) {
        let record = call_record(client, url, &r.call_sid).await;
        let ended = record["end_reason"].is_string();
        let turns = record["turns"].as_array().map_or(0, Vec::len);
        if !ended || (r.turns > 0 && turns == 0) {
            out.push(r.call_sid.clone());
        }
    }
    out
}
