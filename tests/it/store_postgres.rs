//! The store's shared cases (`store_cases`) against PostgreSQL, each in a
//! fresh schema of the database `TEST_DATABASE_URL` names (`.ci/run` starts
//! one). Without the variable every case passes at once, after printing
//! `store_postgres: skipped (TEST_DATABASE_URL not set)`.

use crate::store_cases;

all_store_tests!(store_cases::postgres);

#[tokio::test]
async fn backend_is_postgres() {
    store_cases::run(store_cases::postgres().await, |db| async move {
        assert_eq!(db.open().await.backend(), "postgres");
    })
    .await;
}

/// PostgreSQL restarted in the middle of a call (several replicas share
/// it): the call goes on, what could not be written waits in memory, and
/// once the database is back the record is complete. Runs against a
/// cluster of its own, which it stops and starts (`TEST_PG_RESTART_CLUSTER`
/// is `<version> <name>` for `pg_ctlcluster`, `TEST_PG_RESTART_URL` its
/// database; `.ci/run` makes both); skipped without them.
#[tokio::test]
async fn a_restart_mid_call_loses_nothing() {
    use std::time::{Duration, Instant};

    use crate::harness::{TestServer, expect_event, fixture};
    use pronto::sim::{Call, Event};

    let (Ok(cluster), Ok(url)) = (
        std::env::var("TEST_PG_RESTART_CLUSTER"),
        std::env::var("TEST_PG_RESTART_URL"),
    ) else {
        eprintln!("store_postgres: restart skipped (TEST_PG_RESTART_CLUSTER not set)");
        return;
    };
    let pg_ctl = |action: &'static str| {
        let cluster = cluster.clone();
        async move {
            let mut args: Vec<String> = cluster.split_whitespace().map(str::to_string).collect();
            args.push(action.to_string());
            if action == "stop" {
                args.extend(["-m".to_string(), "fast".to_string()]);
            }
            let status = tokio::task::spawn_blocking(move || {
                std::process::Command::new("pg_ctlcluster")
                    .args(&args)
                    .status()
            })
            .await
            .expect("pg_ctlcluster ran")
            .expect("pg_ctlcluster started");
            assert!(status.success(), "pg_ctlcluster {action}: {status}");
        }
    };
    let server = TestServer::with(&[("DATABASE_URL", url.as_str())], None).await;
    let hello = fixture("hello.wav");
    let call = Call::dial(&server.fast_sim()).await.expect("call connects");
    let sid = call.call_sid().to_string();
    let echoed = |e: &Event| matches!(e, Event::MarkEchoed { cleared: false, .. });
    call.say(&hello);
    expect_event(&call, "the echo", echoed).await;

    pg_ctl("stop").await;
    // The call goes on without its database.
    call.skip_seen();
    call.say(&hello);
    expect_event(&call, "the echo without a database", echoed).await;
    let report = call.hang_up().await.expect("report");
    assert!(report.protocol_errors().is_empty(), "{report}");
    server
        .health_until("nothing kept", Duration::from_secs(60), |h| {
            h["unwritten_records"].as_u64() > Some(0)
        })
        .await;
    pg_ctl("start").await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, record) = server
            .api(reqwest::Method::GET, &format!("/api/calls/{sid}"), None)
            .await;
        let turns = record["turns"].as_array().map_or(0, Vec::len);
        if status == 200 && record["end_reason"] == "caller_hung_up" && turns == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "record incomplete after the restart: {record}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
