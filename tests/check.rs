//! `pronto health` as a user runs it: the binary, in an empty working
//! directory, with only the variables each test gives it.

mod fakes;
mod harness;
#[path = "check/support.rs"]
mod support;

use harness::TestServer;
use support::{Scratch, closed_port, pronto};

#[tokio::test]
async fn health_exits_0_when_the_local_pronto_answers_ok() {
    let dir = Scratch::new("health");
    let database = dir.database("server");
    let server = TestServer::with(&[("DATABASE_URL", &database)], None).await;
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let run = pronto(dir.path(), &["health"], &[("PORT", port.clone())]).await;
    run.exit(0);
    assert_eq!(
        run.stdout,
        format!(
            "ok: Pronto {} at 127.0.0.1:{port}, echo mode, 0 active calls\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(run.stderr, "");
}

#[tokio::test]
async fn health_exits_1_with_one_line_when_pronto_is_not_there() {
    let dir = Scratch::new("health-down");
    let port = closed_port();
    let run = pronto(dir.path(), &["health"], &[("PORT", port.to_string())]).await;
    run.exit(1);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let prefix = format!("pronto health: nothing answers at http://127.0.0.1:{port}/health (");
    let suffix = format!("): is `pronto serve` running, on port {port}?");
    assert!(
        run.stderr.starts_with(&prefix) && run.stderr.trim_end().ends_with(&suffix),
        "{}",
        run.stderr
    );

    // Something else on the port: not Pronto.
    let other = support::fake_tunnel(
        support::Route::CloudflarePage(502),
        support::Route::Status(404),
    )
    .await;
    let port = other
        .base_url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let run = pronto(dir.path(), &["health"], &[("PORT", port.clone())]).await;
    run.exit(1);
    assert_eq!(
        run.stderr,
        format!("pronto health: http://127.0.0.1:{port}/health answered 502, not 200\n")
    );

    // A bad configuration is a failed health check too, never Docker's reserved 2.
    let run = pronto(dir.path(), &["health"], &[("PORT", "eighty".into())]).await;
    run.exit(1);
    assert_eq!(
        run.stderr,
        "pronto health: configuration error: PORT=eighty: not a port number\n"
    );
}
