//! The dialects without a network: JSON in, `Heard` and messages out.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::providers::listen::Heard;
use crate::providers::listen::dialect_tests::{
    self, EAGER_TURNS, PROVIDER_TURNS, settings, turn_ended,
};

fn settings_for(language: &str, model: &str, turns: TurnsBy) -> StreamSettings {
    StreamSettings {
        model: model.into(),
        language: language.into(),
        vocabulary: "Pronto, Acme Dental ,".into(),
        ..settings("https://api.deepgram.com/", "dg-key", turns)
    }
}

fn dialect(language: &str, model: &str, turns: TurnsBy) -> Box<dyn Dialect> {
    Deepgram::new(settings_for(language, model, turns)).dialect()
}

/// The request's path and query pairs, and its Authorization header.
fn request_of(dialect: &dyn Dialect) -> (String, Vec<(String, String)>, String) {
    let request = dialect.request().expect("a request");
    let uri = request.uri();
    assert_eq!(uri.scheme_str(), Some("wss"), "https:// is taken as wss://");
    let query = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let auth = request.headers()["authorization"]
        .to_str()
        .expect("ASCII")
        .to_string();
    (uri.path().to_string(), query, auth)
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn feed(dialect: &mut dyn Dialect, messages: &[Value]) -> Vec<Heard> {
    let texts: Vec<String> = messages.iter().map(Value::to_string).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (heard, out) = dialect_tests::feed(dialect, &texts);
    assert!(out.is_empty(), "no replies: {out:?}");
    heard
}

fn turn_info(event: &str, transcript: &str) -> Value {
    json!({"type": "TurnInfo", "request_id": "r", "sequence_id": 1, "event": event,
           "turn_index": 0, "audio_window_start": 0.0, "audio_window_end": 1.0,
           "transcript": transcript, "words": [], "end_of_turn_confidence": 0.5})
}

fn controls(out: &[Message]) -> Vec<String> {
    out.iter()
        .filter_map(|m| match m {
            Message::Text(t) => serde_json::from_str::<Value>(t.as_str())
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string)),
            _ => None,
        })
        .collect()
}

