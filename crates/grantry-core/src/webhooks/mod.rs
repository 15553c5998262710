//! Webhooks: endpoints that hear about every connection's and profile's life as it happens,
//! signed by the Standard Webhooks specification so any receiver can verify them with a
//! published library.
//!
//! - **Endpoints** are managed by admins (API, CLI, console); their signing secret is shown once,
//!   and rotating it keeps the old one signing beside the new one for a day.
//! - **Messages** are written by the change they report, in its transaction
//!   ([`crate::store::Announcement`]), one outbox row per endpoint that wants them.
//! - **Delivery** ([`delivery`]) runs on every node: rows are claimed with a lease, attempted,
//!   retried with backoff, and kept in order per connection and endpoint.

pub mod delivery;
mod expiry;

pub use expiry::REFRESH_TOKEN_LIFETIME;

use std::time::Duration;

use grantry_crypto::new_webhook_secret;
use serde_json::json;
use url::Url;

use crate::app::{Actor, Grantry};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::events::{EventKind, message};
use crate::ids::{EventId, ProfileId, WebhookId};
use crate::store::{DeliveryRecord, SealedColumn, WebhookRecord};

/// How long a rotated-out secret keeps signing beside the new one.
pub const PREVIOUS_SECRET_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What an admin gives to create an endpoint.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    pub description: String,
    /// Event kinds; empty for every kind.
    pub kinds: Vec<String>,
    /// Profiles by id or name; empty for every profile.
    pub profiles: Vec<String>,
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub kinds: Option<Vec<String>>,
    pub profiles: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret, shown once (on creation and on rotation).
#[derive(Debug)]
pub struct WebhookWithSecret {
    pub webhook: WebhookRecord,
    pub secret: zeroize::Zeroizing<String>,
}

