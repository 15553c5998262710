//! What the store keeps for webhooks: endpoints, and the outbox of deliveries to them.

use async_trait::async_trait;

use super::{EventRecord, StoreResult};
use crate::clock::Timestamp;
use crate::ids::{EventId, ProfileId, WebhookId};

/// An audit event and, for the kinds webhooks carry, the message it becomes. A store method
/// given one writes both in the same transaction as the change they report, and only if the
/// change was made: a crash can lose neither without the other.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub event: EventRecord,
    /// The webhook body (`{"type", "timestamp", "data"}`), queued for every enabled endpoint
    /// that wants this kind and profile; `None` for events only the audit trail keeps.
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    /// The event kinds it wants; empty for every kind.
    pub kinds: Vec<String>,
    /// The profiles it hears about; empty for every profile.
    pub profiles: Vec<ProfileId>,
    pub enabled: bool,
    /// Sealed at (`webhooks`, `secret`, id): the `whsec_…` text.
    pub secret: Vec<u8>,
    /// Sealed at (`webhooks`, `previous_secret`, id); signs beside `secret` until
    /// `previous_until`, so receivers can switch without a gap.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_until: Option<Timestamp>,
    /// Why it was disabled, when Grantry disabled it (410 Gone, failing for days).
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed; `None` while deliveries succeed.
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up on: a 4xx answered too often, too old to retry, or the endpoint said 410 Gone.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One message for one endpoint, and how its delivery is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The order messages were written in.
    pub seq: i64,
    pub webhook_id: WebhookId,
    /// Sent as `webhook-id`, the same on every attempt.
    pub event_id: EventId,
    pub kind: String,
    pub ordering_key: String,
    pub payload: String,
    pub created_at: Timestamp,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub finished_at: Option<Timestamp>,
}

/// What one attempt came to; releases the attempt's lease.
#[derive(Debug, Clone)]
pub struct AttemptWrite {
    pub webhook_id: WebhookId,
    pub seq: i64,
    /// Who claimed it: the write is made only while this owner holds the lease.
    pub owner: String,
    pub state: DeliveryState,
    /// When to try again (pending only).
    pub next_attempt_at: Timestamp,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub at: Timestamp,
}

/// Webhook endpoints and their outbox.
#[async_trait]
pub trait WebhookStore {
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()>;
    /// Replaces an endpoint's settings and secrets; false when it no longer exists.
    async fn update_webhook(&self, webhook: &WebhookRecord) -> StoreResult<bool>;
    async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookRecord>>;
    async fn webhooks(&self) -> StoreResult<Vec<WebhookRecord>>;
    /// Deletes an endpoint with its deliveries.
    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool>;
    /// Queues one message for one endpoint (a test event), whatever kinds it wants.
    async fn enqueue_delivery(
        &self,
        webhook: &WebhookId,
        event: &EventId,
        kind: &str,
        payload: &str,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Leases up to `limit` deliveries to `owner` until `until`: see `Dialect::claim_deliveries`.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        owner: &str,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Records attempts, in one transaction, each if its owner still holds the delivery's
    /// lease, and the endpoints' health with them (`failing_since` cleared by a success, set by
    /// a failure); answers, per attempt, whether it was recorded (false: the lease was lost).
    async fn record_attempts(&self, attempts: &[AttemptWrite]) -> StoreResult<Vec<bool>>;

    /// [`WebhookStore::record_attempts`] for one attempt.
    async fn record_attempt(&self, attempt: &AttemptWrite) -> StoreResult<bool> {
        Ok(self
            .record_attempts(std::slice::from_ref(attempt))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }
    /// An endpoint's deliveries, newest first; `before` is a `seq` to continue before.
    async fn deliveries(
        &self,
        webhook: &WebhookId,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Makes a delivery pending and due now again (redeliver); false when there is none.
    async fn redeliver(
        &self,
        webhook: &WebhookId,
        event: &EventId,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Deletes delivered and failed messages that finished before `before`; answers how many.
    async fn purge_deliveries(&self, before: Timestamp) -> StoreResult<u64>;
    /// Disables an endpoint with a reason (410 Gone, failing for days).
    async fn disable_webhook(
        &self,
        id: &WebhookId,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
}
