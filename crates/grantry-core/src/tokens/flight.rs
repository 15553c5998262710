//! Single flight per connection within this process: concurrent reads of one expiring connection
//! queue behind one lock, so only the first calls the provider and the rest find the cache fresh.
//! Across processes the lease in the row does the same job; this only spares the database.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::ids::ConnectionId;

#[derive(Debug, Default)]
pub struct Flights {
    locks: DashMap<ConnectionId, Arc<Mutex<()>>>,
}

impl Flights {
    /// Waits for this connection's turn.
    pub async fn enter(&self, id: &ConnectionId) -> OwnedMutexGuard<()> {
        let lock = self.locks.entry(id.clone()).or_default().clone();
        lock.lock_owned().await
    }

    /// Forgets a deleted connection's lock.
    pub fn forget(&self, id: &ConnectionId) {
        self.locks.remove(id);
    }
}
