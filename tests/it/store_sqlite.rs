//! The store against a real SQLite file in a temp folder: the shared cases
//! (`store_cases`), plus what only SQLite has (the file, its folders, WAL).

use pronto::store::Store;

use crate::store_cases::{self, Kind, TestDb, new_call, t0};

all_store_tests!(store_cases::sqlite);

async fn fresh() -> (TestDb, std::path::PathBuf) {
    let db = store_cases::sqlite().await.expect("sqlite fixture");
    let Kind::Sqlite { file, .. } = &db.kind else {
        unreachable!("sqlite fixture")
    };
    let file = file.clone();
    (db, file)
}

#[tokio::test]
async fn open_creates_folders_file_and_wal() {
    let (db, file) = fresh().await;
    assert!(
        !file.parent().unwrap().exists(),
        "the folders do not exist yet"
    );
    store_cases::run(Some(db), |db| async move {
        let store = db.open().await;
        assert!(file.is_file(), "the database file is created");
        store
            .call_started(&new_call("CAwal", "+14155550777", t0(), "r1"))
            .await
            .unwrap();
        let wal = file.with_extension("db-wal");
        assert!(wal.is_file(), "{} exists while open", wal.display());
        assert_eq!(store.backend(), "sqlite");
        let raw = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(&file),
        )
        .await
        .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        raw.close().await;
    })
    .await;
}

#[tokio::test]
async fn every_spelling_of_a_sqlite_url() {
    let (db, file) = fresh().await;
    store_cases::run(Some(db), |db| async move {
        let abs = file.display().to_string();
        assert!(abs.starts_with('/'), "temp dir is absolute: {abs}");
        let store = db.open().await; // sqlite:///abs/…
        store
            .call_started(&new_call("CAurl", "+14155550888", t0(), "r1"))
            .await
            .unwrap();
        store.close().await;
        // `sqlite:/abs/…` names the same file.
        let same = Store::open(&format!("sqlite:{abs}")).await.unwrap();
        assert!(same.get_call("CAurl").await.unwrap().is_some());
        same.close().await;
    })
    .await;
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in [
        "mysql://localhost/pronto",
        "sqlite::memory:",
        "sqlite://",
        "sqlite://x.db?mode=ro",
        "",
    ] {
        assert!(Store::open(url).await.is_err(), "{url:?}");
    }
    // (A well-formed URL of a server that is down fails only after the
    // 10 s connect timeout: not worth the wait here.)
    let err = Store::open("postgres://user:hunter2@127.0.0.1:port/db")
        .await
        .err()
        .expect("a bad port");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
