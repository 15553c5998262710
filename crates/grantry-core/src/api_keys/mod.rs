//! API keys: what applications present to Grantry. Shown once at creation, stored as SHA-256,
//! checked on every `/v1` request through a short-lived in-memory cache.

pub(crate) mod cache;

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::app::{Actor, Grantry};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::ApiKeyId;
use crate::store::{ApiKeyRecord, Role, StoreError};

/// A created key: the record and the key itself, which is shown this once.
pub struct CreatedApiKey {
    pub record: ApiKeyRecord,
    pub secret: SecretString,
}

impl Grantry {
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        actor: &Actor,
    ) -> CoreResult<CreatedApiKey> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::invalid(
                "name",
                "an API key needs a name of 1 to 100 characters",
            ));
        }
        let new = grantry_crypto::new_api_key();
        let record = ApiKeyRecord {
            id: ApiKeyId::generate(),
            name: name.to_owned(),
            role,
            digest: new.digest,
            hint: new.hint,
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.insert_api_key(&record).await?;
        let detail = format!("API key `{}` ({}) created", record.name, role.as_str());
        self.record(EventKind::ApiKeyCreated, None, None, actor, detail)
            .await;
        Ok(CreatedApiKey {
            record,
            secret: new.secret,
        })
    }

    /// The live key a request presented, if any.
    pub async fn authenticate(
        &self,
        presented: &SecretString,
    ) -> CoreResult<Option<Arc<ApiKeyRecord>>> {
        let key = presented.expose_secret();
        if !key.starts_with(grantry_crypto::API_KEY_PREFIX) || key.len() > 200 {
            return Ok(None);
        }
        let digest = grantry_crypto::sha256(key);
        let bypass = self.cache_bypassed();
        let cached = if bypass {
            None
        } else {
            self.api_keys.get(&digest)
        };
        let found = match cached {
            Some(cached) => cached,
            None => match self.store.api_key_by_digest(&hex::encode(digest)).await {
                Ok(stored) => {
                    let stored = stored.map(Arc::new);
                    if !bypass {
                        self.api_keys.put(digest, stored.clone());
                    }
                    stored
                }
                Err(StoreError::Unavailable(cause)) => match self.api_keys.stale(&digest) {
                    Some(known) => known,
                    None => return Err(StoreError::Unavailable(cause).into()),
                },
                Err(error) => return Err(error.into()),
            },
        };
        // The cache and the store are both keyed by the digest: what they answer is this key's.
        Ok(found.filter(|k| k.revoked_at.is_none()))
    }

    pub async fn list_api_keys(&self) -> CoreResult<Vec<ApiKeyRecord>> {
        Ok(self.store.api_keys().await?)
    }

    pub async fn revoke_api_key(&self, id: &ApiKeyId, actor: &Actor) -> CoreResult<()> {
        if !self.store.revoke_api_key(id, self.clock.now()).await? {
            return Err(CoreError::NotFound(format!("active API key `{id}`")));
        }
        self.api_keys.clear();
        self.record(
            EventKind::ApiKeyRevoked,
            None,
            None,
            actor,
            format!("API key `{id}` revoked"),
        )
        .await;
        Ok(())
    }

    /// Forgets cached API keys (another node revoked one).
    pub fn forget_api_keys(&self) {
        self.api_keys.clear();
    }
}
