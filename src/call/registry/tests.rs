use super::*;
use crate::model::SessionState;
use chrono::Utc;

fn info(sid: &str) -> CallInfo {
    CallInfo {
        call_sid: sid.into(),
        from: "+14155551234".into(),
        to: "+18005550000".into(),
        direction: "inbound".into(),
        agent: "default".into(),
        started_at: Utc::now(),
    }
}

const TTL: Duration = Duration::from_secs(60);

#[test]
fn the_cap_counts_pending_and_live_calls() {
    let r = Registry::default();
    assert_eq!(r.reserve(info("CA1"), None, 2, TTL), Ok(()));
    assert_eq!(
        r.reserve(info("CA1"), None, 2, TTL),
        Ok(()),
        "a webhook retry is the same call"
    );
    assert_eq!(r.reserve(info("CA2"), None, 2, TTL), Ok(()));
    assert_eq!(r.reserve(info("CA3"), None, 2, TTL), Err(Busy));
    let (_tx, rx) = watch::channel(LiveState::default());
    let guard = r.attach(info("CA1"), rx, crate::call::desk::Desk::default().handle());
    assert_eq!((r.len(), r.live_count()), (2, 1));
    drop(guard);
    assert_eq!((r.len(), r.live_count()), (1, 0));
    assert_eq!(r.reserve(info("CA3"), None, 2, TTL), Ok(()));
}

#[test]
fn pending_calls_lapse_with_their_token() {
    let r = Registry::default();
    r.reserve(info("CA1"), None, 1, Duration::ZERO)
        .expect("room");
    assert_eq!(r.len(), 0);
    assert_eq!(r.reserve(info("CA2"), None, 1, TTL), Ok(()));
}

#[test]
fn snapshots_mask_numbers_and_show_live_state() {
    let r = Registry::default();
    let (tx, rx) = watch::channel(LiveState::default());
    let _guard = r.attach(info("CA9"), rx, crate::call::desk::Desk::default().handle());
    tx.send_modify(|s| {
        s.stream_sid = Some("MZ1".into());
        s.state = SessionState::Speaking;
        s.turns = 2;
    });
    let snap = r.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].from, "+*******1234");
    assert_eq!(snap[0].to, "+*******0000");
    assert_eq!(snap[0].live.stream_sid.as_deref(), Some("MZ1"));
    assert_eq!(
        (snap[0].live.state, snap[0].live.turns),
        (SessionState::Speaking, 2)
    );
    let json = serde_json::to_string(&snap).expect("serializes");
    assert!(!json.contains("4155551234"));
}

#[test]
fn status_callbacks_are_idempotent_and_order_independent() {
    let r = Registry::default();
    let (_tx, rx) = watch::channel(LiveState::default());
    let _guard = r.attach(info("CA1"), rx, crate::call::desk::Desk::default().handle());
    assert_eq!(
        r.apply_status("CA1", Some(2), "in-progress"),
        StatusOutcome::Applied
    );
    assert_eq!(
        r.apply_status("CA1", Some(1), "ringing"),
        StatusOutcome::Stale
    );
    assert_eq!(
        r.apply_status("CA1", Some(2), "in-progress"),
        StatusOutcome::Duplicate
    );
    assert_eq!(
        r.snapshot()[0].call_status.as_ref().map(|s| s.as_str()),
        Some("in-progress")
    );
    assert_eq!(
        r.apply_status("CA1", Some(3), "completed"),
        StatusOutcome::Applied
    );
    assert_eq!(
        r.snapshot()[0].call_status.as_ref().map(|s| s.as_str()),
        Some("completed"),
        "live until the stream ends"
    );
    assert_eq!(
        r.apply_status("CA404", Some(0), "ringing"),
        StatusOutcome::Unknown
    );
}

#[test]
fn a_call_that_ends_before_its_stream_leaves() {
    let r = Registry::default();
    r.reserve(info("CA1"), None, 5, TTL).expect("room");
    assert_eq!(
        r.apply_status("CA1", Some(0), "completed"),
        StatusOutcome::Applied
    );
    assert!(r.is_empty());
}

