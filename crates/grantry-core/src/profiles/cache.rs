//! Profiles kept in memory for the calls that need one on every request (the proxy), with their
//! endpoints worked out once, so those calls touch no database and parse no URL of the
//! profile's. Entries go when the profile changes here, and when another node announces a change
//! (see `changes.rs`).

use std::sync::Arc;

use dashmap::DashMap;

use crate::app::Grantry;
use crate::catalog::Endpoints;
use crate::error::{CoreError, CoreResult};
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
}

impl Grantry {
    /// A profile by id and its endpoints, from memory when this node holds them.
    pub(crate) async fn profile_for(&self, id: &ProfileId) -> CoreResult<Arc<KnownProfile>> {
        let bypass = self.cache_bypassed();
        if !bypass && let Some(held) = self.profiles.entries.get(id) {
            return Ok(held.clone());
        }
        let record = self
            .store
            .profile(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("profile `{id}`")))?;
        let endpoints = self.endpoints(&record)?;
        let profile = Arc::new(KnownProfile { record, endpoints });
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
