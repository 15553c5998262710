//! Grantry's store for several nodes: PostgreSQL. All coordination goes through it: leases in
//! rows, `FOR UPDATE SKIP LOCKED` to share out the refresher's work, and triggers that NOTIFY
//! every change so each node's caches follow ([`listen::follow_changes`]). Migrations are embedded
//! and run under sqlx's advisory lock, so nodes starting together do not race.
//!
//! The queries live once in `grantry-store-sql`; this crate is the [`PgEngine`] they run on,
//! with a health probe that turns queries away at once while the database does not answer.

pub mod listen;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::store::{StoreError, StoreResult};
use grantry_store_sql::driver::{DriverFns, SqlxTransaction, migrator, query, refuse_newer_schema};
use grantry_store_sql::{Access, Dialect, Engine, SqlStore, Statement};
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "abandoned leases",
        include_str!("../migrations/0002_abandoned_leases.sql"),
    ),
    (
        3,
        "confirmed connections",
        include_str!("../migrations/0003_confirmed_connections.sql"),
    ),
    (
        4,
        "webhooks",
        include_str!("../migrations/0004_webhooks.sql"),
    ),
    (
        5,
        "static credential checks",
        include_str!("../migrations/0005_static_credential_checks.sql"),
    ),
];

/// The newest schema version this build can work with.
pub const SCHEMA_VERSION: i64 = 5;

/// Grantry's store on PostgreSQL.
pub type PgStore = SqlStore<PgEngine>;

static DIALECT: Dialect = Dialect {
    // Rows another node is claiming are skipped, not waited for: nodes share the work.
    // Two index-friendly halves (abandoned leases by `connections_leased`, due rows by
    // `connections_due`), so a claim reads only what it takes, however many rows the table holds.
    claim_due: "WITH abandoned AS ( \
                  SELECT id, lease_until AS at FROM connections \
                  WHERE lease_owner IS NOT NULL AND lease_until < $1 \
                    AND status <> 'needs_reauth' \
                  ORDER BY lease_until LIMIT $4 FOR UPDATE SKIP LOCKED), \
                due AS ( \
                  SELECT id, next_refresh_at AS at FROM connections \
                  WHERE next_refresh_at <= $1 AND status <> 'needs_reauth' \
                    AND lease_owner IS NULL \
                  ORDER BY next_refresh_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
                chosen AS ( \
                  SELECT id FROM ( \
                    SELECT id, 0 AS rank, at FROM abandoned \
                    UNION ALL SELECT id, 1 AS rank, at FROM due) AS candidates \
                  ORDER BY rank, at LIMIT $4) \
                UPDATE connections AS c SET lease_owner = $2, lease_until = $3 \
                FROM chosen WHERE c.id = chosen.id \
                RETURNING c.*",
    lock_admins: "SELECT id FROM admins FOR UPDATE",
    lock_profile_connections: "SELECT id FROM connections \
                               WHERE profile_id = $1 AND ($2::TEXT IS NULL OR status = $2) \
                               ORDER BY id FOR UPDATE",
    // Rows another node is claiming are skipped, and their followers wait behind them.
    claim_deliveries: "WITH chosen AS ( \
                         SELECT d.seq FROM webhook_deliveries AS d \
                         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                           AND (d.lease_until IS NULL OR d.lease_until < $1) \
                           AND EXISTS (SELECT 1 FROM webhooks AS w \
                             WHERE w.id = d.webhook_id AND w.enabled) \
                           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS e \
                             WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key \
                               AND e.state = 'pending' AND e.seq < d.seq) \
                         ORDER BY d.seq LIMIT $4 FOR UPDATE SKIP LOCKED) \
                       UPDATE webhook_deliveries AS x SET lease_owner = $2, lease_until = $3 \
                       FROM chosen WHERE x.seq = chosen.seq RETURNING x.*",
};

static DRIVER: DriverFns<Postgres> = DriverFns {
    classify: db_error,
    rows_affected: |done| done.rows_affected(),
};

