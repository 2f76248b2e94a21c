//! `GET /metrics`: parsed with a Prometheus text-format parser after
//! simulated calls through the agent (the fakes play the providers and
//! Twilio), every family is there with its type, the histograms have
//! buckets, and the counts moved as the calls did. And who may read it.
//!
//! Every server of this test process shares one recorder, and other tests
//! make calls at the same time: counts are read before and after, and the
//! calls here come with a `Direction` no other test sends
//! (`trunking-originating`, the label `other`), so that the counts by
//! direction moved by exactly these calls.

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

use crate::agent_world::{Provider, World, hear_mark, say_hello_and_hear};
use crate::harness::{API_TOKEN, TestServer, WAIT, expect_event, fixture};
use pronto::fakes::llm_reply::Reply;
use pronto::sim::{Call, Event};

/// What kind each family is, as its samples parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const FAMILIES: [(&str, Kind); 16] = [
    ("pronto_build_info", Kind::Gauge),
    ("pronto_calls_started_total", Kind::Counter),
    ("pronto_calls_ended_total", Kind::Counter),
    ("pronto_active_calls", Kind::Gauge),
    ("pronto_call_duration_seconds", Kind::Histogram),
    ("pronto_turn_stage_seconds", Kind::Histogram),
    ("pronto_turn_response_seconds", Kind::Histogram),
    ("pronto_turn_overhead_seconds", Kind::Histogram),
    ("pronto_turns_total", Kind::Counter),
    ("pronto_barge_ins_total", Kind::Counter),
    ("pronto_provider_requests_total", Kind::Counter),
    ("pronto_twilio_bad_messages_total", Kind::Counter),
    ("pronto_twilio_webhooks_total", Kind::Counter),
    ("pronto_playback_underruns_total", Kind::Counter),
    ("pronto_mark_roundtrip_seconds", Kind::Histogram),
    ("pronto_dashboard_sessions", Kind::Gauge),
];

/// The direction of this test's calls, and its label.
const DIRECTION: &str = "trunking-originating";
const OTHER: (&str, &str) = ("direction", "other");

/// `/metrics` with the token, parsed.
pub async fn scrape(server: &TestServer) -> Scrape {
    let response = server
        .http()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("body");
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("the text format parses")
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
}

/// A counter's or gauge's value (summed over the series that have
/// `labels`), or a histogram's `_count`/`_sum` (given as `name`); 0 when
/// absent.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && has_labels(s, labels))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            Value::Histogram(_) | Value::Summary(_) => 0.0,
        })
        .sum()
}

