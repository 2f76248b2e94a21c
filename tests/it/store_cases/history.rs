//! Listing, paging, filtering, erasing, and what is known of a caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pronto::model::EndReason;
use pronto::store::{BadCursor, CallFilter, Erased, MAX_PAGE, Store};

use super::{TestDb, event, list_sids, new_call, secs, t0, turn};

/// 25 calls, three to a second, so some share `started_at` and the SID
/// breaks the tie. Returns the SIDs newest first (the listing order).
async fn twenty_five(store: &Store) -> Vec<String> {
    let mut calls = Vec::new();
    for i in 0..25i64 {
        // Written out of order: the store sorts, not the insertion.
        let i = (i * 7) % 25;
        let sid = format!("CA{:02}", (i * 11) % 25);
        let at = t0() + secs(i / 3);
        store
            .call_started(&new_call(&sid, "+14155550100", at, "r1"))
            .await
            .unwrap();
        calls.push((at, sid));
    }
    calls.sort();
    calls.reverse();
    calls.into_iter().map(|(_, sid)| sid).collect()
}

pub async fn paging_visits_each_call_once_in_order(db: TestDb) {
    let store = db.open().await;
    let expected = twenty_five(&store).await;
    let filter = CallFilter::default();
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = store
            .list_calls(&filter, 10, before.as_deref())
            .await
            .unwrap()
            .unwrap();
        sizes.push(page.calls.len());
        seen.extend(page.calls.into_iter().map(|c| c.call_sid));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(seen, expected);

    // A call started since page one does not shift the later pages.
    let first = store.list_calls(&filter, 10, None).await.unwrap().unwrap();
    store
        .call_started(&new_call("CAnew", "+14155550100", t0() + secs(60), "r1"))
        .await
        .unwrap();
    let second = store
        .list_calls(&filter, 10, first.next.as_deref())
        .await
        .unwrap()
        .unwrap();
    let sids: Vec<_> = second.calls.iter().map(|c| c.call_sid.clone()).collect();
    assert_eq!(sids, expected[10..20]);
}

pub async fn page_limit_is_clamped(db: TestDb) {
    let store = db.open().await;
    let expected = twenty_five(&store).await;
    let filter = CallFilter::default();
    let one = store.list_calls(&filter, 0, None).await.unwrap().unwrap();
    assert_eq!(one.calls.len(), 1, "0 is read as 1");
    assert!(one.next.is_some());
    let all = store
        .list_calls(&filter, u32::MAX, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.calls.len(), 25);
    assert_eq!(all.next, None, "the last page has no next");
    let exact = store.list_calls(&filter, 25, None).await.unwrap().unwrap();
    assert_eq!(exact.next, None, "a full last page has no next either");
    assert_eq!(MAX_PAGE, 200);
    assert_eq!(list_sids(&store, &filter).await, expected);
}

