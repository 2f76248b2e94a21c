//! `pronto bench`: N concurrent simulated calls through the real WebSocket
//! path against a Pronto server in its own process, with fake providers of
//! fixed latency ([`crate::fakes::openai`]), reporting latency percentiles,
//! pipeline overhead, greeting and barge-in times, server CPU per
//! call-minute and memory per call, and the generator's own health. See
//! BENCHMARKS.md for results and commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::fakes::llm_reply::Reply;
use crate::fakes::openai::FakeOpenAi;
use crate::fakes::openai_chat::Style;
use crate::sim::SimConfig;

mod agents;
mod caller;
pub mod process;
pub mod report;
mod soak;
pub mod turns;

use caller::CallResult;
use process::Usage;
use report::{Report, Spread};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 10)]
    pub calls: usize,
    /// Seconds over which the calls start (evenly spread).
    #[arg(long, default_value_t = 5.0)]
    pub ramp_secs: f64,
    /// Length of each call, in seconds (turns continue until then).
    #[arg(long, default_value_t = 30)]
    pub call_secs: u64,
    /// Every Nth answer is interrupted (barge-in); 0 = never.
    #[arg(long, default_value_t = 3)]
    pub barge_in_every: u32,
    /// Callers hear the greeting, then stay silent until the end (no turns):
    /// the cost of holding calls open, the floor under every other figure.
    #[arg(long)]
    pub listen_only: bool,
    /// Operators listening in to each call from the dashboard (a WebSocket
    /// of the call's audio each): what listening costs the server.
    #[arg(long, default_value_t = 0)]
    pub listeners: u32,
    /// Dashboards open on the live event stream (`/api/events`) during the run.
    #[arg(long, default_value_t = 0)]
    pub watchers: u32,
    /// CPUs for the server process (taskset list, e.g. "0").
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// CPUs for this load generator (e.g. "1").
    #[arg(long)]
    pub client_cpus: Option<String>,
    /// The Pronto binary to measure (default: this one). To compare two
    /// builds under exactly the same load: the generator and its fake
    /// providers stay this binary's.
    #[arg(long)]
    pub server_exe: Option<PathBuf>,
    /// The engine: `cascade` (speech-to-text, LLM, text-to-speech) or
    /// `openai-realtime` (a speech-to-speech fake of OpenAI's Realtime API).
    #[arg(long, default_value = "cascade")]
    pub engine: String,
    /// `--engine openai-realtime`: the fake model's time from its response
    /// to its first audio (ms).
    #[arg(long, default_value_t = 300)]
    pub model_first_audio_ms: u64,
    /// Fake STT latency (ms), for `--stt openai` (a batch request per turn).
    #[arg(long, default_value_t = 300)]
    pub stt_ms: u64,
    /// Speech-to-text: `openai` (a batch request per turn) or a streaming
    /// fake: `deepgram` (Flux), `assemblyai`.
    #[arg(long, default_value = "openai")]
    pub stt: String,
    /// The server's `[turn] detector`: `silence`, `provider`, `model`.
    #[arg(long, default_value = "silence")]
    pub detector: String,
    /// Streaming fakes: the silence after the last word at which the fake
    /// ends the turn (ms of audio; Deepgram's published figure is ~260).
    #[arg(long, default_value_t = 260)]
    pub eot_ms: u64,
    /// Streaming fakes: wall-clock delay before each final transcript (ms).
    #[arg(long, default_value_t = 0)]
    pub stt_final_ms: u64,
    /// Fake LLM time to first token (ms).
    #[arg(long, default_value_t = 400)]
    pub llm_first_token_ms: u64,
    /// Fake LLM time between tokens (ms).
    #[arg(long, default_value_t = 20)]
    pub llm_token_ms: u64,
    /// Fake TTS time to first byte (ms).
    #[arg(long, default_value_t = 200)]
    pub tts_first_byte_ms: u64,
    /// Fake TTS speed: seconds of audio per second of wall time.
    #[arg(long, default_value_t = 5.0)]
    pub tts_speed: f64,
    /// Fake TTS audio per HTTP chunk (ms of audio): real providers' chunking
    /// differs, and every chunk is a wakeup for the server.
    #[arg(long, default_value_t = 20)]
    pub tts_chunk_ms: u64,
    /// The server's log filter (what a user runs: info).
    #[arg(long, default_value = "info")]
    pub server_log: String,
    /// Serve as this many agents (agent files with their own prompt,
    /// knowledge, greeting, voice and language, English and Italian in
    /// turn), the calls spread over them by the number called. 0: the one
    /// agent of the configuration, as without agent files.
    #[arg(long, default_value_t = 0)]
    pub agents: usize,
    /// Soak: for this many seconds, each of the `calls` callers makes one
    /// call of `call_secs` after another; the report adds the server's
    /// memory, file descriptors, threads and tasks over time and checks
    /// that every call's record is complete. 0: one call per caller.
    #[arg(long, default_value_t = 0)]
    pub soak_secs: u64,
    /// Every this many ms, the next request to one of the providers fails
    /// (429, 5xx, a hang past the timeout, a stream cut midway, an error
    /// inside the stream), in turn. 0: no faults.
    #[arg(long, default_value_t = 0)]
    pub fault_every_ms: u64,
    /// Instead of calls: every turn detector on the end-of-turn data set
    /// (`--turn-fixtures`), through the hearing calls use; the end-of-turn
    /// model too when it is installed in `--models-dir`.
    #[arg(long)]
    pub turn_detectors: bool,
    /// The end-of-turn data set (its manifest.json and clips).
    #[arg(long, default_value = "tests/fixtures/turns")]
    pub turn_fixtures: PathBuf,
    /// Where the end-of-turn model is installed (scripts/fetch-models.sh).
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
    /// Write the report as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Pins the generator before its threads start (call before the runtime).
