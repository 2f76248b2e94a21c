//! A Pronto server in agent mode wired to the fakes: OpenAI audio (STT and
//! TTS), an LLM (Claude or GPT), Twilio REST, and optionally ElevenLabs. The
//! test plays the caller with the simulator and reads what each fake received.

use std::time::Duration;

use pronto::sim::{Call, Event};
use serde_json::Value;

use crate::harness::{AUTH_TOKEN, TestServer, WAIT, expect_event};
use pronto::fakes::anthropic::FakeAnthropic;
use pronto::fakes::elevenlabs::FakeElevenLabs;
use pronto::fakes::llm_reply::LlmFake;
use pronto::fakes::openai_audio::FakeOpenAiAudio;
use pronto::fakes::openai_chat::FakeOpenAiChat;
use pronto::fakes::twilio_rest::FakeTwilioRest;

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TRANSFER_TO: &str = "+15557654321";
pub const GREETING: &str = "Hello, thanks for calling! How can I help you today?";
pub const FALLBACK: &str = "Sorry, could you say that again?";
/// Fixed lines synthesized at start-up (greeting, fallback, goodbye, transfer, still there, closing).
pub const LINES: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Anthropic,
    OpenAi,
}

pub enum Llm {
    Anthropic(FakeAnthropic),
    OpenAi(FakeOpenAiChat),
}

impl Llm {
    pub fn fake(&self) -> &LlmFake {
        match self {
            Llm::Anthropic(f) => f,
            Llm::OpenAi(f) => f,
        }
    }
}

pub struct World {
    pub server: TestServer,
    pub audio: FakeOpenAiAudio,
    pub llm: Llm,
    pub rest: FakeTwilioRest,
    pub eleven: Option<FakeElevenLabs>,
}

/// Short timeouts so that fault tests finish quickly.
const FAST_TIMEOUTS: [(&str, &str); 3] = [
    ("PRONTO_STT_TIMEOUT_MS", "1500"),
    ("PRONTO_LLM_FIRST_TOKEN_TIMEOUT_MS", "1500"),
    ("PRONTO_TTS_FIRST_BYTE_TIMEOUT_MS", "1500"),
];

impl World {
    pub async fn start(provider: Provider) -> World {
        World::start_with(provider, false, &[]).await
    }

    /// `elevenlabs`: speak with the ElevenLabs fake instead of OpenAI's.
    pub async fn start_with(provider: Provider, elevenlabs: bool, env: &[(&str, &str)]) -> World {
        World::start_full(provider, elevenlabs, env, None, 1).await
    }

    /// With a `pronto.toml` (e.g. `[routing]` and its agent files) whose
    /// `agents` agents each synthesize their fixed lines at start-up.
    pub async fn start_agents(
        provider: Provider,
        env: &[(&str, &str)],
        toml: &str,
        agents: usize,
    ) -> World {
        World::start_full(provider, false, env, Some(toml), agents).await
    }

