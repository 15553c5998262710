//! What every engine built on a sqlx driver shares: binding a [`Statement`]'s values, a
//! transaction, embedded migrations and the check that refuses a schema newer than the binary.
//! Generic over the driver, so each backend crate keeps only what differs.

use async_trait::async_trait;
use grantry_core::store::{StoreError, StoreResult};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, IntoArguments, SqlSafeStr, Type};

use crate::engine::{Statement, Transaction, Value};
use crate::rows::Columns;

/// The statement as a sqlx query, its values bound in order.
pub fn query<DB>(statement: Statement) -> Query<'static, DB, DB::Arguments>
where
    DB: Database,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Encode<'q, DB> + Type<DB>,
{
    let mut query = sqlx::query::<DB>(statement.sql);
    for value in statement.values {
        query = match value {
            Value::Text(v) => query.bind(v),
            Value::Int(v) => query.bind(v),
            Value::Bytes(v) => query.bind(v),
            Value::Flag(v) => query.bind(v),
        };
    }
    query
}

/// Embedded migrations: `(version, description, SQL)`, oldest first.
pub fn migrator(migrations: &[(i64, &str, &'static str)]) -> Migrator {
    let migrations = migrations
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                (*description).to_owned().into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Refuses a database a newer Grantry has migrated: this build would misread it.
pub fn refuse_newer_schema(found: i64, latest: i64) -> StoreResult<()> {
    if found > latest {
        return Err(StoreError::Corrupt(format!(
            "the database's schema is version {found}, newer than this Grantry knows ({latest}); \
             run a newer Grantry or restore a backup"
        )));
    }
    Ok(())
}

/// What a backend tells the shared code about its driver: how its errors map to
/// [`StoreError`] (which mean "try later", which "already exists") and how many rows a
/// statement changed (sqlx has no trait for it).
pub struct DriverFns<DB: Database> {
    pub classify: fn(sqlx::Error) -> StoreError,
    pub rows_affected: fn(&DB::QueryResult) -> u64,
}

/// A sqlx transaction, with the backend's error classification.
pub struct SqlxTransaction<DB: Database> {
    tx: sqlx::Transaction<'static, DB>,
    driver: &'static DriverFns<DB>,
}

impl<DB: Database> SqlxTransaction<DB> {
    pub fn new(tx: sqlx::Transaction<'static, DB>, driver: &'static DriverFns<DB>) -> Self {
        SqlxTransaction { tx, driver }
    }
}

#[async_trait]
impl<DB> Transaction for SqlxTransaction<DB>
where
    DB: Database,
    DB::Row: Columns,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Encode<'q, DB> + Type<DB>,
{
    type Row = DB::Row;

    async fn execute(&mut self, statement: Statement) -> StoreResult<u64> {
        let done = query::<DB>(statement)
            .execute(&mut *self.tx)
            .await
            .map_err(self.driver.classify)?;
        Ok((self.driver.rows_affected)(&done))
    }

    async fn fetch_all(&mut self, statement: Statement) -> StoreResult<Vec<DB::Row>> {
        query::<DB>(statement)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(self.driver.classify)
    }

    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(self.driver.classify)
    }
}
