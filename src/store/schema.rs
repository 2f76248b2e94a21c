//! Connecting to the database `DATABASE_URL` names, and the versioned schema.
//!
//! Migrations are sqlx's (a `_sqlx_migrations` table with a checksum per
//! version, PostgreSQL's advisory lock so replicas starting together do not
//! race), built from SQL compiled into the binary so a deployment needs no
//! `migrations/` folder beside it. Each dialect has its own files; the
//! versions and descriptions must match pairwise.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Db, Dialect, Store, StoreError};

/// How long a SQLite writer waits for another's transaction before giving up.
/// Transactions here last milliseconds; 5 s only runs out when something is
/// badly wrong (a stuck process holding the lock), and then failing is right.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for a pooled connection (a PostgreSQL server that does
/// not answer) before the method fails and the server logs and skips.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The migrations this binary knows: (version, description, SQLite, PostgreSQL).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "calls",
        include_str!("../../migrations/sqlite/0001_calls.sql"),
        include_str!("../../migrations/postgres/0001_calls.sql"),
    ),
    (
        2,
        "outbound plans",
        include_str!("../../migrations/sqlite/0002_outbound_plans.sql"),
        include_str!("../../migrations/postgres/0002_outbound_plans.sql"),
    ),
    (
        3,
        "erased calls",
        include_str!("../../migrations/sqlite/0003_erased_calls.sql"),
        include_str!("../../migrations/postgres/0003_erased_calls.sql"),
    ),
    (
        4,
        "turn stages",
        include_str!("../../migrations/sqlite/0004_turn_stages.sql"),
        include_str!("../../migrations/postgres/0004_turn_stages.sql"),
    ),
    (
        5,
        "speech to speech",
        include_str!("../../migrations/sqlite/0005_speech_to_speech.sql"),
        include_str!("../../migrations/postgres/0005_speech_to_speech.sql"),
    ),
    (
        6,
        "operator turns",
        include_str!("../../migrations/sqlite/0006_operator_turns.sql"),
        include_str!("../../migrations/postgres/0006_operator_turns.sql"),
    ),
    (
        7,
        "agents",
        include_str!("../../migrations/sqlite/0007_agents.sql"),
        include_str!("../../migrations/postgres/0007_agents.sql"),
    ),
];

/// The newest schema version this binary knows.
pub(super) fn known_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

/// Opens a pool for `url`; SQLite's folder and file are created if missing.
pub(super) async fn connect(url: &str) -> Result<Db, StoreError> {
    if let Some(path) = sqlite_path(url)? {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::new(format!("creating {}: {e}", dir.display())))?;
        }
        // FULL: every commit is synced to the WAL file, so a power cut loses
        // no committed row either (NORMAL could lose the last few). The store
        // writes a few small rows per turn; the cost is not measurable.
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::new(format!("opening {}: {e}", path.display())))?;
        return Ok(Db::Sqlite(pool));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The URL holds a password: errors say what failed, never the URL.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::new(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::new(format!("connecting to PostgreSQL: {e}")))?;
        return Ok(Db::Postgres(pool));
    }
    Err(StoreError::new(
        "DATABASE_URL must start with sqlite: or postgres://",
    ))
}

/// The file a `sqlite:` URL names, or `None` for another scheme.
///
/// `sqlite://data/x.db` and `sqlite:data/x.db` are relative to the working
/// directory (as `DATABASE_URL=sqlite://data/pronto.db` reads), and
/// `sqlite:///abs/x.db` is absolute. An in-memory database is refused: each
/// pooled connection would get its own, and the history would vanish.
pub(super) fn sqlite_path(url: &str) -> Result<Option<PathBuf>, StoreError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(None);
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') {
        return Err(StoreError::new(
            "sqlite URL parameters are not supported (the store sets its own)",
        ));
    }
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::new(
            "sqlite URL needs a file path, e.g. sqlite://data/pronto.db",
        ));
    }
    Ok(Some(Path::new(path).to_path_buf()))
}

impl Store {
    /// Applies the migrations not yet applied; with none pending it only
    /// reads the migrations table.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = on_db!(self, |_pool, dialect| migrator(dialect));
        let result = on_db!(self, |pool, _d| migrator.run(pool).await);
        result.map_err(|e| match e {
            MigrateError::VersionMissing(v) => StoreError::new(format!(
                "the database schema is at version {v}, newer than this Pronto knows \
                 (up to {}): upgrade Pronto, or point DATABASE_URL at another database",
                known_version()
            )),
            other => StoreError::new(format!("migrating the schema: {other}")),
        })
    }

    /// The newest schema version applied to the database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        let version: i64 = on_db!(self, |pool, _d| sqlx::query_scalar(SQL)
            .fetch_one(pool)
            .await?);
        Ok(version)
    }
}

fn migrator(dialect: Dialect) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match dialect {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
            };
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::sqlite_path;

    fn path(url: &str) -> Option<PathBuf> {
        sqlite_path(url).ok().flatten()
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            path("sqlite://data/pronto.db"),
            Some("data/pronto.db".into())
        );
        assert_eq!(path("sqlite:data/pronto.db"), Some("data/pronto.db".into()));
        assert_eq!(path("sqlite:///abs/path.db"), Some("/abs/path.db".into()));
        assert_eq!(path("postgres://u@h/db"), None);
        assert!(sqlite_path("sqlite::memory:").is_err());
        assert!(sqlite_path("sqlite://").is_err());
        assert!(sqlite_path("sqlite://x.db?mode=ro").is_err());
    }
}