    async fn start_full(
        provider: Provider,
        elevenlabs: bool,
        env: &[(&str, &str)],
        toml: Option<&str>,
        agents: usize,
    ) -> World {
        let audio = FakeOpenAiAudio::start().await;
        // Short audio keeps the tests quick: 52 characters of greeting ≈ 0.8 s.
        audio.set_ms_per_char(15);
        let rest = FakeTwilioRest::start(ACCOUNT_SID, AUTH_TOKEN).await;
        let eleven = if elevenlabs {
            let e = FakeElevenLabs::start().await;
            e.set_ms_per_char(15);
            Some(e)
        } else {
            None
        };
        let llm = match provider {
            Provider::Anthropic => Llm::Anthropic(FakeAnthropic::start().await),
            Provider::OpenAi => Llm::OpenAi(FakeOpenAiChat::start().await),
        };
        let audio_url = audio.base_url().to_string();
        let rest_url = rest.base_url().to_string();
        let (llm_provider, llm_url) = match &llm {
            Llm::Anthropic(f) => ("anthropic", f.base_url()),
            Llm::OpenAi(f) => ("openai", f.base_url()),
        };
        let mut vars: Vec<(&str, &str)> = vec![
            ("OPENAI_API_KEY", "sk-test-openai"),
            ("ANTHROPIC_API_KEY", "sk-ant-test"),
            ("OPENAI_BASE_URL", &audio_url),
            ("LLM_PROVIDER", llm_provider),
            ("PRONTO_LLM_BASE_URL", &llm_url),
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("TWILIO_API_BASE_URL", &rest_url),
            ("PRONTO_AGENT_TRANSFER_NUMBER", TRANSFER_TO),
        ];
        vars.extend(FAST_TIMEOUTS);
        let eleven_url = eleven.as_ref().map(|e| e.base_url().to_string());
        if let Some(url) = &eleven_url {
            vars.extend([
                ("PRONTO_TTS_PROVIDER", "elevenlabs"),
                ("ELEVENLABS_API_KEY", "xi-test"),
                ("ELEVENLABS_BASE_URL", url.as_str()),
            ]);
        }
        vars.extend_from_slice(env);
        let server = TestServer::agent(&vars, toml).await;
        let world = World {
            server,
            audio,
            llm,
            rest,
            eleven,
        };
        world.wait_lines_synthesized(LINES * agents).await;
        world
    }

    /// TTS requests made so far (OpenAI or ElevenLabs, whichever speaks).
    pub fn tts_texts(&self) -> Vec<String> {
        match &self.eleven {
            Some(e) => e.requests().into_iter().map(|r| r.text).collect(),
            None => self
                .audio
                .tts_requests()
                .into_iter()
                .map(|r| r.input)
                .collect(),
        }
    }

    /// The six fixed lines (of each agent) are synthesized at start-up;
    /// waiting for them makes later TTS requests (and faults) belong to the
    /// call.
    pub async fn wait_lines_synthesized(&self, lines: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.tts_texts().len() < lines {
            assert!(
                tokio::time::Instant::now() < deadline,
                "lines never synthesized: {:?}",
                self.tts_texts()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// LLM requests received so far.
    pub fn llm_requests(&self) -> Vec<Value> {
        self.llm.fake().requests()
    }

    /// Waits for the `n`th LLM request.
    pub async fn llm_request(&self, n: usize) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let requests = self.llm_requests();
            if requests.len() >= n {
                return requests[n - 1].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no LLM request #{n}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Dials and waits until the greeting has been heard (its mark is back).
    pub async fn dial_and_hear_greeting(&self) -> Call {
        let call = Call::dial(&self.server.fast_sim())
            .await
            .expect("call connects");
        hear_mark(&call, "t0-s0").await;
        call
    }
}

/// The caller says hello, then hears the answer up to `mark`.
pub async fn say_hello_and_hear(call: &Call, mark: &str) {
    call.say(&crate::harness::fixture("hello.wav"));
    call.wait_said().await.expect("said");
    hear_mark(call, mark).await;
}

/// Dials and waits for the first audio of the greeting.
pub async fn dial_until_greeting_starts(w: &World) -> Call {
    let call = Call::dial(&w.server.fast_sim())
        .await
        .expect("call connects");
    expect_event(&call, "the greeting's first audio", |e| {
        matches!(e, Event::AudioHeardStart)
    })
    .await;
    call
}

/// Waits until Twilio (the simulator) has played `mark` to the end.
pub async fn hear_mark(call: &Call, mark: &str) {
    expect_event(
        call,
        &format!("mark {mark} played"),
        |e| matches!(e, Event::MarkEchoed { name, cleared: false } if name == mark),
    )
    .await;
}

/// The conversation of an LLM request, whichever provider it went to, as
/// (role, text) pairs, and its system prompt.
pub fn conversation(request: &Value) -> (String, Vec<(String, String)>) {
    let text_of = |content: &Value| match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    let mut system = text_of(&request["system"]);
    let mut messages = Vec::new();
    for m in request["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or_default().to_string();
        let text = text_of(&m["content"]);
        if role == "system" {
            system = text;
        } else {
            messages.push((role, text));
        }
    }
    (system, messages)
}

pub fn pair(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}
