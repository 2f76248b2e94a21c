//! Paging through a long history, and the API's answers to bad requests.

use pronto::sim::{SimConfig, voice_params};
use pronto::twilio::signature::compute;
use serde_json::Value;

use super::client::{api, api_until, assert_error, get, sids};
use crate::harness::{API_TOKEN, AUTH_TOKEN, PUBLIC, TestServer};

const HISTORY: usize = 25;
/// The caller the `from` filter looks for: every fifth call is theirs.
const REGULAR: &str = "+15551230001";

/// The i-th call's SID. Later calls get smaller SIDs, so a list in SID order
/// instead of time order would show.
fn history_sid(i: usize) -> String {
    format!("CA{:032x}", 0xffff_u128 - i as u128)
}

fn history_from(i: usize) -> String {
    if i.is_multiple_of(5) {
        REGULAR.to_string()
    } else {
        format!("+1555300{i:04}")
    }
}

/// Makes the history one call at a time with signed `/voice` webhooks only
/// (each writes its call row), oldest first.
async fn make_history(server: &TestServer) {
    for i in 0..HISTORY {
        let mut cfg = SimConfig::new("http://unused");
        cfg.from = history_from(i);
        let params = voice_params(&cfg, &history_sid(i), "AC0123456789abcdef0123456789abcdef");
        let signature = compute(AUTH_TOKEN, &format!("{PUBLIC}/voice"), &params);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let resp = server
            .http()
            .post(format!("{}/voice", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .expect("POST /voice");
        assert_eq!(resp.status(), 200);
        let twiml = resp.text().await.expect("TwiML");
        assert!(twiml.contains("<Stream"), "call {i} not answered: {twiml}");
    }
}

#[tokio::test]
async fn the_history_pages_newest_first_and_refuses_bad_requests() {
    let server = TestServer::with(&[("PRONTO_SERVER_MAX_CONCURRENT_CALLS", "100")], None).await;
    let base = server.url.as_str();
    make_history(&server).await;
    let newest_first: Vec<String> = (0..HISTORY).rev().map(history_sid).collect();
    let all = api_until(base, "/api/calls?limit=200", "all calls stored", |l| {
        l["calls"].as_array().is_some_and(|c| c.len() == HISTORY)
    })
    .await;
    assert_eq!(sids(&all), newest_first, "{all}");

    // Following `next` visits every call once, newest first, and stops.
    for limit in [10, 5] {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut path = format!("/api/calls?limit={limit}");
        loop {
            let page = api(base, &path).await;
            pages += 1;
            let page_sids = sids(&page);
            assert!(!page_sids.is_empty() && page_sids.len() <= limit, "{page}");
            seen.extend(page_sids);
            match page["next"].as_str() {
                Some(next) => path = format!("/api/calls?limit={limit}&before={next}"),
                None => break,
            }
            assert!(pages <= HISTORY, "paging does not end");
        }
        assert_eq!(seen, newest_first, "limit={limit}");
        assert_eq!(pages, HISTORY.div_ceil(limit), "limit={limit}");
    }

    // Bad paging parameters: 400 with a JSON error.
    for query in [
        "before=garbage",
        "limit=0",
        "limit=500",
        "limit=ten",
        "limit=-1",
        "since=yesterday",
        "from=5551230001x",
    ] {
        let (status, body) = get(base, &format!("/api/calls?{query}"), Some(API_TOKEN)).await;
        assert_error(status, &body, 400, query);
    }

    // Filters.
    let regulars: Vec<String> = (0..HISTORY)
        .rev()
        .filter(|&i| history_from(i) == REGULAR)
        .map(history_sid)
        .collect();
    let page = api(base, "/api/calls?from=%2B15551230001").await;
    assert_eq!(sids(&page), regulars, "{page}");
    assert!(
        page["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .all(|c| c["from"] == "+*******0001"),
        "numbers are masked in lists: {page}"
    );
    // An unencoded `+` arrives as a space; it means the same number.
    let page = api(base, "/api/calls?from=+15551230001").await;
    assert_eq!(sids(&page), regulars, "{page}");
    let page = api(base, "/api/calls?from=%2B15559999999").await;
    assert_eq!(sids(&page), Vec::<String>::new(), "{page}");

    let future = (chrono::Utc::now() + chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let page = api(base, &format!("/api/calls?since={future}")).await;
    assert_eq!(sids(&page), Vec::<String>::new(), "{page}");
    assert!(page["next"].is_null(), "{page}");

    // `since` includes its instant and `until` excludes it: split at one
    // call's start, the two windows hold every call exactly once.
    let split = all["calls"][9]["started_at"].as_str().expect("started_at");
    let newer = api(base, &format!("/api/calls?limit=200&since={split}")).await;
    let older = api(base, &format!("/api/calls?limit=200&until={split}")).await;
    assert_eq!(sids(&newer), newest_first[..10], "{newer}");
    assert_eq!(sids(&older), newest_first[10..], "{older}");

    // One call.
    let sid = history_sid(0);
    let call = api(base, &format!("/api/calls/{sid}")).await;
    assert_eq!(call["call_sid"], sid.as_str(), "{call}");
    assert_eq!(call["from_number"], REGULAR, "{call}");
    assert_eq!(call["turns"], Value::Array(vec![]), "{call}");
    let unknown = format!("CA{}", "0".repeat(32));
    let (status, body) = get(base, &format!("/api/calls/{unknown}"), Some(API_TOKEN)).await;
    assert_error(status, &body, 404, "unknown SID");
    for bad in [
        "CA123",
        "XX0123456789abcdef0123456789abcdef",
        "CA0123456789abcdef0123456789abcdeg",
    ] {
        let (status, body) = get(base, &format!("/api/calls/{bad}"), Some(API_TOKEN)).await;
        assert_error(status, &body, 400, bad);
    }

    // Without the bearer token (or with a wrong one), nothing is shown.
    for path in [
        "/api/calls".to_string(),
        "/api/calls?limit=10".to_string(),
        "/api/calls?before=garbage".to_string(),
        format!("/api/calls/{sid}"),
        format!("/api/calls/{unknown}"),
        "/api/calls/CA123".to_string(),
    ] {
        for bearer in [None, Some("not-the-token")] {
            let (status, body) = get(base, &path, bearer).await;
            assert_error(status, &body, 401, &format!("{path} with {bearer:?}"));
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(1),
                "{path}: only the error: {body}"
            );
        }
    }
}
