use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(file: Option<&str>, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(file.map(|t| ("pronto.toml", t)), &env(pairs))
}

#[test]
fn defaults_load_and_match_the_endpointer_defaults() {
    let c = load(None, &[]).expect("defaults are valid");
    assert_eq!(c.tunables.server.port, 8080);
    assert_eq!(c.listen_addr().to_string(), "0.0.0.0:8080");
    assert_eq!(
        c.tunables.vad,
        EndpointerConfig::default(),
        "config/pronto.toml [vad] and EndpointerConfig::default() disagree"
    );
    assert!(c.deployment.public_base_url_is_default);
    assert!(c.warnings.iter().any(|w| w.contains("PUBLIC_BASE_URL")));
}

#[test]
fn file_then_env_then_port_override() {
    let c = load(
        Some("[vad]\nhangover_ms = 800\n[server]\nport = 9000\n[call]\nbarge_in_min_ms = 300"),
        &[
            ("PRONTO_VAD_HANGOVER_MS", "700"),
            ("PORT", "9100"),
            ("BIND", "127.0.0.1"),
        ],
    )
    .expect("valid");
    assert_eq!(c.tunables.vad.hangover_ms, 700);
    assert_eq!(c.tunables.call.barge_in_min_ms, 300);
    assert_eq!(c.listen_addr().to_string(), "127.0.0.1:9100");
}

#[test]
fn integers_are_accepted_for_floats() {
    let c = load(Some("[vad]\nenergy_floor_dbfs = -45"), &[]).expect("valid");
    assert_eq!(c.tunables.vad.energy_floor_dbfs, -45.0);
}

#[test]
fn bad_settings_name_themselves() {
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            Some("[vad]\nhangovr_ms = 1"),
            &[],
            "unknown key vad.hangovr_ms",
        ),
        (Some("[nope]\na = 1"), &[], "unknown section [nope]"),
        (
            Some("[vad]\nhangover_ms = \"long\""),
            &[],
            "vad.hangover_ms must be a whole number",
        ),
        (Some("[vad"), &[], "pronto.toml"),
        (
            None,
            &[("PRONTO_VAD_HANGOVER_MS", "soon")],
            "PRONTO_VAD_HANGOVER_MS=soon",
        ),
        (None, &[("PORT", "99999")], "PORT=99999"),
        (None, &[("BIND", "localhost")], "server.bind"),
        (
            None,
            &[("PRONTO_CALL_BARGE_IN_MIN_MS", "0")],
            "call.barge_in_min_ms must be between",
        ),
        (
            None,
            &[("PRONTO_SERVER_MAX_CONNECTIONS", "0")],
            "server.max_connections must be between",
        ),
        // No timeout at all is the defect the timeouts fix.
        (
            None,
            &[("PRONTO_SERVER_HEADER_TIMEOUT_SECS", "0")],
            "server.header_timeout_secs must be between",
        ),
        (
            None,
            &[("PRONTO_SERVER_BODY_TIMEOUT_SECS", "0")],
            "server.body_timeout_secs must be between",
        ),
        (
            None,
            &[("PUBLIC_BASE_URL", "voice.example.com")],
            "PUBLIC_BASE_URL=voice.example.com",
        ),
        (
            None,
            &[("PUBLIC_BASE_URL", "https://x.example/?a=1")],
            "must not contain a query",
        ),
        (
            None,
            &[("TWILIO_SKIP_SIGNATURE", "maybe")],
            "TWILIO_SKIP_SIGNATURE=maybe",
        ),
        (
            Some("[twilio]\nbusy_message = \" \""),
            &[],
            "twilio.busy_message",
        ),
    ];
    for (file, env, expected) in cases {
        let e = load(*file, env).expect_err(expected);
        assert!(
            e.0.contains(expected),
            "{:?} should mention {expected:?}",
            e.0
        );
        assert!(!e.0.contains('\n'), "one line: {:?}", e.0);
    }
}

#[test]
fn deployment_values() {
    let c = load(
        None,
        &[
            ("PUBLIC_BASE_URL", "https://Voice.Example.com/"),
            ("TWILIO_AUTH_TOKEN", "s3cr3t-auth"),
            ("API_TOKEN", "s3cr3t-api"),
            ("TWILIO_SKIP_SIGNATURE", "false"),
            ("PRONTO_TYPO", "1"),
        ],
    )
    .expect("valid");
    let d = &c.deployment;
    assert_eq!(d.public_base_url, "https://Voice.Example.com");
    assert_eq!(
        d.twilio_auth_token.as_ref().map(Secret::expose),
        Some("s3cr3t-auth")
    );
    assert!(!d.skip_signature);
    assert!(c.warnings.iter().any(|w| w.contains("PRONTO_TYPO")));
    assert!(!format!("{d:?}").contains("s3cr3t"), "secrets never print");
}

