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