fn binary_sizes(out: &[Message]) -> Vec<usize> {
    out.iter()
        .filter_map(|m| match m {
            Message::Binary(b) => Some(b.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn english_gets_flux_with_the_provider_ending_turns() {
    let (path, query, auth) = request_of(dialect("en", "", PROVIDER_TURNS).as_ref());
    assert_eq!(path, "/v2/listen");
    assert_eq!(auth, "Token dg-key");
    assert_eq!(param(&query, "model"), ["flux-general-en"]);
    assert_eq!(param(&query, "encoding"), ["mulaw"]);
    assert_eq!(param(&query, "sample_rate"), ["8000"]);
    assert_eq!(param(&query, "eot_threshold"), ["0.7"]);
    assert!(param(&query, "eager_eot_threshold").is_empty());
    assert_eq!(param(&query, "eot_timeout_ms"), ["5000"]);
    assert_eq!(param(&query, "keyterm"), ["Pronto", "Acme Dental"]);
    assert!(param(&query, "language").is_empty());
}

#[test]
fn eager_flux_asks_for_the_early_signal() {
    let (_, query, _) = request_of(dialect("", "", EAGER_TURNS).as_ref());
    assert_eq!(param(&query, "eager_eot_threshold"), ["0.5"]);
    assert_eq!(param(&query, "eot_threshold"), ["0.7"]);
}

#[test]
fn pronto_ending_turns_turns_flux_own_end_off_but_keeps_the_backstop() {
    let (_, query, _) = request_of(dialect("en-US", "", TurnsBy::Pronto).as_ref());
    assert_eq!(param(&query, "eot_threshold"), ["1.0"]);
    assert!(param(&query, "eager_eot_threshold").is_empty());
    assert_eq!(param(&query, "eot_timeout_ms"), ["5000"]);
}

#[test]
fn other_languages_get_nova_3_on_v1() {
    let (path, query, auth) = request_of(dialect("it", "", PROVIDER_TURNS).as_ref());
    assert_eq!(path, "/v1/listen");
    assert_eq!(auth, "Token dg-key");
    for (name, value) in [
        ("model", "nova-3"),
        ("language", "it"),
        ("encoding", "mulaw"),
        ("sample_rate", "8000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("smart_format", "true"),
    ] {
        assert_eq!(param(&query, name), [value], "{name}");
    }
    assert_eq!(param(&query, "keyterm"), ["Pronto", "Acme Dental"]);
}

#[test]
fn a_named_model_picks_the_endpoint() {
    let (path, query, _) = request_of(dialect("en", "nova-3-medical", PROVIDER_TURNS).as_ref());
    assert_eq!(
        (path.as_str(), param(&query, "model")),
        ("/v1/listen", vec!["nova-3-medical"])
    );
    let (path, query, _) = request_of(dialect("de", "flux-general-multi", PROVIDER_TURNS).as_ref());
    assert_eq!(path, "/v2/listen");
    assert_eq!(param(&query, "model"), ["flux-general-multi"]);
    assert_eq!(param(&query, "language_hint"), ["de"]);
}

#[test]
fn a_fake_base_url_keeps_its_plain_scheme() {
    let mut s = settings_for("en", "", PROVIDER_TURNS);
    s.endpoint.base_url = "http://127.0.0.1:4000".into();
    let request = Deepgram::new(s).dialect().request().expect("a request");
    assert_eq!(request.uri().scheme_str(), Some("ws"));
    assert_eq!(
        request.uri().authority().map(|a| a.as_str()),
        Some("127.0.0.1:4000")
    );
}

#[test]
fn flux_batches_any_length_into_80_ms_messages() {
    let mut flux = dialect("en", "", PROVIDER_TURNS);
    let mut out = Vec::new();
    for _ in 0..3 {
        flux.audio(&[0xFF; 160], &mut out);
    }
    assert!(out.is_empty(), "three frames are not a batch yet");
    flux.audio(&[0xFF; 160], &mut out);
    assert_eq!(binary_sizes(&out), [640]);
    // A 30 s replay after a reconnect, plus an odd tail.
    out.clear();
    flux.audio(&vec![0xFF; 30 * 8000 + 100], &mut out);
    let sizes = binary_sizes(&out);
    assert_eq!(sizes.len(), 30 * 8000 / 640);
    assert!(sizes.iter().all(|&s| s == 640));
    out.clear();
    flux.finish(&mut out);
    assert_eq!(binary_sizes(&out), [100], "30 s is 375 whole batches");
    assert_eq!(controls(&out), ["CloseStream"]);
    assert!(
        matches!(out.last(), Some(Message::Text(_))),
        "the audio goes first"
    );
}

#[test]
fn flux_turn_events_become_what_pronto_hears() {
    let mut flux = dialect("en", "", EAGER_TURNS);
    let heard = feed(
        flux.as_mut(),
        &[
            json!({"type": "Connected", "request_id": "r", "sequence_id": 0}),
            turn_info("StartOfTurn", ""),
            turn_info("Update", "I need"),
            turn_info("EagerEndOfTurn", "I need to"),
            turn_info("TurnResumed", "I need to"),
            turn_info("SomethingNew", "I need to change"),
            turn_info("EagerEndOfTurn", "I need to change it"),
            {
                let mut end = turn_info("EndOfTurn", "I need to change it");
                end["trigger"] = json!("model");
                end
            },
        ],
    );
    assert_eq!(
        heard,
        [
            Heard::SpeechStarted,
            Heard::Partial("I need".into()),
            Heard::EagerEnd("I need to".into()),
            Heard::Resumed,
            Heard::Partial("I need to change".into()),
            Heard::EagerEnd("I need to change it".into()),
            turn_ended("I need to change it", false),
        ]
    );
}

#[test]
fn flux_force_end_flushes_the_audio_then_asks_and_a_manual_end_is_forced() {
    let mut flux = dialect("en", "", TurnsBy::Pronto);
    feed(flux.as_mut(), &[turn_info("StartOfTurn", "")]);
    let mut out = Vec::new();
    let mut heard = Vec::new();
    flux.audio(&[0x10; 200], &mut out);
    flux.force_end(&mut out, &mut heard);
    assert!(heard.is_empty(), "Flux answers: {heard:?}");
    assert_eq!(binary_sizes(&out), [200]);
    assert_eq!(controls(&out), ["ForceEndTurn"]);
    let mut end = turn_info("EndOfTurn", "hello there");
    end["trigger"] = json!("manual");
    assert_eq!(
        feed(flux.as_mut(), &[end]),
        [turn_ended("hello there", true)]
    );
}

#[test]
fn flux_force_end_before_the_turn_opens_is_sent_when_it_does() {
    let mut flux = dialect("en", "", TurnsBy::Pronto);
    let mut out = Vec::new();
    let mut heard = Vec::new();
    flux.force_end(&mut out, &mut heard);
    assert!(heard.is_empty(), "no answer invented: {heard:?}");
    assert!(controls(&out).is_empty(), "Flux would not answer it yet");
    // The caller's words reach Flux after Pronto heard the pause.
    flux.text(
        &turn_info("StartOfTurn", "hi").to_string(),
        &mut out,
        &mut heard,
    )
    .expect("a turn event");
    assert_eq!(controls(&out), ["ForceEndTurn"]);
    // Asked once: the next events do not ask again.
    out.clear();
    flux.text(
        &turn_info("Update", "hi there").to_string(),
        &mut out,
        &mut heard,
    )
    .expect("an update");
    assert!(controls(&out).is_empty());
}

#[test]
fn flux_error_is_fatal_and_the_rest_is_not() {
    let mut flux = dialect("en", "", PROVIDER_TURNS);
    let mut out = Vec::new();
    let mut heard = Vec::new();
    for harmless in [
        "not json",
        r#"{"type":"ConfigureFailure","request_id":"r","sequence_id":3}"#,
        r#"{"type":"ConfigureSuccess","thresholds":{}}"#,
        r#"{"type":"BrandNew","x":1}"#,
        r#"[1,2]"#,
    ] {
        assert_eq!(
            flux.text(harmless, &mut out, &mut heard),
            Ok(()),
            "{harmless}"
        );
    }
    assert!(heard.is_empty());
    let error = flux.text(
        r#"{"type":"Error","sequence_id":3,"code":"INVALID_AUDIO","description":"bad\naudio"}"#,
        &mut out,
        &mut heard,
    );
    let Err(Closed::Fatal(ProviderError::Protocol { detail, .. })) = error else {
        panic!("{error:?}");
    };
    assert!(detail.contains("INVALID_AUDIO"), "{detail}");
    assert!(!detail.contains('\n'), "escaped: {detail}");
}

#[test]
fn closes_are_classified() {
    let mut flux = dialect("en", "", PROVIDER_TURNS);
    assert!(
        matches!(flux.closed(None, ""), Closed::Retry(_)),
        "a drop mid-call"
    );
    assert!(matches!(flux.closed(Some(1006), ""), Closed::Retry(_)));
    assert!(matches!(
        flux.closed(Some(1011), "NET-0001"),
        Closed::Retry(_)
    ));
    assert!(
        matches!(flux.closed(Some(1000), ""), Closed::Retry(_)),
        "unasked mid-call"
    );
    assert!(matches!(
        flux.closed(Some(1008), "DATA-0000"),
        Closed::Fatal(_)
    ));
    assert!(matches!(
        flux.closed(Some(4001), "INVALID_AUTH"),
        Closed::Fatal(_)
    ));
    assert!(matches!(
        flux.closed(Some(4008), "NET-0001 idle"),
        Closed::Retry(_)
    ));
    flux.finish(&mut Vec::new());
    assert_eq!(
        flux.closed(None, ""),
        Closed::Clean,
        "CloseStream ends with no code"
    );
    assert_eq!(flux.closed(Some(1005), ""), Closed::Clean);
    assert!(matches!(
        flux.closed(Some(1008), "DATA-0000"),
        Closed::Fatal(_)
    ));

    let mut nova = dialect("it", "", PROVIDER_TURNS);
    assert!(matches!(nova.closed(Some(1000), ""), Closed::Retry(_)));
    nova.finish(&mut Vec::new());
    assert_eq!(nova.closed(Some(1000), ""), Closed::Clean);
}

#[test]
fn a_reconnect_starts_the_turn_afresh() {
    let mut flux = dialect("en", "", TurnsBy::Pronto);
    feed(flux.as_mut(), &[turn_info("StartOfTurn", "")]);
    let mut out = Vec::new();
    flux.audio(&[0xFF; 100], &mut out);
    flux.opening(&mut out);
    assert!(out.is_empty(), "Flux needs no opening message");
    let mut heard = Vec::new();
    flux.force_end(&mut out, &mut heard);
    assert!(heard.is_empty(), "no answer invented");
    assert!(
        controls(&out).is_empty(),
        "no turn open on the new connection yet: asked when it opens"
    );
    flux.finish(&mut out);
    assert!(
        binary_sizes(&out).is_empty(),
        "the old batch went with the old socket"
    );
}

#[test]
fn a_force_the_dropped_connection_took_is_asked_again() {
    let mut flux = dialect("en", "", TurnsBy::Pronto);
    feed(flux.as_mut(), &[turn_info("StartOfTurn", "hi")]);
    let mut out = Vec::new();
    let mut heard = Vec::new();
    flux.force_end(&mut out, &mut heard);
    assert_eq!(controls(&out), ["ForceEndTurn"]);
    out.clear();
    flux.opening(&mut out);
    flux.text(
        &turn_info("StartOfTurn", "hi").to_string(),
        &mut out,
        &mut heard,
    )
    .expect("a turn event");
    assert_eq!(
        controls(&out),
        ["ForceEndTurn"],
        "asked again after the replay"
    );
}

fn results(transcript: &str, is_final: bool, speech_final: bool) -> Value {
    json!({"type": "Results", "channel_index": [0, 1], "duration": 1.0, "start": 0.0,
           "is_final": is_final, "speech_final": speech_final, "from_finalize": false,
           "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.9, "words": []}]},
           "metadata": {"request_id": "r", "model_uuid": "u", "model_info": {"name": "n"}}})
}

#[test]
fn nova_joins_finals_into_the_turn_and_ends_it_on_speech_final() {
    let mut nova = dialect("it", "", PROVIDER_TURNS);
    let heard = feed(
        nova.as_mut(),
        &[
            json!({"type": "SpeechStarted", "channel": [0], "timestamp": 0.42}),
            results("vorrei", false, false),
            results("vorrei prenotare", true, false),
            results("un", false, false),
            results("un tavolo", true, true),
            json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 2.3}),
            json!({"type": "Metadata", "request_id": "r", "duration": 2.0}),
        ],
    );
    assert_eq!(
        heard,
        [
            Heard::SpeechStarted,
            Heard::Partial("vorrei".into()),
            Heard::Partial("vorrei prenotare".into()),
            Heard::Partial("vorrei prenotare un".into()),
            turn_ended("vorrei prenotare un tavolo", false),
        ],
        "the UtteranceEnd after the speech_final ends nothing more"
    );
}

#[test]
fn nova_utterance_end_ends_a_turn_without_speech_final() {
    let mut nova = dialect("it", "", PROVIDER_TURNS);
    let heard = feed(
        nova.as_mut(),
        &[
            results("ciao", true, false),
            json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.0}),
        ],
    );
    assert_eq!(heard.last(), Some(&turn_ended("ciao", false)));
}

#[test]
fn nova_with_pronto_ending_turns_ignores_endpoints_and_finalizes_on_force_end() {
    let mut nova = dialect("it", "", TurnsBy::Pronto);
    let heard = feed(
        nova.as_mut(),
        &[
            results("buongiorno", true, true),
            json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.0}),
            results("vorrei", false, false),
        ],
    );
    assert!(
        !heard.iter().any(|h| matches!(h, Heard::TurnEnded { .. })),
        "{heard:?}"
    );
    let mut out = Vec::new();
    let mut heard = Vec::new();
    nova.audio(&[0x10; 100], &mut out);
    nova.force_end(&mut out, &mut heard);
    assert!(
        heard.is_empty(),
        "an interim is pending: wait for the flush"
    );
    assert_eq!(binary_sizes(&out), [100]);
    assert_eq!(controls(&out), ["Finalize"]);
    let mut flushed = results("vorrei un tavolo", true, false);
    flushed["from_finalize"] = json!(true);
    assert_eq!(
        feed(nova.as_mut(), &[flushed]),
        [turn_ended("buongiorno vorrei un tavolo", true)]
    );
}

