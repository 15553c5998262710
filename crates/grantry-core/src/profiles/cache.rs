//! Profiles kept in memory for the calls that need one on every request (the proxy), with their
//! endpoints worked out once, so those calls touch no database and parse no URL of the
//! profile's. Entries go when the profile changes here, and when another node announces a change
//! (see `changes.rs`).

use std::sync::Arc;

use dashmap::DashMap;

use crate::catalog::Endpoints;
use crate::ids::ProfileId;
use crate::store::ProfileRecord;

/// A profile and the provider's addresses it implies.
#[derive(Debug)]
pub(crate) struct KnownProfile {
    pub record: ProfileRecord,
    pub endpoints: Endpoints,
}

#[derive(Debug, Default)]
pub(crate) struct ProfileCache {
    entries: DashMap<ProfileId, Arc<KnownProfile>>,
}

impl ProfileCache {
    pub fn forget(&self, id: &ProfileId) {
        self.entries.remove(id);
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    pub fn get(&self, id: &ProfileId) -> Option<Arc<KnownProfile>> {
        self.entries.get(id).map(|held| held.clone())
    }

    pub fn put(&self, id: ProfileId, profile: Arc<KnownProfile>) {
        self.entries.insert(id, profile);
    }
}