#[test]
fn a_public_http_base_url_is_warned_about() {
    let c = load(None, &[("PUBLIC_BASE_URL", "http://voice.example.com")]).expect("valid");
    assert!(
        c.warnings.iter().any(|w| w.contains("not https")),
        "{:?}",
        c.warnings
    );
    let c = load(None, &[("PUBLIC_BASE_URL", "http://127.0.0.1:8080")]).expect("valid");
    assert!(
        !c.warnings.iter().any(|w| w.contains("not https")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn the_agent_runs_when_every_stage_has_its_key() {
    let echo = load(None, &[]).expect("valid");
    assert!(echo.ai.is_none());
    assert!(!echo.warnings.iter().any(|w| w.contains("echo mode")));
    assert!(
        echo.agent_missing_keys.is_empty(),
        "no key set: echo on purpose"
    );

    let gpt = load(None, &[("OPENAI_API_KEY", "sk-1")]).expect("valid");
    let ai = gpt.ai.expect("agent mode with one OpenAI key");
    assert_eq!(ai.llm.provider, agent::LlmProvider::OpenAi);
    assert_eq!(ai.llm.settings.model, "gpt-4o-mini");
    assert_eq!(ai.stt.endpoint.base_url, "https://api.openai.com/v1");
    assert_eq!(ai.stt.settings.language, "en");
    assert_eq!(ai.tts.settings.voice, "coral");
    assert_eq!(ai.llm.settings.temperature, Some(0.7));

    let claude = load(
        None,
        &[
            ("OPENAI_API_KEY", "sk-1"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
            ("PRONTO_LLM_TEMPERATURE", "-1"),
        ],
    )
    .expect("valid");
    let ai = claude.ai.expect("agent mode");
    assert!(claude.agent_missing_keys.is_empty());
    assert_eq!(ai.llm.provider, agent::LlmProvider::Anthropic);
    assert_eq!(
        [&ai.stt.key_var, &ai.llm.key_var, &ai.tts.key_var],
        ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
    );
    assert_eq!(ai.llm.endpoint.base_url, "http://127.0.0.1:9");
    assert_eq!(ai.llm.settings.model, "claude-haiku-4-5");
    assert_eq!(ai.llm.settings.temperature, None);

    let half = load(None, &[("ANTHROPIC_API_KEY", "sk-ant")]).expect("valid");
    assert!(half.ai.is_none());
    // STT and TTS both want OPENAI_API_KEY: it is named once.
    assert_eq!(half.agent_missing_keys, ["OPENAI_API_KEY"]);
    assert!(
        half.warnings
            .iter()
            .any(|w| w.contains("echo mode") && w.contains("OPENAI_API_KEY")),
        "{:?}",
        half.warnings
    );

    let eleven = load(
        Some("[tts]\nprovider = \"elevenlabs\""),
        &[("OPENAI_API_KEY", "sk-1"), ("ELEVENLABS_API_KEY", "xi")],
    )
    .expect("valid");
    let ai = eleven.ai.expect("agent mode");
    assert_eq!(ai.tts.provider, agent::TtsProvider::ElevenLabs);
    assert_eq!(ai.tts.key_var, "ELEVENLABS_API_KEY");
    assert_eq!(ai.tts.endpoint.base_url, "https://api.elevenlabs.io");
    assert_eq!(ai.tts.settings.model, "eleven_flash_v2_5");
}

#[test]
fn lines_are_merged_per_language_and_new_languages_are_accepted() {
    let c = load(
        Some("[agent]\nlanguage = \"it\"\n[lines.it]\ngreeting = \"Pronto, chi parla?\"\n"),
        &[("PRONTO_LINES_IT_FALLBACK", "Come, scusi?")],
    )
    .expect("valid");
    let it = c.tunables.lines();
    assert_eq!(it.greeting, "Pronto, chi parla?");
    assert_eq!(it.fallback, "Come, scusi?");
    assert_eq!(it.goodbye, "Grazie per la chiamata. Arrivederci!");

    let de = "[agent]\nlanguage = \"de\"\n[lines.de]\ngreeting = \"Hallo!\"\nfallback = \"Wie bitte?\"\ngoodbye = \"Tschüss!\"\ntransfer = \"Einen Moment.\"\nstill_there = \"Hallo?\"\nclosing = \"Auf Wiederhören.\"\n";
    assert_eq!(
        load(Some(de), &[])
            .expect("valid")
            .tunables
            .lines()
            .greeting,
        "Hallo!"
    );

    let c = load(None, &[("PRONTO_AGENT_KNOWLEDGE_FILES", "a.md, b.md,")]).expect("valid");
    assert_eq!(c.tunables.agent.knowledge_files, vec!["a.md", "b.md"]);
}

#[test]
fn bad_agent_settings_name_themselves() {
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (Some("[lines.de]\ngreeting = \"Hallo\""), &[], "fallback"),
        (Some("[agent]\nlanguage = \"de\""), &[], "[lines.de]"),
        (
            Some("[lines.en]\ngreting = \"Hi\""),
            &[],
            "unknown key lines.en.greting",
        ),
        (None, &[("PRONTO_TTS_PROVIDER", "polly")], "tts.provider"),
        (
            None,
            &[("PRONTO_AGENT_TRANSFER_NUMBER", "555-1234")],
            "agent.transfer_number",
        ),
        (
            None,
            &[("LLM_PROVIDER", "mistral"), ("OPENAI_API_KEY", "k")],
            "LLM_PROVIDER",
        ),
        (
            None,
            &[("OPENAI_BASE_URL", "api.openai.com")],
            "OPENAI_BASE_URL",
        ),
        (
            None,
            &[("PRONTO_LLM_MAX_TOKENS", "lots")],
            "PRONTO_LLM_MAX_TOKENS",
        ),
        (
            None,
            &[("PRONTO_LINES_EN_FALLBACK", " ")],
            "lines.en.fallback",
        ),
    ];
    for (file, vars, expected) in cases {
        let e = load(*file, vars).expect_err(expected);
        assert!(e.0.contains(expected), "{expected}: {e}");
    }
}