pub fn pin_client(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(cpus) = &args.client_cpus {
        process::pin_self(cpus).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

const AUTH_TOKEN: &str = "bench-auth-token";
/// The server's `[call] barge_in_min_ms` (its default): the barge-in target is
/// this plus 40 ms.
const BARGE_IN_MIN_MS: u32 = 300;
const API_TOKEN: &str = "bench-api-token";

/// The streaming speech-to-text fake, when `--stt` names one; stops when
/// dropped.
enum Streaming {
    Deepgram(crate::fakes::deepgram::FakeDeepgram),
    AssemblyAi(crate::fakes::assemblyai::FakeAssemblyAi),
}

impl Streaming {
    /// The fake `args` asks for, and the server's settings for it.
    async fn start(args: &BenchArgs) -> anyhow::Result<Option<(Streaming, Vec<(String, String)>)>> {
        let final_delay = Duration::from_millis(args.stt_final_ms);
        let (fake, key) = match args.stt.as_str() {
            "openai" => return Ok(None),
            "deepgram" => {
                let fake = crate::fakes::deepgram::FakeDeepgram::start().await;
                fake.set_script(&[TRANSCRIPT]);
                // The eager end 60 ms before the end of turn, as Flux's
                // lower threshold would.
                fake.set_flux_silences(args.eot_ms.saturating_sub(60).max(20), args.eot_ms);
                fake.set_final_delay(final_delay);
                (Streaming::Deepgram(fake), "DEEPGRAM_API_KEY")
            }
            "assemblyai" => {
                let fake = crate::fakes::assemblyai::FakeAssemblyAi::start().await;
                fake.set_script(&[TRANSCRIPT]);
                fake.set_turn_silence(Some(args.eot_ms));
                fake.set_final_delay(final_delay);
                (Streaming::AssemblyAi(fake), "ASSEMBLYAI_API_KEY")
            }
            other => bail!("--stt {other}: must be openai, deepgram or assemblyai"),
        };
        let base = match &fake {
            Streaming::Deepgram(f) => f.base_url().to_string(),
            Streaming::AssemblyAi(f) => f.base_url().to_string(),
        };
        let env = [
            ("PRONTO_STT_PROVIDER", args.stt.clone()),
            ("PRONTO_STT_BASE_URL", base),
            (key, "bench".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(Some((fake, env)))
    }
}

/// The speech-to-speech fake, when `--engine` names one, and the server's
/// settings for it (the cascade's fake still speaks Pronto's fixed lines).
async fn speech_to_speech(
    args: &BenchArgs,
    cascade: &FakeOpenAi,
) -> anyhow::Result<Option<(RealtimeFake, Vec<(String, String)>)>> {
    match args.engine.as_str() {
        "cascade" => Ok(None),
        "openai-realtime" => {
            let fake = RealtimeFake::start().await;
            fake.set_latency(crate::fakes::realtime_voice::Latency {
                first_audio: Duration::from_millis(args.model_first_audio_ms),
                ..fake.latency()
            });
            fake.push_transcript(TRANSCRIPT);
            let lines = cascade.base_url().to_string();
            let env = [
                ("PRONTO_ENGINE_KIND", args.engine.clone()),
                ("OPENAI_BASE_URL", fake.base_url().to_string()),
                ("PRONTO_TTS_BASE_URL", lines.clone()),
                ("PRONTO_STT_BASE_URL", lines.clone()),
                ("PRONTO_LLM_BASE_URL", lines),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            Ok(Some((fake, env)))
        }
        other => bail!("--engine {other}: must be cascade or openai-realtime"),
    }
}

type RealtimeFake = crate::fakes::realtime_voice::FakeRealtimeVoice;

/// What the caller "says" (every transcription) and the agent answers.
const TRANSCRIPT: &str = "Hello, what are your opening hours?";
const ANSWER: &str = "We are open from nine to six. Is there anything else I can help with?";
/// Audio per character of a sentence spoken by the fake TTS.
const MS_PER_CHAR: u64 = 55;

/// The AI providers: one fake OpenAI-compatible server on loopback, in
/// this process, answering with the fixed latencies of `args`, so that the
/// benchmark measures Pronto and not a provider.
async fn providers(args: &BenchArgs) -> std::io::Result<FakeOpenAi> {
    let ms = Duration::from_millis;
    let fake = FakeOpenAi::start().await?;
    fake.audio.set_default_transcript(TRANSCRIPT);
    fake.audio.set_stt_latency(ms(args.stt_ms));
    fake.chat.set_default_reply(Reply::text(ANSWER));
    // Each word in its own event, the first one `llm_first_token_ms` after
    // the request: Ollama's stream, which has no role-only chunk before it.
    fake.chat.set_style(Style::Ollama);
    fake.chat
        .set_latency(ms(args.llm_first_token_ms), ms(args.llm_token_ms));
    fake.audio.set_ms_per_char(MS_PER_CHAR);
    fake.audio.set_chunk_ms(args.tts_chunk_ms.max(1));
    fake.audio
        .set_pace(ms(args.tts_first_byte_ms), args.tts_speed.max(0.1));
    Ok(fake)
}

pub async fn run_cli(args: BenchArgs) -> anyhow::Result<()> {
    if args.turn_detectors {
        let model = crate::engine::turn_model::load(&args.models_dir)
            .map_err(|e| eprintln!("the model is not measured: {e}"))
            .ok();
        let rows = turns::run(&args.turn_fixtures, model).await?;
        println!("{}", turns::table(&rows));
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_vec_pretty(&rows)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(());
    }
    let report = run(&args).await?;
    println!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.failed_calls > 0 {
        bail!("{} of {} calls failed", report.failed_calls, report.calls);
    }
    Ok(())
}

/// Runs the benchmark and returns its report.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    // Stops when dropped, at the end of the run.
    let providers = providers(args).await?;
    let streaming = Streaming::start(args).await?;
    let s2s = speech_to_speech(args, &providers).await?;
    let dir = std::env::temp_dir().join(format!("pronto-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    agents::write(&dir, args.agents)?;
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("PORT", port.to_string()),
        ("BIND", "127.0.0.1".into()),
        ("PUBLIC_BASE_URL", url.clone()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.into()),
        ("API_TOKEN", API_TOKEN.into()),
        ("OPENAI_API_KEY", "bench".into()),
        ("OPENAI_BASE_URL", providers.base_url().to_string()),
        ("LLM_PROVIDER", "openai".into()),
        ("DATABASE_URL", "sqlite://bench.db".into()),
        ("RUST_LOG", args.server_log.clone()),
        (
            "PRONTO_SERVER_MAX_CONCURRENT_CALLS",
            (args.calls + 10).to_string(),
        ),
        ("PRONTO_LIMITS_CALLS_PER_HOUR_PER_NUMBER", "0".into()),
        ("PRONTO_LIMITS_IDLE_PROMPT_SECS", "0".into()),
        ("PRONTO_LIMITS_MAX_CALL_DURATION_SECS", "0".into()),
        ("PRONTO_TURN_DETECTOR", args.detector.clone()),
        (
            "PRONTO_TURN_MODELS_DIR",
            std::path::absolute(&args.models_dir)
                .unwrap_or_else(|_| args.models_dir.clone())
                .display()
                .to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(streaming.iter().flat_map(|(_, env)| env.clone()))
    // Last: a speech-to-speech engine's OPENAI_BASE_URL wins.
    .chain(s2s.iter().flat_map(|(_, env)| env.clone()))
    .collect();
    let mut server = process::spawn_server(
        args.server_exe.as_deref(),
        &dir,
        &env,
        args.server_cpus.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let pid = server.id();
    let outcome = async {
        process::wait_healthy(&url, Duration::from_secs(20))
            .await
            .map_err(anyhow::Error::msg)?;
        // The fixed lines are synthesized at start-up: let that finish.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if args.soak_secs > 0 {
            return soak::run(args, &url, pid, &providers).await;
        }
        measure(args, &url, pid).await
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    if outcome.is_err() {
        eprintln!("server log: {}", dir.join("server.log").display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn measure(args: &BenchArgs, url: &str, pid: u32) -> anyhow::Result<Report> {
    let idle = process::usage(pid).context("cannot read the server's /proc")?;
    let speech: Arc<Vec<i16>> = Arc::new(crate::sim::load_wav_8k(&fixture_path())?);
    let mut cfg = SimConfig::new(url);
    cfg.auth_token = Some(AUTH_TOKEN.into());
    let stagger = Duration::from_secs_f64(args.ramp_secs / args.calls.max(1) as f64);
    // Dropped (and closed) at the end of the run.
    let _watchers: Vec<AbortOnDrop> = (0..args.watchers)
        .map(|_| {
            AbortOnDrop(tokio::spawn(caller::watch_events(
                url.to_string(),
                API_TOKEN,
            )))
        })
        .collect();
    let mut tasks = Vec::new();
    for i in 0..args.calls {
        let mut cfg = cfg.clone();
        cfg.from = format!("+1555{:07}", i);
        if args.agents > 0 {
            cfg.to = agents::number(i % args.agents);
        }
        let speech = Arc::clone(&speech);
        let plan = caller::Plan {
            length: Duration::from_secs(args.call_secs),
            barge_in_every: args.barge_in_every,
            listen_only: args.listen_only,
            listeners: args.listeners,
            tolerant: false,
            marks_by_time: args.engine != "cascade",
        };
        tasks.push(tokio::spawn(async move {
            caller::run(cfg, &speech, plan, API_TOKEN).await
        }));
        tokio::time::sleep(stagger).await;
    }
    let sampler = tokio::spawn(peak_rss(pid));
    let mut results: Vec<CallResult> = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap_or_else(|e| CallResult {
            error: Some(format!("caller task: {e}")),
            ..CallResult::default()
        }));
    }
    let end = process::usage(pid).unwrap_or(idle);
    sampler.abort();
    let peak = PEAK_RSS
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(end.rss_bytes);
    let (server_turns, calls_by_agent) = server_latencies(url, &results).await;
    let mut report = summarize(results, idle, end, peak, server_turns);
    report.calls_by_agent = calls_by_agent;
    // Speculative answers the server started and dropped unheard.
    if let Ok(health) = reqwest::get(format!("{url}/health")).await
        && let Ok(health) = health.json::<serde_json::Value>().await
    {
        report.speculative_started = health["engine"]["speculative_answers"].as_u64();
        report.speculative_wasted = health["engine"]["speculative_wasted"].as_u64();
    }
    Ok(report)
}

/// A task that stops when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The speech the callers say: the repository's `hello.wav` fixture.
fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello.wav")
}

static PEAK_RSS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Samples the server's RSS every 250 ms, keeping the peak.
async fn peak_rss(pid: u32) {
    loop {
        if let Some(u) = process::usage(pid) {
            PEAK_RSS.fetch_max(u.rss_bytes, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The call's record from the API (`null` if it cannot be read).
async fn call_record(client: &reqwest::Client, url: &str, sid: &str) -> serde_json::Value {
    match client
        .get(format!("{url}/api/calls/{sid}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
    {
        Ok(resp) => resp.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// One answered turn's stages, from its record.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerTurn {
    pipeline_overhead: i64,
    voice_to_voice: i64,
    /// End of speech → words ready (decision, then the final transcript).
    endpoint_wait: Option<i64>,
    turn_decided: Option<i64>,
    stt: Option<i64>,
    first_sentence: Option<i64>,
    tts_first_byte: Option<i64>,
    model_first_audio: Option<i64>,
    decided_by: String,
    speculative: bool,
}

/// Per-turn stages of every answered turn, and the calls each agent
/// answered, from the call records.
async fn server_latencies(
    url: &str,
    results: &[CallResult],
) -> (Vec<ServerTurn>, std::collections::BTreeMap<String, usize>) {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    let mut by_agent = std::collections::BTreeMap::new();
    for r in results.iter().filter(|r| !r.call_sid.is_empty()) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let call = call_record(&client, url, &r.call_sid).await;
            if !call["ended_at"].is_null() || tokio::time::Instant::now() > deadline {
                if let Some(agent) = call["agent"].as_str() {
                    *by_agent.entry(agent.to_string()).or_default() += 1;
                }
                for t in call["turns"].as_array().into_iter().flatten() {
                    let l = &t["latency"];
                    if let (Some(o), Some(v)) = (
                        l["pipeline_overhead_ms"].as_i64(),
                        l["voice_to_voice_ms"].as_i64(),
                    ) {
                        out.push(ServerTurn {
                            pipeline_overhead: o,
                            voice_to_voice: v,
                            endpoint_wait: l["endpoint_wait_ms"].as_i64(),
                            turn_decided: l["turn_decided_ms"].as_i64(),
                            stt: l["stt_ms"].as_i64(),
                            first_sentence: l["first_sentence_ms"].as_i64(),
                            tts_first_byte: l["tts_first_byte_ms"].as_i64(),
                            model_first_audio: l["model_first_audio_ms"].as_i64(),
                            decided_by: l["decided_by"].as_str().unwrap_or("").to_string(),
                            speculative: l["speculative"].as_bool().unwrap_or(false),
                        });
                    }
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    (out, by_agent)
}

fn summarize(
    results: Vec<CallResult>,
    idle: Usage,
    end: Usage,
    peak_rss: u64,
    server_turns: Vec<ServerTurn>,
) -> Report {
    let stage =
        |f: fn(&ServerTurn) -> Option<i64>| Spread::of(server_turns.iter().filter_map(f).collect());
    let mut decided_by: std::collections::BTreeMap<String, usize> = Default::default();
    for t in &server_turns {
        *decided_by.entry(t.decided_by.clone()).or_default() += 1;
    }
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let call_minutes: f64 = results
        .iter()
        .map(|r| r.duration.as_secs_f64())
        .sum::<f64>()
        / 60.0;
    let cpu = (call_minutes > 0.0).then(|| (end.cpu_secs - idle.cpu_secs) / call_minutes);
    let calls = results.len();
    let flat = |f: fn(&CallResult) -> Vec<i64>| results.iter().flat_map(f).collect::<Vec<i64>>();
    Report {
        calls,
        failed_calls: results.iter().filter(|r| r.error.is_some()).count(),
        errors: results.iter().filter_map(|r| r.error.clone()).collect(),
        turns: results.iter().map(|r| r.turns as usize).sum(),
        voice_to_voice_ms: Spread::of(flat(|r| r.voice_to_voice_ms.clone())),
        pipeline_overhead_ms: stage(|t| Some(t.pipeline_overhead)),
        server_voice_to_voice_ms: stage(|t| Some(t.voice_to_voice)),
        endpoint_wait_ms: stage(|t| t.endpoint_wait),
        turn_decided_ms: stage(|t| t.turn_decided),
        stt_ms: stage(|t| t.stt),
        first_sentence_ms: stage(|t| t.first_sentence),
        tts_first_byte_ms: stage(|t| t.tts_first_byte),
        model_first_audio_ms: stage(|t| t.model_first_audio),
        decided_by,
        speculative_turns: server_turns.iter().filter(|t| t.speculative).count(),
        speculative_started: None,
        speculative_wasted: None,
        greeting_ms: Spread::of(flat(|r| r.greeting_ms.into_iter().collect())),
        barge_in_ms: Spread::of(flat(|r| r.barge_in_ms.clone())),
        barge_in_min_ms: BARGE_IN_MIN_MS,
        cpu_secs_per_call_minute: cpu,
        rss_idle_mb: Some(mb(idle.rss_bytes)),
        rss_peak_mb: Some(mb(peak_rss)),
        rss_per_call_mb: (calls > 0)
            .then(|| mb(peak_rss.saturating_sub(idle.rss_bytes)) / calls as f64),
        underruns: results.iter().map(|r| r.underruns).sum(),
        generator_late_ticks: results.iter().map(|r| r.late_ticks).sum(),
        generator_max_lateness_ms: results
            .iter()
            .map(|r| r.max_tick_lateness_ms)
            .max()
            .unwrap_or(0),
        calls_by_agent: Default::default(),
        soak: None,
    }
}
