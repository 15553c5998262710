//! Refresh results the database did not take. Bitbucket has already rotated the refresh token,
//! so the answer must not be lost: it stays here, its access token is served from memory, and it
//! is written (guarded by the row's version) as soon as the database takes writes again. A
//! refresh of the same connection writes it first instead of calling Bitbucket.
//!
//! "Did not take" is any failure to write: the database unreachable (an outage), an error (a full
//! disk), or a guarded write that changed nothing although nobody wrote a newer version (files
//! that became read-only, which SQLite reports as 0 rows changed and no error).

use dashmap::DashMap;

use crate::app::Grantry;
use crate::ids::ConnectionId;
use crate::store::{StoreError, TokenWrite};

#[derive(Debug, Default)]
pub(crate) struct PendingWrites {
    writes: DashMap<ConnectionId, (i64, TokenWrite)>,
}

impl PendingWrites {
    pub fn keep(&self, id: ConnectionId, version: i64, write: TokenWrite) {
        self.writes.insert(id, (version, write));
    }

    pub fn holds(&self, id: &ConnectionId) -> bool {
        self.writes.contains_key(id)
    }

    /// The write waiting for this connection, if it was made from the row at `version`.
    pub fn take_for(&self, id: &ConnectionId, version: i64) -> Option<TokenWrite> {
        self.writes
            .remove_if(id, |_, (v, _)| *v == version)
            .map(|(_, (_, write))| write)
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }
}

/// What a guarded write that changed no row means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwritten {
    /// Someone wrote a newer version first: theirs stands.
    Superseded,
    /// The connection was deleted meanwhile.
    Gone,
    /// The row is still at the version the write came from: the database did not take it.
    NotTaken,
}

impl Grantry {
    /// How many refresh results wait for the database.
    pub fn pending_write_count(&self) -> usize {
        self.pending.len()
    }

    /// Whether a refresh result of this connection waits for the database.
    pub fn write_pending(&self, id: &ConnectionId) -> bool {
        self.pending.holds(id)
    }

    /// Finds out why a write guarded by `version` changed nothing.
    pub(crate) async fn why_unwritten(&self, id: &ConnectionId, version: i64) -> Unwritten {
        match self.store.connection(id).await {
            Ok(Some(row)) if row.version != version => Unwritten::Superseded,
            Ok(None) => Unwritten::Gone,
            Ok(Some(_)) | Err(_) => Unwritten::NotTaken,
        }
    }

    /// Keeps a refresh result the database did not take, loudly: it is served from memory and
    /// written later, and until then the node is not ready.
    pub(crate) fn keep_unwritten(
        &self,
        id: &ConnectionId,
        version: i64,
        write: TokenWrite,
        cause: &StoreError,
    ) {
        self.metrics.token_write_failed();
        if matches!(cause, StoreError::Unavailable(_)) {
            tracing::warn!(connection.id = %id, %cause, "database unavailable: new tokens kept in memory until it is back");
        } else {
            tracing::error!(connection.id = %id, %cause, "the database did not take a refresh's new tokens: kept in memory, served, and written when it takes writes again");
        }
        self.pending.keep(id.clone(), version, write);
    }

    /// Writes what the database could not take earlier; answers how many are still waiting.
    pub async fn flush_pending_writes(&self) -> usize {
        let waiting: Vec<(ConnectionId, i64, TokenWrite)> = self
            .pending
            .writes
            .iter()
            .map(|e| (e.key().clone(), e.value().0, e.value().1.clone()))
            .collect();
        for (id, version, write) in waiting {
            let outcome = match self.store.write_pending_tokens(&id, version, &write).await {
                Ok(true) => Some("written"),
                Ok(false) => match self.why_unwritten(&id, version).await {
                    Unwritten::Superseded => Some("superseded"),
                    Unwritten::Gone => Some("gone"),
                    Unwritten::NotTaken => None,
                },
                Err(StoreError::Unavailable(_)) => break,
                Err(error) => {
                    tracing::error!(%error, connection.id = %id, "could not write a kept refresh result");
                    None
                }
            };
            if let Some(outcome) = outcome {
                if outcome != "written" {
                    tracing::warn!(connection.id = %id, outcome, "a kept refresh result was not needed any more");
                }
                self.pending
                    .writes
                    .remove_if(&id, |_, (v, _)| *v == version);
            }
        }
        self.pending.len()
    }
}
