use super::*;
use crate::check::finding::Level;

fn load(pairs: &[(&str, &str)]) -> (Config, HashMap<String, String>) {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = Config::from_sources(None, &env).expect("valid configuration");
    (config, env)
}

/// Every start-up warning is said exactly once: either explained by a check
/// (and then not repeated as is) or passed on as a note. This is what keeps
/// [`EXPLAINED`] in step with the loader's wording.
#[test]
fn every_start_up_warning_is_said_once() {
    let setups: [&[(&str, &str)]; 2] = [
        // Unset URL, no auth token, no API token, a half-set agent, a typo.
        &[("ANTHROPIC_API_KEY", "sk-ant"), ("PRONTO_TYPO", "1")],
        // A URL that is not https.
        &[("PUBLIC_BASE_URL", "http://voice.acme.net")],
    ];
    for pairs in setups {
        let (config, env) = load(pairs);
        assert!(!config.warnings.is_empty());
        let found = findings(&config, &env);
        for warning in &config.warnings {
            let explained = EXPLAINED.iter().find(|p| warning.starts_with(*p));
            let verbatim = found.iter().filter(|f| &f.text == warning).count();
            match explained {
                Some(prefix) => {
                    assert_eq!(verbatim, 0, "{warning} is repeated: {found:#?}");
                    let setting = prefix.split(' ').next_back().unwrap_or(prefix);
                    assert!(
                        found.iter().any(|f| f.text.contains(setting)),
                        "nothing explains {warning}: {found:#?}"
                    );
                }
                None => assert_eq!(verbatim, 1, "{warning} is not passed on: {found:#?}"),
            }
        }
    }
}

#[test]
fn a_complete_setup_has_nothing_to_say() {
    let (config, env) = load(&[
        ("PUBLIC_BASE_URL", "https://voice.acme.net"),
        ("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef"),
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("API_TOKEN", "t"),
    ]);
    assert_eq!(findings(&config, &env), []);
}

#[test]
fn levels_of_the_url_problems() {
    let level = |url: &str| {
        let (config, env) = load(&[("PUBLIC_BASE_URL", url)]);
        findings(&config, &env)
            .into_iter()
            .find(|f| f.text.starts_with("PUBLIC_BASE_URL"))
            .map(|f| f.level)
    };
    assert_eq!(level("https://voice.acme.net"), None);
    assert_eq!(level("https://voice.acme.net:443"), None);
    assert_eq!(level("http://127.0.0.1:8080"), Some(Level::Note));
    assert_eq!(level("https://abc.trycloudflare.com"), Some(Level::Note));
    assert_eq!(level("http://voice.acme.net"), Some(Level::Error));
    assert_eq!(level("https://voice.acme.net:8443"), Some(Level::Error));
    assert_eq!(level("https://voice.example.com"), Some(Level::Error));
    assert_eq!(level("https://voice.acme.net/voice"), Some(Level::Error));
    assert_eq!(level("https://voice.acme.net/voice/"), Some(Level::Error));
    assert_eq!(level("https://voice.acme.net/voiceover"), None);
}

#[test]
fn account_sids() {
    assert!(is_account_sid("AC0123456789abcdef0123456789ABCDEF"));
    assert!(!is_account_sid("AC0123456789abcdef0123456789abcde"));
    assert!(!is_account_sid("SK0123456789abcdef0123456789abcdef"));
    assert!(!is_account_sid("AC0123456789abcdef0123456789abcdeg"));
}

/// OpenAI Realtime reads the prompt at start as the cascade's agent does:
/// a missing prompt file stops `pronto serve` either way.
#[test]
fn a_realtime_engine_without_its_prompt_file_would_not_start() {
    let (config, env) = load(&[
        ("PRONTO_ENGINE_KIND", "openai-realtime"),
        ("OPENAI_API_KEY", "sk-1"),
        ("PRONTO_AGENT_PROMPT_FILE", "prompts/not-there.md"),
        // No cascade: its speech-to-text key is missing.
        ("PRONTO_STT_PROVIDER", "deepgram"),
    ]);
    assert!(config.speech_to_speech.is_some() && config.ai.is_none());
    let found = findings(&config, &env);
    assert!(
        found.iter().any(|f| f.level == Level::Fatal
            && f.text
                .starts_with("agent.prompt_file = \"prompts/not-there.md\": cannot read it")),
        "{found:#?}"
    );
}
