//! Refresh results the database did not take. Bitbucket has already rotated the refresh token,
//! so the answer must not be lost: it stays here, its access token is served from memory, and it
//! is written (guarded by the row's version) as soon as the database takes writes again. A
//! refresh of the same connection writes it first instead of calling Bitbucket.
//!
//! "Did not take" is any failure to write: the database unreachable (an outage), an error (a full
//! disk), or a guarded write that changed nothing although nobody wrote a newer version (files
//! that became read-only, which SQLite reports as 0 rows changed and no error).

use dashmap::DashMap;

use crate::ids::ConnectionId;
use crate::store::TokenWrite;

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

    /// Every kept write, copied out, so the store can be called without holding the map.
    pub fn waiting(&self) -> Vec<(ConnectionId, i64, TokenWrite)> {
        self.writes
            .iter()
            .map(|e| (e.key().clone(), e.value().0, e.value().1.clone()))
            .collect()
    }

    /// Drops a kept write once it is written (or no longer needed), unless a newer one replaced it.
    pub fn settled(&self, id: &ConnectionId, version: i64) {
        self.writes.remove_if(id, |_, (v, _)| *v == version);
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
