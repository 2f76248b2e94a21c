//! The schema, one call's life, turns, status callbacks and bad data.

use pronto::model::EndReason;
use pronto::store::CallFilter;

use super::{TestDb, event, new_call, secs, t0, turn};

pub async fn reopen_keeps_data_and_does_not_migrate_again(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), 7);
    store
        .call_started(&new_call("CAreopen", "+14155550001", t0(), "r1"))
        .await
        .unwrap();
    store
        .add_turn("CAreopen", &turn(0, None, "Hello"))
        .await
        .unwrap();
    store.close().await;
    let installed = "SELECT COUNT(*) FROM _sqlx_migrations";
    assert_eq!(db.count(installed).await, 7);
    let first_time = db
        .count("SELECT execution_time FROM _sqlx_migrations WHERE version = 1")
        .await;

    let store = db.open().await;
    assert_eq!(store.schema_version().await.unwrap(), 7);
    assert_eq!(
        db.count(installed).await,
        7,
        "a second open applied nothing"
    );
    let again = db
        .count("SELECT execution_time FROM _sqlx_migrations WHERE version = 1")
        .await;
    assert_eq!(first_time, again, "version 1 was not re-applied");
    let call = store.get_call("CAreopen").await.unwrap().expect("kept");
    assert_eq!(call.from_number, "+14155550001");
    assert_eq!(call.turns, vec![turn(0, None, "Hello")]);
}

pub async fn newer_schema_is_refused(db: TestDb) {
    db.open().await.close().await;
    // A migration this binary does not know, as a newer Pronto would leave.
    db.exec(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         SELECT 99, 'from the future', success, checksum, execution_time \
         FROM _sqlx_migrations WHERE version = 1",
    )
    .await;
    let Err(err) = pronto::store::Store::open(&db.url).await else {
        panic!("a schema newer than the binary must be refused");
    };
    let msg = err.to_string();
    assert!(msg.contains("version 99") && msg.contains("newer"), "{msg}");
}

pub async fn call_lifecycle(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    let mut call = new_call("CAlife", "+14155551234", t, "r1");
    call.call.to = "+390212345678".into();
    store.call_started(&call).await.unwrap();
    store.call_answered("CAlife", t + secs(1)).await.unwrap();
    store
        .add_turn("CAlife", &turn(0, None, "Hi, Pronto here."))
        .await
        .unwrap();
    store
        .add_event("CAlife", &event(t + secs(3), "dtmf", 1))
        .await
        .unwrap();
    let mut second = turn(1, Some("Opening hours?"), "Nine to five. Anything else?");
    second.agent_heard = "Nine to five.".into();
    second.interrupted = true;
    second.latency.interrupted = true;
    store.add_turn("CAlife", &second).await.unwrap();
    for (seq, status) in [(0, "initiated"), (1, "ringing"), (2, "in-progress")] {
        let at = t + secs(i64::from(seq));
        assert!(
            store
                .status_callback("CAlife", seq, status, None, at)
                .await
                .unwrap()
        );
    }

    let live = store.get_call("CAlife").await.unwrap().expect("stored");
    assert_eq!(
        live.call.status.as_ref().map(|s| s.as_str()),
        Some("in-progress")
    );
    assert_eq!(live.call.ended_at, None);

    assert!(
        store
            .status_callback("CAlife", 3, "completed", Some(42), t + secs(42))
            .await
            .unwrap()
    );
    store
        .call_ended("CAlife", t + secs(43), EndReason::CallerHungUp)
        .await
        .unwrap();

    let got = store.get_call("CAlife").await.unwrap().expect("stored");
    assert_eq!(got.from_number, "+14155551234");
    assert_eq!(got.to_number, "+390212345678");
    let row = &got.call;
    assert_eq!(row.call_sid, "CAlife");
    assert_eq!(row.direction, "inbound");
    assert_eq!(row.from, "+*******1234");
    assert_eq!(row.to, "+********5678");
    assert_eq!(row.started_at, t);
    assert_eq!(row.answered_at, Some(t + secs(1)));
    assert_eq!(
        row.ended_at,
        Some(t + secs(42)),
        "the first end recorded stands"
    );
    assert_eq!(row.status.as_ref().map(|s| s.as_str()), Some("completed"));
    assert_eq!(
        row.end_reason.as_ref().map(|s| s.as_str()),
        Some("caller_hung_up")
    );
    assert_eq!(row.duration_secs, Some(42));
    assert!(!row.live);
    assert_eq!(row.turns, 2);
    assert_eq!(got.turns, vec![turn(0, None, "Hi, Pronto here."), second]);
    let kinds: Vec<_> = got.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "status_callback",
            "status_callback",
            "status_callback",
            "dtmf",
            "status_callback"
        ],
        "by time"
    );
    assert_eq!(got.events[3], event(t + secs(3), "dtmf", 1));
    assert_eq!(
        got.events[4].detail,
        serde_json::json!({"sequence": 3, "status": "completed"})
    );

    let page = store
        .list_calls(&CallFilter::default(), 10, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.calls, vec![got.call.clone()]);
    assert_eq!(page.next, None);
    let text = serde_json::to_string(&page).unwrap();
    assert!(
        !text.contains("4155551234"),
        "lists carry masked numbers only"
    );
}