#[test]
fn a_replaced_stream_does_not_remove_its_successor() {
    let r = Registry::default();
    let (_a, rx_a) = watch::channel(LiveState::default());
    let (_b, rx_b) = watch::channel(LiveState::default());
    let first = r.attach(
        info("CA1"),
        rx_a,
        crate::call::desk::Desk::default().handle(),
    );
    let _second = r.attach(
        info("CA1"),
        rx_b,
        crate::call::desk::Desk::default().handle(),
    );
    drop(first);
    assert_eq!(r.live_count(), 1);
}

#[tokio::test]
async fn the_drain_ends_when_the_last_live_call_does() {
    let r = Registry::default();
    let (_tx, rx) = watch::channel(LiveState::default());
    let first = r.attach(
        info("CA1"),
        rx.clone(),
        crate::call::desk::Desk::default().handle(),
    );
    let ended = r.clone();
    let drained = tokio::spawn(async move { ended.all_ended().await });
    // A call that connects during the drain is waited for too.
    let late = r.attach(info("CA2"), rx, crate::call::desk::Desk::default().handle());
    drop(first);
    tokio::task::yield_now().await;
    assert!(!drained.is_finished(), "CA2 is still live");
    drop(late);
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("the drain ends")
        .expect("task");
}

#[test]
fn each_call_whose_stream_never_started_is_reported_once() {
    let lapsed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&lapsed);
    let r = Registry::with_on_lapse(Arc::new(move |sid: &str| {
        seen.lock().expect("lock").push(sid.to_string());
    }));
    r.reserve(info("CA1"), None, 5, Duration::ZERO)
        .expect("room");
    r.reserve(info("CA2"), None, 5, TTL).expect("room");
    r.reserve(info("CA3"), None, 5, TTL).expect("room");
    let (_tx, rx) = watch::channel(LiveState::default());
    let _live = r.attach(info("CA3"), rx, crate::call::desk::Desk::default().handle());
    r.sweep();
    assert_eq!(r.held("CA1"), None);
    assert_eq!(r.held("CA2"), Some(Held::Pending));
    assert_eq!(r.held("CA3"), Some(Held::Live));
    r.abandon_pending();
    r.sweep();
    assert_eq!(*lapsed.lock().expect("lock"), ["CA1", "CA2"]);
    assert_eq!(r.held("CA3"), Some(Held::Live), "a live call stays");
}

#[test]
fn a_view_gets_only_the_calls_that_changed_and_those_that_left() {
    let r = Registry::default();
    let mut changes = r.changes();
    let mut seen = Seen::default();
    let (tx1, rx1) = watch::channel(LiveState::default());
    let (_tx2, rx2) = watch::channel(LiveState::default());
    let one = r.attach(
        info("CA1"),
        rx1,
        crate::call::desk::Desk::default().handle(),
    );
    let _two = r.attach(
        info("CA2"),
        rx2,
        crate::call::desk::Desk::default().handle(),
    );
    assert!(
        changes.has_changed().unwrap_or(false),
        "attaching is a change"
    );
    let sids =
        |calls: &[CallSnapshot]| calls.iter().map(|c| c.call_sid.clone()).collect::<Vec<_>>();
    let (calls, gone) = r.changed_since(&mut seen);
    assert_eq!((calls.len(), gone.len()), (2, 0));
    let (calls, gone) = r.changed_since(&mut seen);
    assert!(calls.is_empty() && gone.is_empty(), "nothing changed");
    tx1.send_modify(|s| s.version += 1);
    let (calls, _) = r.changed_since(&mut seen);
    assert_eq!(sids(&calls), ["CA1"]);
    assert_eq!(
        r.apply_status("CA2", Some(1), "in-progress"),
        StatusOutcome::Applied
    );
    let (calls, _) = r.changed_since(&mut seen);
    assert_eq!(sids(&calls), ["CA2"], "a status is a change");
    changes.borrow_and_update();
    drop(one);
    assert!(
        changes.has_changed().unwrap_or(false),
        "leaving is a change"
    );
    let (calls, gone) = r.changed_since(&mut seen);
    assert!(calls.is_empty());
    assert_eq!(gone, ["CA1"]);
}
