//! Grantry's store for several nodes: PostgreSQL. All coordination goes through it: leases in
//! rows, `FOR UPDATE SKIP LOCKED` to share out the refresher's work, and triggers that NOTIFY
//! every change so each node's caches follow ([`listen::follow_changes`]). Migrations are embedded
//! and run under sqlx's advisory lock, so nodes starting together do not race.

mod connections;
pub mod listen;
mod misc;
mod profiles;
use grantry_store_sql as rows;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{AdminId, ApiKeyId, ConnectionId, ProfileId, SessionId};
use grantry_core::store::*;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "abandoned leases",
        include_str!("../migrations/0002_abandoned_leases.sql"),
    ),
];

/// The newest schema version this build can work with.
pub const SCHEMA_VERSION: i64 = 2;

#[derive(Debug, Clone)]
pub struct PgStore {
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

pub(crate) fn db_error(error: sqlx::Error) -> StoreError {
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

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                (*description).into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

impl PgStore {
    /// Connects a pool of `max_connections`. Requests wait at most 3 s for a connection, then
    /// fail as "unavailable" (answered 503 with Retry-After).
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(db_error)?;
        let health = Arc::new(Health::default());
        tokio::spawn(probe_health(pool.clone(), health.clone()));
        Ok(PgStore { pool, health })
    }

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
    pub(crate) fn db(&self) -> StoreResult<&PgPool> {
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
        let found = self.schema_version().await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the database's schema is version {found}, newer than this Grantry knows ({SCHEMA_VERSION}); \
                 run a newer Grantry or restore a backup"
            )));
        }
        migrator()
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
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.db()?)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_profile(&self, profile: &ProfileRecord) -> StoreResult<()> {
        profiles::insert(self, profile).await
    }
    async fn update_profile(&self, profile: &ProfileRecord) -> StoreResult<bool> {
        profiles::update(self, profile).await
    }
    async fn profile(&self, id: &ProfileId) -> StoreResult<Option<ProfileRecord>> {
        profiles::by_column(self, "id", id.as_str()).await
    }
    async fn profile_by_name(&self, name: &str) -> StoreResult<Option<ProfileRecord>> {
        profiles::by_column(self, "name", name).await
    }
    async fn profiles(&self) -> StoreResult<Vec<ProfileRecord>> {
        profiles::all(self).await
    }
    async fn delete_profile(&self, id: &ProfileId) -> StoreResult<Option<u64>> {
        profiles::delete(self, id).await
    }
    async fn set_profile_problem(
        &self,
        id: &ProfileId,
        problem: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<()> {
        profiles::set_problem(self, id, problem, at).await
    }

    async fn insert_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
        connections::insert(self, connection).await
    }
    async fn replace_connection(&self, connection: &ConnectionRecord) -> StoreResult<bool> {
        connections::replace(self, connection).await
    }
    async fn connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
        connections::by_id(self, id).await
    }
    async fn connection_by_account(
        &self,
        profile: &ProfileId,
        account_key: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        connections::by_account(self, profile, account_key).await
    }
    async fn connections(
        &self,
        filter: &ConnectionFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        connections::list(self, filter, page).await
    }
    async fn delete_connection(&self, id: &ConnectionId) -> StoreResult<bool> {
        connections::delete(self, id).await
    }
    async fn connection_counts(&self) -> StoreResult<Vec<(ProfileId, ConnectionStatus, u64)>> {
        connections::counts(self).await
    }
    async fn take_lease(
        &self,
        id: &ConnectionId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<ConnectionRecord>> {
        connections::take_lease(self, id, owner, until, now).await
    }
    async fn release_lease(&self, id: &ConnectionId, owner: &str) -> StoreResult<()> {
        connections::release_lease(self, id, owner).await
    }
    async fn write_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        write: &TokenWrite,
    ) -> StoreResult<bool> {
        connections::write_if(self, id, version, Some(owner), write).await
    }
    async fn write_pending_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        write: &TokenWrite,
    ) -> StoreResult<bool> {
        connections::write_if(self, id, version, None, write).await
    }
    async fn record_outcome(
        &self,
        id: &ConnectionId,
        owner: &str,
        outcome: &OutcomeWrite,
    ) -> StoreResult<()> {
        connections::record_outcome(self, id, owner, outcome).await
    }
    async fn retry_failing_now(&self, profile: &ProfileId, now: Timestamp) -> StoreResult<u64> {
        connections::retry_failing_now(self, profile, now).await
    }
    async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionId>> {
        connections::claim_due(self, now, owner, until, limit).await
    }

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sessions::insert(self, session).await
    }
    async fn session_by_token(&self, digest: &str) -> StoreResult<Option<SessionRecord>> {
        sessions::by_column(self, sessions::Lookup::Token, digest).await
    }
    async fn session_by_state(&self, digest: &str) -> StoreResult<Option<SessionRecord>> {
        sessions::by_column(self, sessions::Lookup::State, digest).await
    }
    async fn open_session(
        &self,
        id: &SessionId,
        state_digest: &str,
        verifier: Option<&[u8]>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        sessions::open(self, id, state_digest, verifier, now).await
    }
    async fn complete_session(&self, id: &SessionId, now: Timestamp) -> StoreResult<bool> {
        sessions::complete(self, id, now).await
    }
    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        sessions::purge(self, before).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        misc::insert_api_key(self, key).await
    }
    async fn api_key_by_digest(&self, digest: &str) -> StoreResult<Option<ApiKeyRecord>> {
        misc::api_key_by_digest(self, digest).await
    }
    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        misc::api_keys(self).await
    }
    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<bool> {
        misc::revoke_api_key(self, id, at).await
    }
    async fn insert_admin(&self, admin: &AdminRecord) -> StoreResult<()> {
        misc::insert_admin(self, admin).await
    }
    async fn admin_by_username(&self, username: &str) -> StoreResult<Option<AdminRecord>> {
        misc::admin_by_username(self, username).await
    }
    async fn admins(&self) -> StoreResult<Vec<AdminRecord>> {
        misc::admins(self).await
    }
    async fn admin_count(&self) -> StoreResult<u64> {
        misc::admin_count(self).await
    }
    async fn set_admin_password(&self, id: &AdminId, password_hash: &str) -> StoreResult<bool> {
        misc::set_admin_password(self, id, password_hash).await
    }
    async fn delete_admin(&self, id: &AdminId) -> StoreResult<AdminRemoval> {
        misc::delete_admin(self, id).await
    }
    async fn insert_console_session(&self, session: &ConsoleSessionRecord) -> StoreResult<()> {
        misc::insert_console_session(self, session).await
    }
    async fn console_session(&self, digest: &str) -> StoreResult<Option<ConsoleSessionRecord>> {
        misc::console_session(self, digest).await
    }
    async fn touch_console_session(&self, digest: &str, at: Timestamp) -> StoreResult<()> {
        misc::touch_console_session(self, digest, at).await
    }
    async fn delete_console_session(&self, digest: &str) -> StoreResult<()> {
        misc::delete_console_session(self, digest).await
    }
    async fn put_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        misc::put_meta(self, key, value).await
    }
    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        misc::meta(self, key).await
    }
    async fn insert_event(&self, event: &EventRecord) -> StoreResult<()> {
        misc::insert_event(self, event).await
    }
    async fn events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<EventRecord>> {
        misc::events(self, filter, page).await
    }
    async fn sealed_cells(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SealedCell>> {
        misc::sealed_cells(self, column, after, limit).await
    }
    async fn reseal(
        &self,
        column: SealedColumn,
        row_id: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        misc::reseal(self, column, row_id, old, new).await
    }
}
