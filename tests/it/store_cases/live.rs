//! Heartbeats, live calls, calls abandoned by dead replicas, and many calls
//! written at once.

use chrono::Utc;
use pronto::model::EndReason;
use pronto::store::{CallFilter, LIVE_WINDOW, Store};

use super::{TestDb, event, new_call, secs, t0, turn};

/// Replicas and calls at `now = t0 + 100 s`:
/// - `fresh` beat 5 s ago, `edge` exactly [`LIVE_WINDOW`] ago (still fresh),
///   `stale` 60 s ago, `me` (this replica) 1 s ago, `ghost` never;
/// - one call on each, plus one ended call on `fresh`, and two rows made
///   only by a status callback: one old, one a second old.
async fn replicas_and_calls(store: &Store) -> chrono::DateTime<Utc> {
    let now = t0() + secs(100);
    for (replica, ago) in [
        ("fresh", secs(5)),
        ("edge", LIVE_WINDOW),
        ("stale", secs(60)),
    ] {
        store.heartbeat(replica, now - ago).await.unwrap();
    }
    store.heartbeat("me", now - secs(30)).await.unwrap();
    store.heartbeat("me", now - secs(1)).await.unwrap();
    let calls = [
        ("CAfresh", "fresh", 10),
        ("CAedge", "edge", 20),
        ("CAstale", "stale", 30),
        ("CAmine", "me", 40),
        ("CAghost", "ghost", 50),
        ("CAdone", "fresh", 60),
    ];
    for (sid, replica, s) in calls {
        let call = new_call(sid, "+14155550555", t0() + secs(s), replica);
        store.call_started(&call).await.unwrap();
    }
    store
        .call_ended("CAdone", now - secs(2), EndReason::AgentHungUp)
        .await
        .unwrap();
    store
        .status_callback("CAorphan", 0, "ringing", None, now - secs(60))
        .await
        .unwrap();
    store
        .status_callback("CAjust", 0, "ringing", None, now - secs(1))
        .await
        .unwrap();
    now
}

fn sids(calls: &[pronto::store::CallRow]) -> Vec<&str> {
    calls.iter().map(|c| c.call_sid.as_str()).collect()
}

pub async fn live_calls_follow_heartbeats(db: TestDb) {
    let store = db.open().await;
    let now = replicas_and_calls(&store).await;
    let live = store.live_calls(now).await.unwrap();
    assert_eq!(sids(&live), ["CAmine", "CAedge", "CAfresh"]);
    assert!(live.iter().all(|c| c.live));
    // A heartbeat from a clock slightly ahead still counts.
    assert_eq!(
        sids(&store.live_calls(now - secs(3)).await.unwrap()).len(),
        3
    );
    // The edge replica goes stale a microsecond later; the rest 10 s on.
    let later = now + chrono::TimeDelta::microseconds(1);
    assert_eq!(
        sids(&store.live_calls(later).await.unwrap()),
        ["CAmine", "CAfresh"]
    );
    assert!(store.live_calls(now + secs(20)).await.unwrap().is_empty());

    // `live` in lists and in a call's detail is the same rule, against the
    // real clock: a heartbeat now makes `fresh`'s call live.
    store.heartbeat("fresh", Utc::now()).await.unwrap();
    let page = store
        .list_calls(&CallFilter::default(), 50, None)
        .await
        .unwrap()
        .unwrap();
    let live_now: Vec<_> = page
        .calls
        .iter()
        .filter(|c| c.live)
        .map(|c| &c.call_sid)
        .collect();
    assert_eq!(live_now, ["CAfresh"]);
    assert!(store.get_call("CAfresh").await.unwrap().unwrap().call.live);
    assert!(
        !store.get_call("CAdone").await.unwrap().unwrap().call.live,
        "ended"
    );
}

pub async fn end_abandoned_ends_dead_and_own_calls(db: TestDb) {
    let store = db.open().await;
    let now = replicas_and_calls(&store).await;
    let ended = store.end_abandoned(now, "me").await.unwrap();
    // stale, ghost (no heartbeat at all), mine (restarted), the old orphan.
    assert_eq!(ended, 4);
    for sid in ["CAstale", "CAghost", "CAmine", "CAorphan"] {
        let call = store.get_call(sid).await.unwrap().unwrap().call;
        assert_eq!(
            call.end_reason.as_ref().map(|s| s.as_str()),
            Some("abnormal"),
            "{sid}"
        );
        assert_eq!(call.ended_at, Some(now), "{sid}");
        assert!(!call.live);
    }
    for sid in ["CAfresh", "CAedge", "CAjust"] {
        let call = store.get_call(sid).await.unwrap().unwrap().call;
        assert_eq!(call.ended_at, None, "{sid} spared");
    }
    let done = store.get_call("CAdone").await.unwrap().unwrap().call;
    assert_eq!(
        done.end_reason.as_ref().map(|s| s.as_str()),
        Some("agent_hung_up"),
        "ended calls untouched"
    );
    assert_eq!(
        sids(&store.live_calls(now).await.unwrap()),
        ["CAedge", "CAfresh"]
    );
    assert_eq!(
        store.end_abandoned(now, "me").await.unwrap(),
        0,
        "nothing left to end"
    );

    // The session of a call wrongly given up on has the last word.
    store
        .call_ended("CAstale", now + secs(5), EndReason::CallerHungUp)
        .await
        .unwrap();
    let call = store.get_call("CAstale").await.unwrap().unwrap().call;
    assert_eq!(
        call.end_reason.as_ref().map(|s| s.as_str()),
        Some("caller_hung_up")
    );
    assert_eq!(call.ended_at, Some(now + secs(5)));
    // But no other reason is overwritten.
    store
        .call_ended("CAdone", now + secs(5), EndReason::Shutdown)
        .await
        .unwrap();
    let done = store.get_call("CAdone").await.unwrap().unwrap().call;
    assert_eq!(
        done.end_reason.as_ref().map(|s| s.as_str()),
        Some("agent_hung_up")
    );
    assert_eq!(done.ended_at, Some(now - secs(2)));
}

pub async fn concurrent_writers_lose_nothing(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let sid = format!("CAc{i:02}");
                let call = new_call(&sid, "+14155550666", t + secs(i), "r1");
                store.call_started(&call).await.unwrap();
                for n in 0..5u32 {
                    store
                        .add_turn(&sid, &turn(n, Some("hello"), "hi"))
                        .await
                        .unwrap();
                    let at = t + secs(i) + secs(i64::from(n));
                    store.add_event(&sid, &event(at, "dtmf", n)).await.unwrap();
                }
                // Transactions, not single statements, under the same contention.
                let end = t + secs(i) + secs(10);
                let status = |seq, status| store.status_callback(&sid, seq, status, None, end);
                assert!(status(0, "in-progress").await.unwrap());
                assert!(status(1, "completed").await.unwrap());
                assert!(!status(1, "completed").await.unwrap());
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let page = store
        .list_calls(&CallFilter::default(), 200, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.calls.len(), 50);
    assert!(page.calls.iter().all(|c| c.turns == 5));
    assert!(
        page.calls
            .iter()
            .all(|c| c.status.as_ref().map(|s| s.as_str()) == Some("completed"))
    );
    for i in 0..50 {
        let call = store
            .get_call(&format!("CAc{i:02}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(call.turns.len(), 5);
        assert_eq!(call.events.len(), 5 + 2, "5 events and 2 status callbacks");
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM turns").await, 250);
    assert_eq!(db.count("SELECT COUNT(*) FROM events").await, 350);
}