/// How much a value grew between two scrapes.
fn grew(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

fn kind_of(value: &Value) -> Option<Kind> {
    match value {
        Value::Counter(_) => Some(Kind::Counter),
        Value::Gauge(_) => Some(Kind::Gauge),
        Value::Histogram(_) => Some(Kind::Histogram),
        Value::Summary(_) | Value::Untyped(_) => None,
    }
}

/// The families whose labels are all fixed: there (at zero) from the first
/// scrape. Provider requests are labelled by the provider that answered, so
/// that family appears with the first request.
fn fixed_families() -> impl Iterator<Item = (&'static str, Kind)> {
    FAMILIES
        .into_iter()
        .filter(|(name, _)| *name != "pronto_provider_requests_total")
}

/// Each of `families` is there, with HELP, its type, and (histograms)
/// buckets.
fn check_families(scrape: &Scrape, families: impl Iterator<Item = (&'static str, Kind)>) {
    for (name, kind) in families {
        let samples: Vec<&Sample> = scrape.samples.iter().filter(|s| s.metric == name).collect();
        assert!(!samples.is_empty(), "{name} is missing");
        assert!(scrape.docs.contains_key(name), "{name} has no HELP");
        for sample in &samples {
            assert_eq!(kind_of(&sample.value), Some(kind), "{name}: {sample:?}");
            if let Value::Histogram(buckets) = &sample.value {
                // Real buckets, +Inf last: a histogram, not a summary.
                assert!(buckets.len() > 5, "{name}: {buckets:?}");
                assert!(
                    buckets.iter().any(|b| b.less_than.is_infinite()),
                    "{name}: {buckets:?}"
                );
                let count = format!("{name}_count");
                assert!(
                    scrape.samples.iter().any(|s| s.metric == count),
                    "{name} has no _count"
                );
            }
        }
    }
    assert_eq!(
        value(
            scrape,
            "pronto_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // No call SID or phone number in any label.
    for sample in &scrape.samples {
        let labels = format!("{}", sample.labels);
        assert!(
            !labels.contains("CA") && !labels.contains("+1555"),
            "{}: {labels}",
            sample.metric
        );
    }
}

async fn dial(w: &World) -> Call {
    let mut sim = w.server.fast_sim();
    sim.direction = DIRECTION.to_string();
    let call = Call::dial(&sim).await.expect("call connects");
    hear_mark(&call, "t0-s0").await;
    call
}

/// Waits until no call is in progress on `server`.
async fn calls_over(server: &TestServer) {
    server
        .wait_status("no call in progress", |s| {
            s["calls"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
}

#[tokio::test]
async fn metrics_count_the_calls_turns_and_providers() {
    let w = World::start(Provider::OpenAi).await;
    let before = scrape(&w.server).await;
    check_families(&before, fixed_families());

    // A call with one turn answered, and a malformed message from "Twilio".
    w.audio.push_transcript("What time do you open?");
    w.llm
        .fake()
        .push_reply(Reply::text("We open at nine. Every day of the week."));
    let call = dial(&w).await;
    say_hello_and_hear(&call, "t1-s0").await;
    hear_mark(&call, "t1-s1").await;
    call.send_raw_text("this is not JSON").await.expect("sent");
    w.server.wait_turns(1).await;
    let during = scrape(&w.server).await;
    assert!(
        value(&during, "pronto_active_calls", &[OTHER]) >= 1.0,
        "the call is active"
    );
    call.hang_up().await.expect("report");
    calls_over(&w.server).await;

    // A call whose answer the caller talks over.
    w.audio.set_ms_per_char(60);
    w.audio.push_transcript("Tell me about your prices.");
    w.audio.push_transcript("Wait, are you open today?");
    w.llm.fake().push_reply(Reply::text(
        "Our basic plan costs ten euros. The premium plan costs twenty euros and includes support. There is also a family plan, which costs thirty euros and covers up to five people.",
    ));
    w.llm
        .fake()
        .set_latency(Duration::ZERO, Duration::from_millis(120));
    w.llm.fake().push_reply(Reply::text("Yes, until six."));
    let call = dial(&w).await;
    say_hello_and_hear(&call, "t1-s0").await;
    call.say(&fixture("hello.wav"));
    expect_event(&call, "clear", |e| matches!(e, Event::ClearReceived { .. })).await;
    call.wait_said().await.expect("said");
    hear_mark(&call, "t2-s0").await;
    call.hang_up().await.expect("report");
    calls_over(&w.server).await;

    // A webhook with a bad signature.
    let (status, _) = w
        .server
        .post_form(
            "/voice",
            &[(
                "CallSid".into(),
                "CA0123456789abcdef0123456789abcdef".into(),
            )],
            Some("bad"),
        )
        .await;
    assert_eq!(status, 403);

    let after = scrape(&w.server).await;
    check_families(&after, FAMILIES.into_iter());
    let grew = |name: &str, labels: &[(&str, &str)]| grew(&before, &after, name, labels);
    // Exactly these two calls, by their direction.
    assert_eq!(grew("pronto_calls_started_total", &[OTHER]), 2.0);
    assert_eq!(
        grew(
            "pronto_calls_ended_total",
            &[OTHER, ("end_reason", "caller_hung_up")]
        ),
        2.0
    );
    assert_eq!(grew("pronto_calls_ended_total", &[OTHER]), 2.0);
    assert_eq!(grew("pronto_call_duration_seconds_count", &[OTHER]), 2.0);
    assert_eq!(value(&after, "pronto_active_calls", &[OTHER]), 0.0);
    // The rest has no direction: other tests may add to it meanwhile.
    assert!(grew("pronto_turns_total", &[("result", "answered")]) >= 3.0);
    assert!(grew("pronto_turns_total", &[("result", "interrupted")]) >= 1.0);
    assert!(grew("pronto_barge_ins_total", &[]) >= 1.0);
    assert!(grew("pronto_turn_response_seconds_count", &[]) >= 3.0);
    assert!(grew("pronto_turn_overhead_seconds_count", &[]) >= 2.0);
    for stage in [
        "turn_decision",
        "stt",
        "llm_first_token",
        "first_sentence",
        "tts_first_byte",
    ] {
        assert!(
            grew("pronto_turn_stage_seconds_count", &[("stage", stage)]) >= 3.0,
            "{stage}"
        );
    }
    assert!(grew("pronto_mark_roundtrip_seconds_count", &[]) >= 4.0);
    assert!(grew("pronto_twilio_bad_messages_total", &[]) >= 1.0);
    assert!(
        grew(
            "pronto_twilio_webhooks_total",
            &[("endpoint", "voice"), ("result", "ok")]
        ) >= 2.0
    );
    assert!(
        grew(
            "pronto_twilio_webhooks_total",
            &[("endpoint", "voice"), ("result", "bad_signature")]
        ) >= 1.0
    );
    for (provider, kind, at_least) in [
        ("openai-stt", "stt", 3.0),
        ("openai-chat", "llm", 2.0),
        ("openai-tts", "tts", 4.0),
    ] {
        let labels = [("provider", provider), ("kind", kind), ("result", "ok")];
        assert!(
            grew("pronto_provider_requests_total", &labels) >= at_least,
            "{provider} {kind}"
        );
    }
}

#[tokio::test]
async fn metrics_need_the_token_unless_public() {
    let server = TestServer::start().await;
    let url = format!("{}/metrics", server.url);
    let anonymous = server.http().get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), 401);
    let wrong = server
        .http()
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    check_families(&scrape(&server).await, fixed_families());

    let public = TestServer::with(&[], Some("[metrics]\npublic = true\n")).await;
    let response = public
        .http()
        .get(format!("{}/metrics", public.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(WAIT, response.text())
        .await
        .expect("in time")
        .expect("body");
    assert!(text.contains("# TYPE pronto_calls_started_total counter"));
    // The API stays closed.
    let (status, _) = public.get_json("/api/status", None).await;
    assert_eq!(status, 401);
}
