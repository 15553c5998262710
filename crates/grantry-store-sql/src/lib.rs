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
mod group_commit;
mod profiles;
mod refresh;
mod sealed;
mod sessions;
mod webhooks;

use async_trait::async_trait;
use grantry_core::store::{Announcement, Store, StoreResult};

pub use engine::{Access, Dialect, Engine, Statement, Transaction, Value};
use group_commit::GroupCommit;

/// The store over one database engine.
#[derive(Debug)]
pub struct SqlStore<E> {
    engine: E,
    /// Token writes, committed together under load.
    token_writes: GroupCommit,
}

impl<E: Engine> SqlStore<E> {
    /// The store; starts its token writer on the current Tokio runtime.
    pub fn new(engine: E) -> SqlStore<E> {
        SqlStore {
            token_writes: GroupCommit::start(engine.clone()),
            engine,
        }
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
        let announce = announce.iter().flat_map(events::announcing).collect();
        group_commit::write_one(&self.engine, statement, announce).await
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
