//! Grantry's embedded store: one SQLite file in WAL mode, foreign keys on, STRICT tables, a busy
//! timeout, and one writer connection (so writes never contend within the process) beside a small
//! pool of readers. Migrations are embedded in the binary.
//!
//! The queries live once in `grantry-store-sql`; this crate is the [`SqliteEngine`] they run on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::store::{StoreError, StoreResult};
use grantry_store_sql::driver::{DriverFns, SqlxTransaction, migrator, query, refuse_newer_schema};
use grantry_store_sql::{Access, Dialect, Engine, SqlStore, Statement};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

/// The schema versions this build knows, oldest first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "console", include_str!("../migrations/0002_console.sql")),
    (
        3,
        "abandoned leases",
        include_str!("../migrations/0003_abandoned_leases.sql"),
    ),
    (
        4,
        "confirmed connections",
        include_str!("../migrations/0004_confirmed_connections.sql"),
    ),
    (
        5,
        "webhooks",
        include_str!("../migrations/0005_webhooks.sql"),
    ),
    (
        6,
        "static credential checks",
        include_str!("../migrations/0006_static_credential_checks.sql"),
    ),
];

/// The newest schema version this build can work with.
pub const SCHEMA_VERSION: i64 = 6;

/// Grantry's store on SQLite.
pub type SqliteStore = SqlStore<SqliteEngine>;

static DIALECT: Dialect = Dialect {
    // One writer at a time: the claim is one statement and needs no row locks.
    // Two index-friendly halves (abandoned leases by `connections_leased`, due rows by
    // `connections_due`), so a claim reads only what it takes, however many rows the table holds.
    claim_due: "UPDATE connections SET lease_owner = $2, lease_until = $3 WHERE id IN ( \
                  SELECT id FROM ( \
                    SELECT id, 0 AS rank, at FROM ( \
                      SELECT id, lease_until AS at FROM connections \
                      WHERE lease_owner IS NOT NULL AND lease_until < $1 \
                        AND status <> 'needs_reauth' \
                      ORDER BY lease_until LIMIT $4) \
                    UNION ALL \
                    SELECT id, 1 AS rank, at FROM ( \
                      SELECT id, next_refresh_at AS at FROM connections \
                      WHERE next_refresh_at <= $1 AND status <> 'needs_reauth' \
                        AND lease_owner IS NULL \
                      ORDER BY next_refresh_at LIMIT $4)) \
                  ORDER BY rank, at LIMIT $4) \
                RETURNING *",
    lock_admins: "SELECT id FROM admins",
    lock_profile_connections: "SELECT id FROM connections \
                               WHERE profile_id = $1 AND ($2 IS NULL OR status = $2)",
    // Walks the pending messages in order (the planner would rather sort them all), stopping
    // at the limit.
    claim_deliveries: "UPDATE webhook_deliveries SET lease_owner = $2, lease_until = $3 \
                       WHERE seq IN ( \
                         SELECT d.seq FROM webhook_deliveries AS d \
                         INDEXED BY webhook_deliveries_pending \
                         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                           AND (d.lease_until IS NULL OR d.lease_until < $1) \
                           AND EXISTS (SELECT 1 FROM webhooks AS w \
                             WHERE w.id = d.webhook_id AND w.enabled = 1) \
                           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS e \
                             WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key \
                               AND e.state = 'pending' AND e.seq < d.seq) \
                         ORDER BY d.seq LIMIT $4) \
                       RETURNING *",
};

static DRIVER: DriverFns<Sqlite> = DriverFns {
    classify: db_error,
    rows_affected: |done| done.rows_affected(),
};

/// The SQLite database behind a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteEngine {
    reader: SqlitePool,
    writer: SqlitePool,
    file: DatabaseFile,
}

/// The database file as it was opened. If the file (or its whole directory) is deleted or
/// replaced under a running server, SQLite keeps writing into the unlinked file and every write
/// seems to succeed; checking the path before writes turns that into "unavailable" (503, refresh
/// results kept in memory, `/readyz` failing) instead of lost data.
#[derive(Debug, Clone)]
struct DatabaseFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl DatabaseFile {
    fn of(path: &Path) -> StoreResult<DatabaseFile> {
        let metadata = std::fs::metadata(path).map_err(|e| {
            StoreError::Unavailable(format!("the database file {}: {e}", path.display()))
        })?;
        Ok(DatabaseFile {
            path: path.to_owned(),
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    fn still_there(&self) -> StoreResult<()> {
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.device && m.ino() == self.inode);
        if same {
            return Ok(());
        }
        Err(StoreError::Unavailable(format!(
            "the database file {} was deleted or replaced while in use; restore the data \
             directory and restart",
            self.path.display()
        )))
    }
}

fn db_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if db.message().contains("database is locked") => {
            StoreError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Other(error.to_string()),
    }
}

/// Opens (creating if needed) the database file. Does not migrate: see [`SqliteEngine::migrate`].
pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(db_error)?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
        .map_err(db_error)?;
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.read_only(true))
        .await
        .map_err(db_error)?;
    let file = DatabaseFile::of(path)?;
    Ok(SqlStore::new(SqliteEngine {
        reader,
        writer,
        file,
    }))
}

/// Opens and brings the schema up to date; refuses a schema newer than this build.
pub async fn open_and_migrate(path: &Path) -> StoreResult<SqliteStore> {
    let store = open(path).await?;
    store.engine().migrate().await?;
    Ok(store)
}

impl SqliteEngine {
    /// The schema version recorded in the database (0 for a new one).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.writer)
        .await
        .map_err(db_error)?;
        if exists.is_none() {
            return Ok(0);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.writer)
                .await
                .map_err(db_error)?;
        Ok(version.unwrap_or(0))
    }

    /// Applies the migrations this build has and the database lacks.
    pub async fn migrate(&self) -> StoreResult<()> {
        refuse_newer_schema(self.schema_version().await?, SCHEMA_VERSION)?;
        migrator(MIGRATIONS)
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    /// Closes both pools (waits for queries in flight).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    fn pool(&self, access: Access) -> &SqlitePool {
        match access {
            Access::Read => &self.reader,
            Access::Write => &self.writer,
        }
    }
}

#[async_trait]
impl Engine for SqliteEngine {
    type Row = SqliteRow;
    type Transaction = SqlxTransaction<Sqlite>;

    async fn execute(&self, statement: Statement) -> StoreResult<u64> {
        self.file.still_there()?;
        let done = query::<Sqlite>(statement)
            .execute(&self.writer)
            .await
            .map_err(db_error)?;
        Ok((DRIVER.rows_affected)(&done))
    }

    async fn fetch_all(&self, access: Access, statement: Statement) -> StoreResult<Vec<SqliteRow>> {
        if access == Access::Write {
            self.file.still_there()?;
        }
        query::<Sqlite>(statement)
            .fetch_all(self.pool(access))
            .await
            .map_err(db_error)
    }

    async fn fetch_optional(
        &self,
        access: Access,
        statement: Statement,
    ) -> StoreResult<Option<SqliteRow>> {
        if access == Access::Write {
            self.file.still_there()?;
        }
        query::<Sqlite>(statement)
            .fetch_optional(self.pool(access))
            .await
            .map_err(db_error)
    }

    async fn begin(&self) -> StoreResult<SqlxTransaction<Sqlite>> {
        self.file.still_there()?;
        let tx = self.writer.begin().await.map_err(db_error)?;
        Ok(SqlxTransaction::new(tx, &DRIVER))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.file.still_there()?;
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }
}