/// The PostgreSQL database behind a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgEngine {
    pool: PgPool,
    health: Arc<Health>,
}

/// How often the health probe asks the database whether it answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long the probe waits for that answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// SQLSTATE classes that mean "the server is going away or not there": try again later.
const UNAVAILABLE_CODES: &[&str] = &[
    "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300",
];

fn db_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| UNAVAILABLE_CODES.contains(&c.as_ref())) =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Other(error.to_string()),
    }
}

/// Connects a pool of `max_connections`. Requests wait at most 3 s for a connection, then
/// fail as "unavailable" (answered 503 with Retry-After).
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> StoreResult<PgStore> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
        .map_err(db_error)?;
    let health = Arc::new(Health::default());
    tokio::spawn(probe_health(pool.clone(), health.clone()));
    Ok(SqlStore::new(PgEngine { pool, health }))
}

impl PgEngine {
    /// The pool, for what this crate's queries cannot express (listening, tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Records that the database answered (a connection was just made), ahead of the probe.
    pub(crate) fn mark_answering(&self) {
        self.health.answers.fetch_add(1, Ordering::SeqCst);
        self.health.set_down(false);
    }

    /// The pool for a query, unless the database is known to be down: then every query fails
    /// at once as unavailable (answered 503) instead of each waiting out the acquire timeout.
    fn db(&self) -> StoreResult<&PgPool> {
        if self.health.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "PostgreSQL is not answering (checked every second)".into(),
            ));
        }
        Ok(&self.pool)
    }

    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
        if exists.is_none() {
            return Ok(0);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(version.unwrap_or(0))
    }

    /// Applies the migrations this build has and the database lacks; refuses a newer schema.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        refuse_newer_schema(self.schema_version().await?, SCHEMA_VERSION)?;
        migrator(MIGRATIONS)
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether the database answers, as far as this node knows.
#[derive(Debug, Default)]
struct Health {
    /// Set while the probe finds the database not answering.
    down: AtomicBool,
    /// Bumped whenever something else saw the database answer, so a probe that was already
    /// waiting when it came back does not mark it down again.
    answers: AtomicU64,
}

impl Health {
    fn set_down(&self, down: bool) {
        if self.down.swap(down, Ordering::SeqCst) != down {
            if down {
                tracing::error!(
                    "PostgreSQL is not answering: requests that need it get 503 until it is back"
                );
            } else {
                tracing::info!("PostgreSQL answers again");
            }
        }
    }
}

/// Asks the database every second whether it answers, until the pool is closed.
async fn probe_health(pool: PgPool, health: Arc<Health>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if pool.is_closed() {
            return;
        }
        let before = health.answers.load(Ordering::SeqCst);
        let answered = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&pool))
            .await
            .is_ok_and(|result| result.is_ok());
        if answered || health.answers.load(Ordering::SeqCst) == before {
            health.set_down(!answered);
        }
    }
}

#[async_trait]
impl Engine for PgEngine {
    type Row = PgRow;
    type Transaction = SqlxTransaction<Postgres>;

    async fn execute(&self, statement: Statement) -> StoreResult<u64> {
        let done = query::<Postgres>(statement)
            .execute(self.db()?)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn fetch_all(&self, _access: Access, statement: Statement) -> StoreResult<Vec<PgRow>> {
        query::<Postgres>(statement)
            .fetch_all(self.db()?)
            .await
            .map_err(db_error)
    }

    async fn fetch_optional(
        &self,
        _access: Access,
        statement: Statement,
    ) -> StoreResult<Option<PgRow>> {
        query::<Postgres>(statement)
            .fetch_optional(self.db()?)
            .await
            .map_err(db_error)
    }

    async fn begin(&self) -> StoreResult<SqlxTransaction<Postgres>> {
        let tx = self.db()?.begin().await.map_err(db_error)?;
        Ok(SqlxTransaction::new(tx, &DRIVER))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.db()?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }
}
