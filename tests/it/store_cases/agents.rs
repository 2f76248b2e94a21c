//! The agent of each call (migration 0007): kept in the record, a filter of
//! the history, and `default` for every call from before agents.

use pronto::store::CallFilter;

use super::{TestDb, list_sids, new_call, secs, t0, turn};

pub async fn the_record_keeps_its_agent(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let mut call = new_call("CAitalian", "+390612345678", t, "r1");
    call.call.agent = "pronto-it".into();
    store.call_started(&call).await.unwrap();
    let got = store.get_call("CAitalian").await.unwrap().expect("stored");
    assert_eq!(got.call.agent, "pronto-it");
    let page = store
        .list_calls(&CallFilter::default(), 10, None)
        .await
        .unwrap()
        .expect("a page");
    assert_eq!(page.calls[0].agent, "pronto-it", "in the list too");

    // A status callback before the webhook makes a row with no agent yet:
    // it is the default's until the webhook says whose the call is.
    assert!(
        store
            .status_callback("CAearly", 1, "ringing", None, t + secs(1))
            .await
            .unwrap()
    );
    let early = store
        .get_call("CAearly")
        .await
        .unwrap()
        .expect("minimal row");
    assert_eq!(early.call.agent, "default");
    let mut call = new_call("CAearly", "+14155550004", t, "r1");
    call.call.agent = "sales".into();
    store.call_started(&call).await.unwrap();
    let got = store.get_call("CAearly").await.unwrap().expect("stored");
    assert_eq!(got.call.agent, "sales", "the webhook's agent");
    // A later callback leaves it.
    assert!(
        store
            .status_callback("CAearly", 2, "in-progress", None, t + secs(2))
            .await
            .unwrap()
    );
    let got = store.get_call("CAearly").await.unwrap().expect("stored");
    assert_eq!(got.call.agent, "sales");
}

pub async fn calls_filter_by_agent(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let a = "+14155550111";
    // (sid, from, agent, seconds after t0)
    for (sid, from, agent, s) in [
        ("CAg1", a, "sales", 0),
        ("CAg2", "+390612345678", "pronto-it", 10),
        ("CAg3", a, "default", 20),
        ("CAg4", "+442071234567", "sales", 30),
        ("CAg5", a, "sales", 40),
    ] {
        let mut call = new_call(sid, from, t + secs(s), "r1");
        call.call.agent = agent.into();
        store.call_started(&call).await.unwrap();
    }
    let by = |agent: &str| CallFilter {
        agent: Some(agent.into()),
        ..Default::default()
    };
    assert_eq!(
        list_sids(&store, &by("sales")).await,
        ["CAg5", "CAg4", "CAg1"]
    );
    assert_eq!(list_sids(&store, &by("pronto-it")).await, ["CAg2"]);
    assert_eq!(list_sids(&store, &by("default")).await, ["CAg3"]);
    assert!(list_sids(&store, &by("nobody")).await.is_empty());
    // Exactly the name: no prefix or pattern matching.
    assert!(list_sids(&store, &by("sale")).await.is_empty());
    assert!(list_sids(&store, &by("sales%")).await.is_empty());
    let sales_from_a = CallFilter {
        from: Some(a.into()),
        ..by("sales")
    };
    assert_eq!(list_sids(&store, &sales_from_a).await, ["CAg5", "CAg1"]);

    // The filter holds across pages.
    let mut sids = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_calls(&by("sales"), 1, cursor.as_deref())
            .await
            .unwrap()
            .expect("a good cursor");
        sids.extend(page.calls.into_iter().map(|c| c.call_sid));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sids, ["CAg5", "CAg4", "CAg1"]);
}

pub async fn a_call_from_before_agents_reads_as_default(db: TestDb) {
    // A database at schema version 6, as a Pronto from before agents left
    // it: migration 0007 taken back by hand, the call's row without the
    // column.
    let store = db.open().await;
    let mut call = new_call("CAolder", "+14155550123", t0(), "r1");
    call.call.agent = "sales".into();
    store.call_started(&call).await.unwrap();
    store
        .add_turn("CAolder", &turn(0, None, "Hello from before."))
        .await
        .unwrap();
    store.close().await;
    db.exec("DROP INDEX calls_by_agent").await;
    db.exec("ALTER TABLE calls DROP COLUMN agent").await;
    db.exec("DELETE FROM _sqlx_migrations WHERE version = 7")
        .await;
    assert_eq!(
        db.count("SELECT MAX(version) FROM _sqlx_migrations").await,
        6
    );

    // Opened by this Pronto: 0007 again.
    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), 7);
    let got = store.get_call("CAolder").await.unwrap().expect("kept");
    assert_eq!(got.call.agent, "default");
    assert_eq!(got.turns, vec![turn(0, None, "Hello from before.")]);
    let default = CallFilter {
        agent: Some("default".into()),
        ..Default::default()
    };
    assert_eq!(list_sids(&store, &default).await, ["CAolder"]);
    // And new calls record theirs beside it.
    let mut call = new_call("CAnewer", "+14155550123", t0() + secs(60), "r1");
    call.call.agent = "sales".into();
    store.call_started(&call).await.unwrap();
    let sales = CallFilter {
        agent: Some("sales".into()),
        ..Default::default()
    };
    assert_eq!(list_sids(&store, &sales).await, ["CAnewer"]);
}
