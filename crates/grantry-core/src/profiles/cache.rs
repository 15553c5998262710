//! Profiles kept in memory for the calls that need one on every request (the proxy), so those
//! calls touch no database. Entries go when the profile changes here, and when another node
//! announces a change (see `changes.rs`).

use std::sync::Arc;

use dashmap::DashMap;

use crate::app::Grantry;
use crate::error::{CoreError, CoreResult};
use crate::ids::ProfileId;
use crate::store::ProfileRecord;

#[derive(Debug, Default)]
pub(crate) struct ProfileCache {
    entries: DashMap<ProfileId, Arc<ProfileRecord>>,
}

impl ProfileCache {
    pub fn forget(&self, id: &ProfileId) {
        self.entries.remove(id);
    }

    pub fn clear(&self) {
        self.entries.clear();
    }
}

impl Grantry {
    /// A profile by id, from memory when this node holds it.
    pub(crate) async fn profile_for(&self, id: &ProfileId) -> CoreResult<Arc<ProfileRecord>> {
        let bypass = self.cache_bypassed();
        if !bypass && let Some(held) = self.profiles.entries.get(id) {
            return Ok(held.clone());
        }
        let profile = self
            .store
            .profile(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("profile `{id}`")))?;
        let profile = Arc::new(profile);
        if !bypass {
            self.profiles.entries.insert(id.clone(), profile.clone());
        }
        Ok(profile)
    }

    /// Forgets a profile another node changed or deleted.
    pub fn forget_profile(&self, id: &ProfileId) {
        self.profiles.forget(id);
    }
}