pub async fn writes_for_unknown_calls_fail_cleanly(db: TestDb) {
    let store = db.open().await;
    assert!(store.call_answered("CAnone", t0()).await.is_err());
    assert!(
        store
            .call_ended("CAnone", t0(), EndReason::Shutdown)
            .await
            .is_err()
    );
    assert!(store.add_turn("CAnone", &turn(0, None, "x")).await.is_err());
    assert!(
        store
            .add_event("CAnone", &event(t0(), "dtmf", 1))
            .await
            .is_err()
    );
    assert_eq!(store.get_call("CAnone").await.unwrap(), None);
    assert!(!store.erase_call("CAnone", t0()).await.unwrap().found());
    let all = store
        .list_calls(&CallFilter::default(), 10, None)
        .await
        .unwrap()
        .unwrap();
    assert!(all.calls.is_empty(), "no row was created by a failed write");
}

pub async fn turns_round_trip_exactly(db: TestDb) {
    let store = db.open().await;
    store
        .call_started(&new_call("CAturns", "+14155550002", t0(), "r1"))
        .await
        .unwrap();
    let mut sparse = turn(2, Some("[keypad: 1 2 #]"), "");
    sparse.agent_heard = String::new();
    sparse.latency.stt_ms = None;
    sparse.latency.llm_first_token_ms = None;
    sparse.latency.first_sentence_ms = None;
    sparse.latency.tts_first_byte_ms = None;
    sparse.latency.voice_to_voice_ms = None;
    sparse.latency.pipeline_overhead_ms = None;
    let mut extreme = turn(1, Some("Ciao, è aperto? «sì» 👍"), "Sì.\nA domani.");
    extreme.latency.utterance_ms = i64::MAX as u64;
    extreme.latency.endpoint_wait_ms = 0;
    extreme.latency.pipeline_overhead_ms = Some(-250);
    let greeting = turn(0, None, "Hello");
    for t in [&sparse, &extreme, &greeting] {
        store.add_turn("CAturns", t).await.unwrap();
    }
    let got = store.get_call("CAturns").await.unwrap().unwrap();
    assert_eq!(
        got.turns,
        vec![greeting.clone(), extreme.clone(), sparse.clone()]
    );

    // Re-recorded when the call ends: replaced, not added.
    let mut final_one = extreme.clone();
    final_one.agent_heard = "Sì.".into();
    final_one.interrupted = true;
    final_one.latency.interrupted = true;
    store.add_turn("CAturns", &final_one).await.unwrap();
    let got = store.get_call("CAturns").await.unwrap().unwrap();
    assert_eq!(got.turns, vec![greeting, final_one, sparse]);
    assert_eq!(got.call.turns, 3);

    let mut too_big = turn(3, None, "x");
    too_big.latency.stt_ms = Some(u64::MAX);
    assert!(
        store.add_turn("CAturns", &too_big).await.is_err(),
        "refused, not wrapped"
    );
}

pub async fn status_callbacks_shuffled_and_repeated(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    store
        .call_started(&new_call("CAcb", "+14155550003", t, "r1"))
        .await
        .unwrap();
    let statuses = [
        "initiated",
        "ringing",
        "answered",
        "in-progress",
        "completed",
    ];
    let order = [3u32, 0, 4, 1, 2];
    for (i, &seq) in order.iter().enumerate() {
        let status = statuses[seq as usize];
        let dur = (status == "completed").then_some(17);
        let at = t + secs(i64::from(seq));
        assert!(
            store
                .status_callback("CAcb", seq, status, dur, at)
                .await
                .unwrap()
        );
        if i == 1 {
            // 3 came, then 0: the older one does not win.
            let now = store.get_call("CAcb").await.unwrap().unwrap();
            assert_eq!(
                now.call.status.as_ref().map(|s| s.as_str()),
                Some("in-progress")
            );
        }
    }
    for &seq in order.iter().rev() {
        // Retries, even with another status or duration, change nothing.
        let dup = store
            .status_callback("CAcb", seq, "failed", Some(99), t + secs(500))
            .await
            .unwrap();
        assert!(!dup, "sequence {seq} seen already");
    }
    let got = store.get_call("CAcb").await.unwrap().unwrap();
    assert_eq!(
        got.call.status.as_ref().map(|s| s.as_str()),
        Some("completed")
    );
    assert_eq!(got.call.ended_at, Some(t + secs(4)));
    assert_eq!(got.call.duration_secs, Some(17));
    assert_eq!(got.call.end_reason, None, "only the session says why");
    let seqs: Vec<_> = got
        .events
        .iter()
        .map(|e| e.detail["sequence"].clone())
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4].map(serde_json::Value::from).to_vec());
    assert_eq!(db.count("SELECT COUNT(*) FROM status_callbacks").await, 5);
}

