//! Application connection profiles: one OAuth client (key, secret) for one provider, with what it
//! needs and where users may be sent back to.

pub(crate) mod cache;
mod service;
pub mod validate;

use cache::KnownProfile;

pub use service::{NewProfile, ProfileChanges};

use std::sync::Arc;

use secrecy::SecretString;
use url::Url;

use crate::app::Grantry;
use crate::catalog::{Endpoints, ProviderSpec};
use crate::error::{CoreError, CoreResult};
use crate::ids::ProfileId;
use crate::provider::ProviderTarget;
use crate::store::ProfileRecord;
use crate::store::SealedColumn;

/// A profile's OAuth client, its secret opened, ready for provider calls.
pub(crate) struct OAuthClient {
    pub spec: &'static ProviderSpec,
    pub endpoints: Endpoints,
    pub client_id: String,
    pub secret: SecretString,
    pub scopes: Vec<String>,
    pub callback_url: String,
}

impl OAuthClient {
    pub fn target(&self) -> ProviderTarget<'_> {
        ProviderTarget {
            spec: self.spec,
            endpoints: &self.endpoints,
            client_id: &self.client_id,
            client_secret: &self.secret,
            redirect_uri: &self.callback_url,
            scopes: &self.scopes,
        }
    }
}

impl Grantry {
    /// Where the profile's provider answers; needs no secret.
    pub(crate) fn endpoints(&self, profile: &ProfileRecord) -> CoreResult<Endpoints> {
        let base = profile
            .base_url
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| CoreError::invalid("base_url", e.to_string()))?;
        Endpoints::of(profile.provider, &self.settings.cloud, base.as_ref())
            .ok_or_else(|| CoreError::invalid("base_url", "the profile has no base URL"))
    }

    pub(crate) fn oauth_client(&self, profile: &ProfileRecord) -> CoreResult<OAuthClient> {
        self.oauth_client_at(profile, self.endpoints(profile)?)
    }

    /// The OAuth client of a profile whose endpoints are already known (a cached profile).
    pub(crate) fn oauth_client_at(
        &self,
        profile: &ProfileRecord,
        endpoints: Endpoints,
    ) -> CoreResult<OAuthClient> {
        let secret = self.open(
            SealedColumn::ProfileSecret,
            profile.id.as_str(),
            &profile.client_secret,
        )?;
        Ok(OAuthClient {
            spec: profile.provider.spec(),
            endpoints,
            client_id: profile.client_id.clone(),
            secret,
            scopes: profile.required_scopes.clone(),
            callback_url: self.settings.callback_url(),
        })
    }
}

impl Grantry {
    /// A profile by id and its endpoints, from memory when this node holds them.
    pub(crate) async fn profile_for(&self, id: &ProfileId) -> CoreResult<Arc<KnownProfile>> {
        let bypass = self.cache_bypassed();
        if !bypass && let Some(held) = self.profiles.get(id) {
            return Ok(held);
        }
        let record = self
            .store
            .profile(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("profile `{id}`")))?;
        let endpoints = self.endpoints(&record)?;
        let profile = Arc::new(KnownProfile { record, endpoints });
        if !bypass {
            self.profiles.put(id.clone(), profile.clone());
        }
        Ok(profile)
    }

    /// Forgets a profile another node changed or deleted.
    pub fn forget_profile(&self, id: &ProfileId) {
        self.profiles.forget(id);
    }
}
