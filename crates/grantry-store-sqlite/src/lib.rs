//! Grantry's embedded store: one SQLite file in WAL mode, foreign keys on, STRICT tables, a busy
//! timeout, and one writer connection (so writes never contend within the process) beside a small
//! pool of readers. Migrations are embedded in the binary.

mod connections;
mod misc;
mod profiles;
use grantry_store_sql as rows;
mod sessions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{AdminId, ApiKeyId, ConnectionId, ProfileId, SessionId};
use grantry_core::store::*;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{SqlSafeStr, SqlitePool as Pool};

/// The schema versions this build knows, oldest first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "console", include_str!("../migrations/0002_console.sql")),
    (
        3,
        "abandoned leases",
        include_str!("../migrations/0003_abandoned_leases.sql"),
    ),
];

/// The newest schema version this build can work with.
pub const SCHEMA_VERSION: i64 = 3;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

pub(crate) fn db_error(error: sqlx::Error) -> StoreError {
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

impl SqliteStore {
    /// Opens (creating if needed) the database file. Does not migrate: see [`SqliteStore::migrate`].
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
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
        Ok(SqliteStore { reader, writer })
    }

    /// Opens and brings the schema up to date; refuses a schema newer than this build.
    pub async fn open_and_migrate(path: &Path) -> Result<SqliteStore, StoreError> {
        let store = SqliteStore::open(path).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version recorded in the database (0 for a new one).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
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
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version().await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the database's schema is version {found}, newer than this Grantry knows ({SCHEMA_VERSION}); \
                 run a newer Grantry or restore a backup"
            )));
        }
        migrator()
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    pub(crate) fn read(&self) -> &Pool {
        &self.reader
    }

    pub(crate) fn write(&self) -> &Pool {
        &self.writer
    }

    /// Closes both pools (waits for queries in flight).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.read())
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
        profiles::by_id(self, id).await
    }
    async fn profile_by_name(&self, name: &str) -> StoreResult<Option<ProfileRecord>> {
        profiles::by_name(self, name).await
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
        connections::write_tokens(self, id, version, owner, write).await
    }
    async fn write_pending_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        write: &TokenWrite,
    ) -> StoreResult<bool> {
        connections::write_pending_tokens(self, id, version, write).await
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
