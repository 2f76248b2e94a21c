//! Voice-to-voice latency of agent turns through the real server, with fake
//! providers that answer at once: what is left over is Pronto's own pipeline
//! overhead (voice-to-voice minus endpoint wait, STT, time to the first
//! sentence and TTS first byte, as each turn records it in /api/status).
//!
//! `cargo bench --bench agent_latency` (20 turns per LLM provider; set
//! AGENT_LATENCY_TURNS to change). The load generator and the full benchmark
//! suite belong to `pronto bench`; this is the single-call figure.

// The integration tests' modules; this bench uses only part of each.
#[allow(dead_code)]
#[path = "../tests/it/agent_world/mod.rs"]
mod agent_world;
#[allow(dead_code)]
#[path = "../tests/it/harness/mod.rs"]
mod harness;

use agent_world::{Provider, World, say_hello_and_hear};
use pronto::fakes::llm_reply::Reply;
use serde_json::Value;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn run(provider: Provider, turns: u64) {
    let w = World::start(provider).await;
    for _ in 0..turns {
        w.audio.push_transcript("Hello there.");
        w.llm.fake().push_reply(Reply::text("Hi. How can I help?"));
    }
    let call = w.dial_and_hear_greeting().await;
    let mut overhead = Vec::new();
    let mut v2v = Vec::new();
    for t in 1..=turns {
        say_hello_and_hear(&call, &format!("t{t}-s1")).await;
        let status = w.server.wait_turns(t).await;
        let latency = &status["calls"][0]["last_turn"];
        overhead.push(latency["pipeline_overhead_ms"].as_i64().unwrap_or(-1));
        v2v.push(latency["voice_to_voice_ms"].as_i64().unwrap_or(-1));
    }
    let status = w.server.api_status().await;
    let greeting = status["calls"][0]["greeting_ms"].clone();
    call.hang_up().await.expect("hang up");
    overhead.sort_unstable();
    v2v.sort_unstable();
    println!(
        "{provider:?}: {turns} turns | pipeline overhead ms p50 {} p95 {} max {} | voice-to-voice ms p50 {} p95 {} (endpoint wait 600 included) | greeting first frame after start {} ms",
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.95),
        overhead.last().copied().unwrap_or_default(),
        percentile(&v2v, 0.5),
        percentile(&v2v, 0.95),
        match greeting {
            Value::Null => "?".to_string(),
            v => v.to_string(),
        }
    );
}

fn main() {
    let turns = std::env::var("AGENT_LATENCY_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        run(Provider::Anthropic, turns).await;
        run(Provider::OpenAi, turns).await;
    });
}