pub async fn status_callback_before_the_webhook(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    assert!(
        store
            .status_callback("CArace", 1, "ringing", None, t + secs(1))
            .await
            .unwrap()
    );
    let early = store
        .get_call("CArace")
        .await
        .unwrap()
        .expect("minimal row");
    assert_eq!(early.call.direction, "unknown");
    assert_eq!(
        early.call.status.as_ref().map(|s| s.as_str()),
        Some("ringing")
    );
    assert_eq!(early.call.ended_at, None);

    store
        .call_started(&new_call("CArace", "+14155550004", t, "r1"))
        .await
        .unwrap();
    let got = store.get_call("CArace").await.unwrap().unwrap();
    assert_eq!(got.call.direction, "inbound");
    assert_eq!(got.from_number, "+14155550004");
    assert_eq!(got.call.from, "+*******0004");
    assert_eq!(got.call.started_at, t);
    assert_eq!(
        got.call.status.as_ref().map(|s| s.as_str()),
        Some("ringing"),
        "the callback's status kept"
    );
    assert_eq!(got.events.len(), 1);

    // A final callback for a call never seen ends its minimal row at once.
    assert!(
        store
            .status_callback("CAbusy", 0, "busy", Some(0), t)
            .await
            .unwrap()
    );
    let busy = store.get_call("CAbusy").await.unwrap().unwrap();
    assert_eq!(busy.call.ended_at, Some(t));
    assert_eq!(busy.call.duration_secs, Some(0));
}

pub async fn bad_data_is_an_error_not_a_panic(db: TestDb) {
    let store = db.open().await;
    store
        .call_started(&new_call("CAbad", "+14155550005", t0(), "r1"))
        .await
        .unwrap();
    store.add_turn("CAbad", &turn(0, None, "Hi")).await.unwrap();
    let filter = CallFilter::default();

    db.exec("UPDATE turns SET turn = -1").await;
    assert!(
        store.get_call("CAbad").await.is_err(),
        "negative turn number"
    );
    db.exec("UPDATE turns SET turn = 0, stt_ms = -5").await;
    assert!(
        store.get_call("CAbad").await.is_err(),
        "negative milliseconds"
    );
    db.exec("UPDATE turns SET stt_ms = 5").await;
    assert!(store.get_call("CAbad").await.is_ok());

    // Beyond chrono's range (year 262143).
    db.exec("UPDATE calls SET started_at = 9223372036854775807")
        .await;
    assert!(store.get_call("CAbad").await.is_err());
    assert!(store.list_calls(&filter, 10, None).await.is_err());
    db.exec("UPDATE calls SET started_at = 0").await;
    assert!(store.list_calls(&filter, 10, None).await.is_ok());

    store
        .add_event("CAbad", &event(t0(), "dtmf", 1))
        .await
        .unwrap();
    if !db.is_postgres() {
        // PostgreSQL's JSONB column cannot hold this; SQLite's TEXT can.
        db.exec("UPDATE events SET detail = '{not json'").await;
        assert!(store.get_call("CAbad").await.is_err(), "unparseable detail");
        db.exec("UPDATE calls SET status = X'FF00'").await;
        assert!(
            store.list_calls(&filter, 10, None).await.is_err(),
            "a blob for text"
        );
    }
}

/// Only Twilio's call statuses become a call's status: anything else is
/// `unknown`, and what was sent is kept in the event, escaped.
pub async fn a_status_twilio_does_not_send_is_kept_as_unknown(db: TestDb) {
    let store = db.open().await;
    let t = t0();
    store
        .call_started(&new_call("CAodd", "+14155550007", t, "r1"))
        .await
        .unwrap();
    assert!(
        store
            .status_callback("CAodd", 0, "ringing\nINFO forged", None, t)
            .await
            .unwrap()
    );
    let call = store.get_call("CAodd").await.unwrap().expect("stored");
    assert_eq!(
        call.call.status.as_ref().map(|s| s.as_str()),
        Some("unknown")
    );
    let callback = call
        .events
        .iter()
        .find(|e| e.kind == "status_callback")
        .expect("the callback's event");
    assert_eq!(callback.detail["status"], "unknown");
    assert_eq!(callback.detail["raw"], "ringing\\nINFO forged");
    assert!(
        store
            .status_callback("CAodd", 1, "in-progress", None, t + secs(1))
            .await
            .unwrap()
    );
    let call = store.get_call("CAodd").await.unwrap().expect("stored");
    assert_eq!(
        call.call.status.as_ref().map(|s| s.as_str()),
        Some("in-progress")
    );
}
