//! Creating, editing, listing and deleting profiles.

use secrecy::{ExposeSecret, SecretString};

use super::validate;
use crate::app::{Actor, Grantry};
use crate::catalog::{CredentialGuide, ProviderKind, SetupGuide, credential_guide, setup_guide};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::ProfileId;
use crate::store::SealedColumn;
use crate::store::{ProfileRecord, StoreError};

/// A new profile, as an admin fills it in.
pub struct NewProfile {
    pub name: String,
    pub description: String,
    pub provider: ProviderKind,
    pub key: String,
    pub secret: SecretString,
    pub base_url: Option<String>,
    pub required_scopes: Vec<String>,
    pub allowed_return_urls: Vec<String>,
    pub private: bool,
    /// Connections wait for the application's confirmation (see `connect::confirm`).
    pub confirm_connections: bool,
}

/// An edit: `None` leaves a field as it is. A new secret is optional (empty keeps the old one).
#[derive(Default)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub provider: Option<ProviderKind>,
    pub key: Option<String>,
    pub secret: Option<SecretString>,
    pub base_url: Option<Option<String>>,
    pub required_scopes: Option<Vec<String>>,
    pub allowed_return_urls: Option<Vec<String>>,
    pub private: Option<bool>,
    pub confirm_connections: Option<bool>,
}

fn name_taken(name: &str) -> CoreError {
    CoreError::Conflict(format!("a profile named `{name}` already exists"))
}

impl Grantry {
    pub async fn create_profile(
        &self,
        new: NewProfile,
        actor: &Actor,
    ) -> CoreResult<ProfileRecord> {
        let spec = new.provider.spec();
        validate::client_secret(new.secret.expose_secret())?;
        let id = ProfileId::generate();
        let now = self.clock.now();
        let profile = ProfileRecord {
            name: validate::name(&new.name)?,
            description: validate::description(&new.description)?,
            provider: new.provider,
            client_id: validate::client_id(&new.key)?,
            client_secret: self.seal(
                SealedColumn::ProfileSecret,
                id.as_str(),
                new.secret.expose_secret(),
            )?,
            base_url: validate::base_url(spec, new.base_url.as_deref())?,
            required_scopes: validate::scopes(spec, &new.required_scopes)?.to_vec(),
            allowed_return_urls: validate::return_urls(&new.allowed_return_urls)?,
            private: validate::private_flag(spec, new.private)?,
            confirm_connections: new.confirm_connections,
            problem: None,
            problem_at: None,
            created_at: now,
            updated_at: now,
            id,
        };
        match self.store.insert_profile(&profile).await {
            Err(StoreError::Conflict(_)) => return Err(name_taken(&profile.name)),
            other => other?,
        }
        let detail = format!("Profile `{}` ({}) created", profile.name, profile.provider);
        self.record(
            EventKind::ProfileCreated,
            Some(&profile.id),
            None,
            actor,
            detail,
        )
        .await;
        Ok(profile)
    }

    /// A profile by id (`prf_…`) or by name.
    pub async fn find_profile(&self, reference: &str) -> CoreResult<ProfileRecord> {
        let found = match ProfileId::parse(reference) {
            Ok(id) => self.store.profile(&id).await?,
            Err(_) => self.store.profile_by_name(reference.trim()).await?,
        };
        found.ok_or_else(|| CoreError::NotFound(format!("profile `{reference}`")))
    }

    pub async fn list_profiles(&self) -> CoreResult<Vec<ProfileRecord>> {
        Ok(self.store.profiles().await?)
    }