pub async fn every_filter(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let a = "+14155550111";
    let b = "+442071234567";
    // (sid, from, to, seconds after t0, final status)
    let calls = [
        ("CAf1", a, "+3901", 0, "completed"),
        ("CAf2", b, "+3901", 10, "busy"),
        ("CAf3", a, "+3902", 20, "completed"),
        ("CAf4", a, "+3901", 30, "no-answer"),
        ("CAf5", b, "+3902", 40, "completed"),
    ];
    for (sid, from, to, s, status) in calls {
        let mut call = new_call(sid, from, t + secs(s), "r1");
        call.call.to = to.into();
        store.call_started(&call).await.unwrap();
        store
            .status_callback(sid, 1, status, None, t + secs(s + 5))
            .await
            .unwrap();
    }
    // Words to search for (any case; `%` and `_` are literal), and end reasons.
    store
        .add_turn(
            "CAf2",
            &turn(1, Some("Opening HOURS please"), "We open at 9."),
        )
        .await
        .unwrap();
    store
        .add_turn("CAf4", &turn(1, Some("100% sure"), "Hours: 9 to 5."))
        .await
        .unwrap();
    store
        .call_ended("CAf2", t + secs(15), EndReason::OperatorHungUp)
        .await
        .unwrap();
    store
        .call_ended("CAf5", t + secs(45), EndReason::CallerHungUp)
        .await
        .unwrap();
    let cases = [
        (
            CallFilter::default(),
            vec!["CAf5", "CAf4", "CAf3", "CAf2", "CAf1"],
        ),
        (
            CallFilter {
                from: Some(a.into()),
                ..Default::default()
            },
            vec!["CAf4", "CAf3", "CAf1"],
        ),
        (
            CallFilter {
                from: Some("+*******0111".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            CallFilter {
                from: Some("0111".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            CallFilter {
                to: Some("+3902".into()),
                ..Default::default()
            },
            vec!["CAf5", "CAf3"],
        ),
        (
            CallFilter {
                status: Some("completed".into()),
                ..Default::default()
            },
            vec!["CAf5", "CAf3", "CAf1"],
        ),
        (
            // since is inclusive, until exclusive.
            CallFilter {
                since: Some(t + secs(10)),
                until: Some(t + secs(30)),
                ..Default::default()
            },
            vec!["CAf3", "CAf2"],
        ),
        (
            CallFilter {
                since: Some(t + secs(41)),
                ..Default::default()
            },
            vec![],
        ),
        (
            CallFilter {
                until: Some(t + secs(1)),
                ..Default::default()
            },
            vec!["CAf1"],
        ),
        (
            CallFilter {
                from: Some(a.into()),
                to: Some("+3901".into()),
                status: Some("completed".into()),
                since: Some(t),
                until: Some(t + secs(60)),
                ..Default::default()
            },
            vec!["CAf1"],
        ),
        (
            CallFilter {
                text: Some("hours".into()),
                ..Default::default()
            },
            vec!["CAf4", "CAf2"],
        ),
        (
            CallFilter {
                text: Some("0% s".into()),
                ..Default::default()
            },
            vec!["CAf4"],
        ),
        (
            CallFilter {
                text: Some("_".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            CallFilter {
                end_reason: Some("operator_hung_up".into()),
                ..Default::default()
            },
            vec!["CAf2"],
        ),
        (
            CallFilter {
                end_reason: Some("caller_hung_up".into()),
                text: Some("HOURS".into()),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(list_sids(&store, &filter).await, expected, "{filter:?}");
    }

    // Filters hold across pages.
    let from_a = CallFilter {
        from: Some(a.into()),
        ..Default::default()
    };
    let p1 = store.list_calls(&from_a, 2, None).await.unwrap().unwrap();
    let p2 = store
        .list_calls(&from_a, 2, p1.next.as_deref())
        .await
        .unwrap()
        .unwrap();
    let sids: Vec<_> = p1
        .calls
        .iter()
        .chain(&p2.calls)
        .map(|c| c.call_sid.as_str())
        .collect();
    assert_eq!(sids, ["CAf4", "CAf3", "CAf1"]);
    assert_eq!(p2.next, None);
}

pub async fn bad_cursors_are_refused(db: TestDb) {
    let store = db.open().await;
    twenty_five(&store).await;
    let filter = CallFilter::default();
    let page = store.list_calls(&filter, 3, None).await.unwrap().unwrap();
    let good = page.next.expect("more pages");
    let mut bad: Vec<String> = vec![
        String::new(),
        "garbage!".into(),
        "%00%ff".into(),
        "' OR 1=1 --".into(),
        URL_SAFE_NO_PAD.encode("junk"),
        URL_SAFE_NO_PAD.encode("not-a-number:CA01."),
        URL_SAFE_NO_PAD.encode([0xde, 0xad, 0xbe, 0xef]),
        format!("{good}="),
        "A".repeat(10_000),
    ];
    bad.extend((1..good.len()).map(|n| good[..n].to_owned()));
    for cursor in &bad {
        let got = store.list_calls(&filter, 3, Some(cursor)).await.unwrap();
        assert_eq!(got, Err(BadCursor), "{cursor:?}");
    }
    assert!(
        store
            .list_calls(&filter, 3, Some(&good))
            .await
            .unwrap()
            .is_ok()
    );
}

pub async fn delete_erases_everything_of_the_call(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let caller = "+14155550222";
    for sid in ["CAgone", "CAkept"] {
        store
            .call_started(&new_call(sid, caller, t, "r1"))
            .await
            .unwrap();
        store.add_turn(sid, &turn(0, None, "Hello")).await.unwrap();
        store
            .add_turn(sid, &turn(1, Some("Hi"), "Yes?"))
            .await
            .unwrap();
        store.add_event(sid, &event(t, "dtmf", 5)).await.unwrap();
        store
            .status_callback(sid, 0, "completed", Some(3), t)
            .await
            .unwrap();
        store
            .save_summary(sid, caller, &format!("summary of {sid}"), t)
            .await
            .unwrap();
        store
            .save_outbound_plan(sid, Some("Hi, it's the clinic."), None)
            .await
            .unwrap();
    }
    assert_eq!(
        store.outbound_plan("CAkept").await.unwrap(),
        Some((Some("Hi, it's the clinic.".to_string()), None))
    );
    let erased = store.erase_call("CAgone", t).await.unwrap();
    assert_eq!(
        erased,
        Erased {
            call: true,
            turns: 2,
            // The DTMF, and the status callback's own event.
            events: 2,
            status_callbacks: 1,
            summaries: 1,
            outbound_plan: true,
        },
        "the answer says what went"
    );
    assert_eq!(store.outbound_plan("CAgone").await.unwrap(), None);
    assert_eq!(store.get_call("CAgone").await.unwrap(), None);
    for table in [
        "turns",
        "events",
        "status_callbacks",
        "summaries",
        "outbound_plans",
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE call_sid = 'CAgone'");
        assert_eq!(db.count(&sql).await, 0, "{table}");
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE call_sid = 'CAkept'");
        assert!(db.count(&sql).await > 0, "{table} of the other call kept");
    }
    assert_eq!(
        store.recent_summaries(caller, 5).await.unwrap(),
        ["summary of CAkept"]
    );
    assert_eq!(list_sids(&store, &CallFilter::default()).await, ["CAkept"]);
    assert!(
        !store.erase_call("CAgone", t).await.unwrap().found(),
        "already gone"
    );
}

/// An erase is final: whatever arrives for the call afterwards (the rest of
/// a live call, a late status callback, its caller-memory summary, its
/// webhook repeated) writes nothing and fails nothing.
pub async fn an_erased_call_stays_erased(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let (sid, caller) = ("CAerased", "+14155550223");
    store
        .call_started(&new_call(sid, caller, t, "r1"))
        .await
        .unwrap();
    store.add_turn(sid, &turn(0, None, "Hello")).await.unwrap();
    assert!(!store.call_is_over(sid).await.unwrap(), "in progress");
    assert!(store.erase_call(sid, t).await.unwrap().call);
    assert!(store.call_is_over(sid).await.unwrap(), "erased");
    assert!(store.is_erased(sid).await.unwrap());
    assert!(!store.is_erased("CAother").await.unwrap());

    store.call_answered(sid, t, "default").await.unwrap();
    store
        .add_turn(sid, &turn(1, Some("Hi"), "Yes?"))
        .await
        .unwrap();
    store.add_event(sid, &event(t, "dtmf", 5)).await.unwrap();
    assert!(
        !store
            .status_callback(sid, 3, "completed", Some(42), t + secs(60))
            .await
            .unwrap(),
        "a late status callback is not kept"
    );
    store
        .call_ended(sid, t + secs(60), EndReason::CallerHungUp)
        .await
        .unwrap();
    store
        .save_summary(sid, caller, "Anna called about Friday.", t + secs(61))
        .await
        .unwrap();
    store
        .call_started(&new_call(sid, caller, t, "r1"))
        .await
        .unwrap();

    assert_eq!(store.get_call(sid).await.unwrap(), None);
    assert!(list_sids(&store, &CallFilter::default()).await.is_empty());
    assert!(store.recent_summaries(caller, 5).await.unwrap().is_empty());
    for table in ["turns", "events", "status_callbacks", "summaries"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE call_sid = '{sid}'");
        assert_eq!(db.count(&sql).await, 0, "{table}");
    }
    // A call that ended is over too; one never seen is not.
    let ended = "CAended";
    store
        .call_started(&new_call(ended, caller, t, "r1"))
        .await
        .unwrap();
    store
        .call_ended(ended, t + secs(5), EndReason::NoStream)
        .await
        .unwrap();
    assert!(store.call_is_over(ended).await.unwrap());
    assert!(!store.call_is_over("CAnever").await.unwrap());
    // An update for a call never seen is still an error.
    assert!(store.call_answered("CAnever", t, "default").await.is_err());
}

pub async fn summaries_and_call_counts(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let x = "+14155550333";
    for (i, sid) in ["CAs0", "CAs1", "CAs2"].into_iter().enumerate() {
        let at = t + secs(10 * i as i64);
        store
            .call_started(&new_call(sid, x, at, "r1"))
            .await
            .unwrap();
        store
            .save_summary(sid, x, &format!("call {i}"), at + secs(5))
            .await
            .unwrap();
    }
    store
        .call_started(&new_call("CAother", "+14155550444", t + secs(20), "r1"))
        .await
        .unwrap();
    assert_eq!(store.calls_from_since(x, t).await.unwrap(), 3);
    assert_eq!(
        store.calls_from_since(x, t + secs(10)).await.unwrap(),
        2,
        "inclusive"
    );
    assert_eq!(store.calls_from_since(x, t + secs(21)).await.unwrap(), 0);
    assert_eq!(store.calls_from_since("+14155550444", t).await.unwrap(), 1);
    assert_eq!(store.calls_from_since("+*******0333", t).await.unwrap(), 0);

    assert_eq!(
        store.recent_summaries(x, 2).await.unwrap(),
        ["call 2", "call 1"]
    );
    assert_eq!(
        store.recent_summaries(x, 10).await.unwrap(),
        ["call 2", "call 1", "call 0"]
    );
    assert!(store.recent_summaries(x, 0).await.unwrap().is_empty());
    assert!(
        store
            .recent_summaries("+10000000000", 3)
            .await
            .unwrap()
            .is_empty()
    );
    // Saved again for the same call: replaced, and now the newest.
    store
        .save_summary("CAs0", x, "call 0, revised", t + secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.recent_summaries(x, 10).await.unwrap(),
        ["call 0, revised", "call 2", "call 1"]
    );
}
