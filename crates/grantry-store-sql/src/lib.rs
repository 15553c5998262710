//! Grantry's store, written once for SQLite and PostgreSQL.
//!
//! [`SqlStore`] implements every trait of `grantry_core::store` over an [`Engine`], which each
//! backend crate provides for its database (`grantry-store-sqlite`, `grantry-store-postgres`).
//! The queries are portable SQL (`$1` placeholders, Unix seconds as integers, text ids, sealed
//! values as bytes, `ON CONFLICT … DO UPDATE`); the few statements that differ come from the
//! engine's [`Dialect`]. One module per store trait, each in the same shape: build a
//! [`Statement`], run it, read the rows with [`rows`].

pub mod driver;
pub mod engine;
pub mod rows;

mod api_keys;
mod connections;
mod console;
mod events;
mod profiles;
mod refresh;
mod sealed;
mod sessions;
mod webhooks;

use async_trait::async_trait;
use grantry_core::store::{Announcement, Store, StoreResult};

pub use engine::{Access, Dialect, Engine, Statement, Transaction, Value};

/// The store over one database engine.
#[derive(Debug)]
pub struct SqlStore<E> {
    engine: E,
}

impl<E: Engine> SqlStore<E> {
    pub fn new(engine: E) -> SqlStore<E> {
        SqlStore { engine }
    }

    /// The engine, for what only its backend can do (migrations, the change feed, closing).
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Reads at most one row, as a record.
    async fn one<T>(
        &self,
        access: Access,
        statement: Statement,
        record: fn(&E::Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let row = self.engine.fetch_optional(access, statement).await?;
        row.as_ref().map(record).transpose()
    }

    /// Runs `statement` and, when it changed a row, writes `announce` (audit events and their
    /// webhook messages) in the same transaction; answers how many rows the statement changed.
    async fn change(&self, statement: Statement, announce: &[Announcement]) -> StoreResult<u64> {
        if announce.is_empty() {
            return self.engine.execute(statement).await;
        }
        let mut tx = self.engine.begin().await?;
        let changed = tx.execute(statement).await?;
        if changed > 0 {
            for statement in announce.iter().flat_map(events::announcing) {
                tx.execute(statement).await?;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Reads every row, as records.
    async fn all<T>(
        &self,
        access: Access,
        statement: Statement,
        record: fn(&E::Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.engine.fetch_all(access, statement).await?;
        rows.iter().map(record).collect()
    }
}

#[async_trait]
impl<E: Engine> Store for SqlStore<E> {
    async fn ping(&self) -> StoreResult<()> {
        self.engine.ping().await
    }
}
