//! Refresh results the database did not take: kept in memory (see `pending.rs`), served, and
//! written when it takes writes again.

use super::pending::Unwritten;
use crate::app::Grantry;
use crate::ids::ConnectionId;
use crate::store::{StoreError, TokenWrite};

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
        for (id, version, write) in self.pending.waiting() {
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
                self.pending.settled(&id, version);
            }
        }
        self.pending.len()
    }
}
