//! API keys this node has checked recently, by digest, and the unknown ones it refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::store::ApiKeyRecord;

/// How long a checked key (or a known-bad one) is believed without asking the store. Revocation
/// on this node is immediate; other nodes learn of it through change notifications, or after this.
const CACHE_FOR: Duration = Duration::from_secs(30);
/// Bound on remembered unknown keys, so a flood of random keys cannot grow memory.
const MAX_NEGATIVE: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct ApiKeyCache {
    /// By the key's SHA-256 (bytes, so a check allocates nothing).
    known: DashMap<[u8; 32], (Option<Arc<ApiKeyRecord>>, Instant)>,
}

impl ApiKeyCache {
    pub fn get(&self, digest: &[u8; 32]) -> Option<Option<Arc<ApiKeyRecord>>> {
        let entry = self.known.get(digest)?;
        (entry.1.elapsed() < CACHE_FOR).then(|| entry.0.clone())
    }

    /// What was last known of a key, however old: used only while the database is unreachable
    /// (nothing can be revoked then).
    pub fn stale(&self, digest: &[u8; 32]) -> Option<Option<Arc<ApiKeyRecord>>> {
        self.known.get(digest).map(|entry| entry.0.clone())
    }

    pub fn put(&self, digest: [u8; 32], key: Option<Arc<ApiKeyRecord>>) {
        if key.is_none() && self.known.len() >= MAX_NEGATIVE {
            self.known.retain(|_, (k, _)| k.is_some());
        }
        self.known.insert(digest, (key, Instant::now()));
    }

    pub fn clear(&self) {
        self.known.clear();
    }
}
