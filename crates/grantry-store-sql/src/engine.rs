//! The seam between the queries, written once, and a database: an [`Engine`] runs
//! [`Statement`]s (SQL text with `$1`, `$2`… placeholders and typed values) and answers rows any
//! query can read through [`Columns`]. Each backend crate implements it for its driver, with what
//! truly differs there: pools and health, error classification, transactions, migrations, and
//! the few statements whose SQL differs ([`Dialect`]).
//!
//! Values are bound through a small enum rather than sqlx's generic `Encode` bounds, so the query
//! code needs no driver types and no higher-ranked trait bounds.

use std::fmt;

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::store::StoreResult;

use crate::rows::Columns;

/// One bound value. NULLs are typed: PostgreSQL must know a parameter's type even when it is NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Option<Vec<u8>>),
    Flag(Option<bool>),
}

/// SQL text and the values for its placeholders, in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: &'static str,
    pub values: Vec<Value>,
}

impl Statement {
    pub fn new(sql: &'static str) -> Statement {
        Statement {
            sql,
            values: Vec::new(),
        }
    }

    /// Binds the next placeholder to text (or a NULL of type text).
    pub fn text<'a>(mut self, value: impl Into<Option<&'a str>>) -> Statement {
        self.values
            .push(Value::Text(value.into().map(str::to_owned)));
        self
    }

    /// Binds the next placeholder to an integer (or a NULL of type integer).
    pub fn int(mut self, value: impl Into<Option<i64>>) -> Statement {
        self.values.push(Value::Int(value.into()));
        self
    }

    /// Binds the next placeholder to a moment, kept as an integer of Unix seconds.
    pub fn time(self, value: impl Into<Option<Timestamp>>) -> Statement {
        self.int(value.into().map(Timestamp::unix))
    }

    /// Binds the next placeholder to bytes (sealed values).
    pub fn bytes<'a>(mut self, value: impl Into<Option<&'a [u8]>>) -> Statement {
        self.values
            .push(Value::Bytes(value.into().map(<[u8]>::to_vec)));
        self
    }

    /// Binds the next placeholder to a flag (PostgreSQL BOOLEAN, SQLite INTEGER 0 or 1).
    pub fn flag(mut self, value: bool) -> Statement {
        self.values.push(Value::Flag(Some(value)));
        self
    }
}

/// Values may be sealed secrets or digests: a statement shows only its SQL.
impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statement")
            .field("sql", &self.sql)
            .field("values", &self.values.len())
            .finish()
    }
}

/// Which connection a statement runs on. Backends with one pool ignore it; SQLite sends writes
/// (and reads that must see a write made a moment ago) to its single writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// May run on a reader that sees every committed write.
    Read,
    /// Runs on the writer.
    Write,
}

/// The statements whose SQL differs between databases.
#[derive(Debug)]
pub struct Dialect {
    /// `claim_due`: `$1` now, `$2` owner, `$3` lease end, `$4` limit; answers the leased rows.
    pub claim_due: &'static str,
    /// Reads every admin's id inside a transaction so that a concurrent removal waits for it
    /// (PostgreSQL: `FOR UPDATE`; SQLite's single writer serializes anyway).
    pub lock_admins: &'static str,
    /// `$1` a profile, `$2` a status or NULL for all: reads the ids of its connections (in that
    /// status) inside a transaction, locking them in id order on PostgreSQL, the order in which
    /// batched token writes lock rows, so that a change to many of a profile's connections and a
    /// batch never wait for each other in a circle.
    pub lock_profile_connections: &'static str,
    /// `claim_deliveries`: `$1` now, `$2` owner, `$3` lease end, `$4` limit; answers the
    /// webhook deliveries it leased: pending, due, not leased, of an enabled endpoint, and the
    /// oldest pending of their endpoint and ordering key (PostgreSQL: `SKIP LOCKED`).
    pub claim_deliveries: &'static str,
}

/// A database the queries run on; a clone shares its pools.
#[async_trait]
pub trait Engine: Clone + Send + Sync + fmt::Debug + 'static {
    type Row: Columns + Send + Sync + 'static;
    type Transaction: Transaction<Row = Self::Row>;

    /// Runs a statement on the writer; answers how many rows it changed.
    async fn execute(&self, statement: Statement) -> StoreResult<u64>;
    async fn fetch_all(&self, access: Access, statement: Statement) -> StoreResult<Vec<Self::Row>>;
    async fn fetch_optional(
        &self,
        access: Access,
        statement: Statement,
    ) -> StoreResult<Option<Self::Row>>;
    /// Starts a transaction on the writer.
    async fn begin(&self) -> StoreResult<Self::Transaction>;
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
    fn dialect(&self) -> &'static Dialect;
}

/// Statements that commit together or not at all. Dropped without [`Transaction::commit`], it
/// rolls back.
#[async_trait]
pub trait Transaction: Send {
    type Row: Columns + Send;

    async fn execute(&mut self, statement: Statement) -> StoreResult<u64>;
    async fn fetch_all(&mut self, statement: Statement) -> StoreResult<Vec<Self::Row>>;
    async fn commit(self) -> StoreResult<()>;
}