    pub async fn update_profile(
        &self,
        reference: &str,
        changes: ProfileChanges,
        actor: &Actor,
    ) -> CoreResult<ProfileRecord> {
        let current = self.find_profile(reference).await?;
        let updated = self.apply_changes(&current, changes)?;
        // A new secret for a refused client counts as the fix; if Bitbucket still refuses it,
        // the next refusal announces the profile misconfigured again.
        let fixed = current.problem.is_some() && updated.problem.is_none();
        let announce: Vec<_> = fixed
            .then(|| self.about_profile(EventKind::ProfileRecovered, &updated, None))
            .into_iter()
            .collect();
        match self.store.update_profile(&updated, &announce).await {
            Err(StoreError::Conflict(_)) => return Err(name_taken(&updated.name)),
            Ok(false) => return Err(CoreError::NotFound(format!("profile `{reference}`"))),
            other => {
                other?;
            }
        }
        self.cache.forget_profile(&updated.id);
        self.profiles.forget(&updated.id);
        if fixed {
            // The client was fixed: connections backing off because of it may try again now.
            self.store
                .retry_failing_now(&updated.id, self.clock.now())
                .await?;
        }
        let detail = format!("Profile `{}` edited", updated.name);
        self.record(
            EventKind::ProfileUpdated,
            Some(&updated.id),
            None,
            actor,
            detail,
        )
        .await;
        Ok(updated)
    }

    fn apply_changes(
        &self,
        current: &ProfileRecord,
        changes: ProfileChanges,
    ) -> CoreResult<ProfileRecord> {
        if let Some(provider) = changes.provider.filter(|p| *p != current.provider) {
            return Err(CoreError::invalid(
                "provider",
                format!(
                    "a {} profile cannot become {provider}; create a new profile instead",
                    current.provider
                ),
            ));
        }
        let spec = current.provider.spec();
        let mut next = current.clone();
        if let Some(name) = changes.name {
            next.name = validate::name(&name)?;
        }
        if let Some(description) = changes.description {
            next.description = validate::description(&description)?;
        }
        if let Some(key) = changes.key {
            next.client_id = validate::client_id(&key)?;
        }
        if let Some(secret) = changes.secret.filter(|s| !s.expose_secret().is_empty()) {
            validate::client_secret(secret.expose_secret())?;
            next.client_secret = self.seal(
                SealedColumn::ProfileSecret,
                next.id.as_str(),
                secret.expose_secret(),
            )?;
            next.problem = None;
            next.problem_at = None;
        }
        if let Some(base_url) = changes.base_url {
            next.base_url = validate::base_url(spec, base_url.as_deref())?;
        }
        if let Some(scopes) = changes.required_scopes {
            next.required_scopes = validate::scopes(spec, &scopes)?.to_vec();
        }
        if let Some(urls) = changes.allowed_return_urls {
            next.allowed_return_urls = validate::return_urls(&urls)?;
        }
        if let Some(private) = changes.private {
            next.private = validate::private_flag(spec, private)?;
        }
        if let Some(confirm) = changes.confirm_connections {
            next.confirm_connections = confirm;
        }
        next.updated_at = self.clock.now();
        Ok(next)
    }

    /// Deletes a profile with its connections and their tokens; answers how many connections went.
    pub async fn delete_profile(
        &self,
        reference: &str,
        actor: &Actor,
    ) -> CoreResult<(ProfileRecord, u64)> {
        let profile = self.find_profile(reference).await?;
        let removed = self
            .store
            .delete_profile(&profile.id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("profile `{reference}`")))?;
        self.cache.forget_profile(&profile.id);
        self.profiles.forget(&profile.id);
        let detail = format!(
            "Profile `{}` deleted with {removed} connection(s)",
            profile.name
        );
        self.record(
            EventKind::ProfileDeleted,
            Some(&profile.id),
            None,
            actor,
            detail,
        )
        .await;
        Ok((profile, removed))
    }

    /// How to make an API token or access token that does what this profile needs.
    pub fn credential_guide(&self, profile: &ProfileRecord) -> CredentialGuide {
        let spec = profile.provider.spec();
        let required = spec
            .parse_scopes(profile.required_scopes.iter().map(String::as_str))
            .unwrap_or_else(|_| spec.scopes.empty());
        credential_guide(profile.provider, &required)
    }

    /// The callback URL and what to configure at the provider for this profile.
    pub fn setup_guide(&self, profile: &ProfileRecord) -> SetupGuide {
        let spec = profile.provider.spec();
        let required = spec
            .parse_scopes(profile.required_scopes.iter().map(String::as_str))
            .unwrap_or_else(|_| spec.scopes.empty());
        setup_guide(
            profile.provider,
            &required,
            &self.settings.callback_url(),
            profile.private,
        )
    }
}
