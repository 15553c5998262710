//! Refresh results the database could not take (it was unavailable). Bitbucket has already
//! rotated the refresh token, so the answer must not be lost: it stays here, its access token is
//! served from memory, and it is written (guarded by the row's version) once the database answers
//! again. A refresh of the same connection writes it first instead of calling Bitbucket.

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

impl Grantry {
    /// How many refresh results wait for the database.
    pub fn pending_write_count(&self) -> usize {
        self.pending.len()
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
            match self.store.write_pending_tokens(&id, version, &write).await {
                Ok(written) => {
                    if !written {
                        tracing::warn!(connection.id = %id, "a kept refresh result was superseded meanwhile");
                    }
                    self.pending
                        .writes
                        .remove_if(&id, |_, (v, _)| *v == version);
                }
                Err(StoreError::Unavailable(_)) => break,
                Err(error) => {
                    tracing::error!(%error, connection.id = %id, "could not write a kept refresh result")
                }
            }
        }
        self.pending.len()
    }
}
