//! What the webhook pages show, gathered from the services: the endpoints (with a secret shown
//! once, or a message), and one endpoint's recent deliveries. No markup here.

use grantry_core::ids::WebhookId;
use grantry_core::store::{DeliveryRecord, WebhookRecord};
use grantry_core::{CoreError, CoreResult, Grantry};

use crate::console::layout::Flash;

/// What to show at the top of the list: a new secret (shown once), or a message.
pub enum Shown {
    Nothing,
    Secret { id: String, secret: String },
    Flash(Flash),
}

/// Webhooks: the endpoints and the form to add one.
pub struct WebhooksPage {
    pub webhooks: Vec<WebhookRecord>,
    /// A signing secret shown this once: whose (id and words), and the secret.
    pub secret: Option<(String, String)>,
    pub flash: Option<Flash>,
    /// Why the URL was refused (the page answers 422).
    pub error: Option<String>,
}

pub async fn webhooks_page(
    grantry: &Grantry,
    shown: Shown,
    error: Option<String>,
) -> CoreResult<WebhooksPage> {
    let webhooks = grantry.list_webhooks().await?;
    let (flash, secret) = match shown {
        Shown::Nothing => (None, None),
        Shown::Secret { id, secret } => (None, Some((id, secret))),
        Shown::Flash(flash) => (Some(flash), None),
    };
    Ok(WebhooksPage {
        webhooks,
        secret,
        flash,
        error,
    })
}

/// One endpoint's recent deliveries.
pub struct DeliveriesPage {
    pub webhook: WebhookRecord,
    pub items: Vec<DeliveryRecord>,
    pub flash: Option<Flash>,
}

/// The endpoint and its last 100 deliveries; `NotFound` when either says so.
pub async fn deliveries_page(
    grantry: &Grantry,
    id: &WebhookId,
    flash: Option<Flash>,
) -> CoreResult<DeliveriesPage> {
    match (
        grantry.webhook(id).await,
        grantry.webhook_deliveries(id, None, 100).await,
    ) {
        (Ok(webhook), Ok(items)) => Ok(DeliveriesPage {
            webhook,
            items,
            flash,
        }),
        (Err(error @ CoreError::NotFound(_)), _) | (_, Err(error @ CoreError::NotFound(_))) => {
            Err(error)
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    }
}