#[test]
fn nova_force_end_when_all_is_final_answers_at_once() {
    let mut nova = dialect("it", "", TurnsBy::Pronto);
    feed(nova.as_mut(), &[results("grazie", true, true)]);
    let mut out = Vec::new();
    let mut heard = Vec::new();
    nova.force_end(&mut out, &mut heard);
    assert_eq!(heard, [turn_ended("grazie", true)]);
    assert!(controls(&out).is_empty());
    heard.clear();
    nova.force_end(&mut out, &mut heard);
    assert!(heard.is_empty(), "nothing heard yet: {heard:?}");
    assert_eq!(
        controls(&out),
        ["Finalize"],
        "words may be on their way: Deepgram is asked"
    );
}

#[test]
fn nova_sends_frames_as_they_come_and_closes_with_close_stream() {
    let mut nova = dialect("it", "", PROVIDER_TURNS);
    let mut out = Vec::new();
    nova.audio(&[0xFF; 160], &mut out);
    nova.audio(&vec![0xFF; 1000], &mut out);
    assert_eq!(binary_sizes(&out), [160; 7]);
    out.clear();
    nova.finish(&mut out);
    assert_eq!(binary_sizes(&out), [40]);
    assert_eq!(controls(&out), ["CloseStream"]);
}

#[test]
fn nova_error_message_is_fatal_and_junk_is_skipped() {
    let mut nova = dialect("it", "", PROVIDER_TURNS);
    let mut out = Vec::new();
    let mut heard = Vec::new();
    assert_eq!(nova.text("{", &mut out, &mut heard), Ok(()));
    assert_eq!(
        nova.text(r#"{"type":"Results"}"#, &mut out, &mut heard),
        Ok(())
    );
    assert!(heard.is_empty());
    let error = nova.text(
        r#"{"type":"Error","variant":"DATA-0000","description":"bad audio"}"#,
        &mut out,
        &mut heard,
    );
    assert!(matches!(error, Err(Closed::Fatal(_))), "{error:?}");
}

#[test]
fn only_nova_asks_for_keep_alives() {
    let flux = dialect("en", "", PROVIDER_TURNS);
    assert_eq!(
        flux.keep_alive_after(),
        None,
        "KeepAlive is not a Flux message"
    );
    let mut nova = dialect("it", "", PROVIDER_TURNS);
    assert_eq!(
        nova.keep_alive_after(),
        Some(std::time::Duration::from_secs(5))
    );
    let mut out = Vec::new();
    nova.idle(&mut out);
    assert_eq!(controls(&out), ["KeepAlive"]);
}
