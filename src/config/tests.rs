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