fn valid_url(url: &str) -> CoreResult<String> {
    let parsed = Url::parse(url.trim())
        .map_err(|e| CoreError::invalid("url", format!("not an absolute URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(CoreError::invalid(
            "url",
            "must be an http or https URL with a host",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(CoreError::invalid(
            "url",
            "must not carry credentials; verify deliveries by their signature instead",
        ));
    }
    Ok(parsed.to_string())
}

fn valid_kinds(kinds: &[String]) -> CoreResult<Vec<String>> {
    let mut valid = Vec::with_capacity(kinds.len());
    for kind in kinds {
        match EventKind::parse(kind) {
            Some(k) if k.for_webhooks() => valid.push(k.as_str().to_owned()),
            _ => {
                let known: Vec<&str> = EventKind::FOR_WEBHOOKS.iter().map(|k| k.as_str()).collect();
                return Err(CoreError::invalid(
                    "kinds",
                    format!(
                        "`{kind}` is not an event kind webhooks carry (one of: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    valid.sort();
    valid.dedup();
    Ok(valid)
}

fn valid_description(description: &str) -> CoreResult<String> {
    let description = description.trim();
    if description.chars().count() > 500 {
        return Err(CoreError::invalid("description", "at most 500 characters"));
    }
    Ok(description.to_owned())
}

impl Grantry {
    async fn profile_ids(&self, references: &[String]) -> CoreResult<Vec<ProfileId>> {
        let mut ids = Vec::with_capacity(references.len());
        for reference in references {
            let profile = self.find_profile(reference).await.map_err(|e| match e {
                CoreError::NotFound(what) => {
                    CoreError::invalid("profiles", format!("{what} not found"))
                }
                other => other,
            })?;
            ids.push(profile.id);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    pub async fn create_webhook(
        &self,
        new: NewWebhook,
        actor: &Actor,
    ) -> CoreResult<WebhookWithSecret> {
        let id = WebhookId::generate();
        let now = self.clock.now();
        let secret = new_webhook_secret();
        let webhook = WebhookRecord {
            url: valid_url(&new.url)?,
            description: valid_description(&new.description)?,
            kinds: valid_kinds(&new.kinds)?,
            profiles: self.profile_ids(&new.profiles).await?,
            enabled: new.enabled.unwrap_or(true),
            secret: self.seal(SealedColumn::WebhookSecret, id.as_str(), &secret)?,
            previous_secret: None,
            previous_until: None,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
            id,
        };
        self.store.insert_webhook(&webhook).await?;
        let detail = format!("Webhook {} created for {}", webhook.id, webhook.url);
        self.record(EventKind::WebhookCreated, None, None, actor, detail)
            .await;
        Ok(WebhookWithSecret { webhook, secret })
    }

    pub async fn webhook(&self, id: &WebhookId) -> CoreResult<WebhookRecord> {
        self.store
            .webhook(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("webhook `{id}`")))
    }

    pub async fn list_webhooks(&self) -> CoreResult<Vec<WebhookRecord>> {
        Ok(self.store.webhooks().await?)
    }

    pub async fn update_webhook(
        &self,
        id: &WebhookId,
        changes: WebhookChanges,
        actor: &Actor,
    ) -> CoreResult<WebhookRecord> {
        let mut webhook = self.webhook(id).await?;
        if let Some(url) = &changes.url {
            webhook.url = valid_url(url)?;
        }
        if let Some(description) = &changes.description {
            webhook.description = valid_description(description)?;
        }
        if let Some(kinds) = &changes.kinds {
            webhook.kinds = valid_kinds(kinds)?;
        }
        if let Some(profiles) = &changes.profiles {
            webhook.profiles = self.profile_ids(profiles).await?;
        }
        if let Some(enabled) = changes.enabled {
            if enabled && !webhook.enabled {
                // Enabled again by an admin: what disabled it is over.
                webhook.disabled_reason = None;
                webhook.failing_since = None;
            }
            webhook.enabled = enabled;
        }
        webhook.updated_at = self.clock.now();
        if !self.store.update_webhook(&webhook).await? {
            return Err(CoreError::NotFound(format!("webhook `{id}`")));
        }
        let detail = format!("Webhook {id} updated");
        self.record(EventKind::WebhookUpdated, None, None, actor, detail)
            .await;
        Ok(webhook)
    }

    pub async fn delete_webhook(&self, id: &WebhookId, actor: &Actor) -> CoreResult<()> {
        if !self.store.delete_webhook(id).await? {
            return Err(CoreError::NotFound(format!("webhook `{id}`")));
        }
        let detail = format!("Webhook {id} deleted");
        self.record(EventKind::WebhookDeleted, None, None, actor, detail)
            .await;
        Ok(())
    }

    /// A new signing secret; the current one keeps signing beside it for a day.
    pub async fn rotate_webhook_secret(
        &self,
        id: &WebhookId,
        actor: &Actor,
    ) -> CoreResult<WebhookWithSecret> {
        let mut webhook = self.webhook(id).await?;
        let now = self.clock.now();
        let current = self.open(SealedColumn::WebhookSecret, id.as_str(), &webhook.secret)?;
        let secret = new_webhook_secret();
        webhook.previous_secret = Some(self.seal(
            SealedColumn::WebhookPreviousSecret,
            id.as_str(),
            secrecy::ExposeSecret::expose_secret(&current),
        )?);
        webhook.previous_until = Some(now + PREVIOUS_SECRET_LIFETIME);
        webhook.secret = self.seal(SealedColumn::WebhookSecret, id.as_str(), &secret)?;
        webhook.updated_at = now;
        if !self.store.update_webhook(&webhook).await? {
            return Err(CoreError::NotFound(format!("webhook `{id}`")));
        }
        let detail = format!("Webhook {id}: signing secret rotated (the old one signs for 24 h)");
        self.record(EventKind::WebhookUpdated, None, None, actor, detail)
            .await;
        Ok(WebhookWithSecret { webhook, secret })
    }

    /// Queues a `webhook.test` message for one endpoint; answers its event id.
    pub async fn test_webhook(&self, id: &WebhookId) -> CoreResult<EventId> {
        let webhook = self.webhook(id).await?;
        let event = EventId::generate();
        let now = self.clock.now();
        let data = json!({ "webhook_id": webhook.id, "message": "A test event, sent on request" });
        let body = message(EventKind::WebhookTest, now, data);
        self.store
            .enqueue_delivery(
                &webhook.id,
                &event,
                EventKind::WebhookTest.as_str(),
                &body,
                now,
            )
            .await?;
        Ok(event)
    }

    /// An endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &WebhookId,
        before: Option<i64>,
        limit: u32,
    ) -> CoreResult<Vec<DeliveryRecord>> {
        self.webhook(id).await?;
        Ok(self.store.deliveries(id, before, limit).await?)
    }

    /// Sends a delivered or failed message again (same `webhook-id`).
    pub async fn redeliver(&self, id: &WebhookId, event: &EventId) -> CoreResult<()> {
        self.webhook(id).await?;
        if self.store.redeliver(id, event, self.clock.now()).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!(
                "a delivered or failed message `{event}` for webhook `{id}`"
            )))
        }
    }

    /// The secrets that sign now: the current one, and the previous one for a day after a
    /// rotation.
    pub(crate) fn signing_secrets(
        &self,
        webhook: &WebhookRecord,
        now: Timestamp,
    ) -> CoreResult<Vec<secrecy::SecretString>> {
        let id = webhook.id.as_str();
        let mut secrets = vec![self.open(SealedColumn::WebhookSecret, id, &webhook.secret)?];
        if let (Some(previous), Some(until)) = (&webhook.previous_secret, webhook.previous_until)
            && until > now
        {
            secrets.push(self.open(SealedColumn::WebhookPreviousSecret, id, previous)?);
        }
        Ok(secrets)
    }
}
