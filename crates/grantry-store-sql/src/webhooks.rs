//! Webhook endpoints and their outbox. Messages are queued by `events::announcing`, in the
//! transaction of the change they report; here they are claimed, attempted and listed.

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{EventId, ProfileId, WebhookId};
use grantry_core::store::{
    AttemptWrite, DeliveryRecord, DeliveryState, StoreResult, WebhookRecord, WebhookStore,
};

use crate::rows::{self, list_text};
use crate::{Access, Engine, SqlStore, Statement, Transaction};

/// The columns every write of an endpoint sets, in the order of the placeholders after `$1`.
fn bind_fields(statement: Statement, w: &WebhookRecord) -> Statement {
    statement
        .text(w.url.as_str())
        .text(w.description.as_str())
        .text(list_text(w.kinds.iter().map(String::as_str)).as_str())
        .text(list_text(w.profiles.iter().map(ProfileId::as_str)).as_str())
        .flag(w.enabled)
        .bytes(w.secret.as_slice())
        .bytes(w.previous_secret.as_deref())
        .time(w.previous_until)
        .text(w.disabled_reason.as_deref())
        .time(w.failing_since)
        .time(w.updated_at)
}

#[async_trait]
impl<E: Engine> WebhookStore for SqlStore<E> {
    async fn insert_webhook(&self, w: &WebhookRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO webhooks (id, url, description, kinds, profiles, enabled, secret, \
             previous_secret, previous_until, disabled_reason, failing_since, updated_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .text(w.id.as_str());
        self.engine
            .execute(bind_fields(statement, w).time(w.created_at))
            .await?;
        Ok(())
    }

    async fn update_webhook(&self, w: &WebhookRecord) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE webhooks SET url = $2, description = $3, kinds = $4, profiles = $5, \
             enabled = $6, secret = $7, previous_secret = $8, previous_until = $9, \
             disabled_reason = $10, failing_since = $11, updated_at = $12 WHERE id = $1",
        )
        .text(w.id.as_str());
        Ok(self.engine.execute(bind_fields(statement, w)).await? == 1)
    }

    async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<WebhookRecord>> {
        let statement = Statement::new("SELECT * FROM webhooks WHERE id = $1").text(id.as_str());
        self.one(Access::Read, statement, rows::webhook).await
    }

    async fn webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        let statement = Statement::new("SELECT * FROM webhooks ORDER BY id");
        self.all(Access::Read, statement, rows::webhook).await
    }

    async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
        let mut tx = self.engine.begin().await?;
        tx.execute(
            Statement::new("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
                .text(id.as_str()),
        )
        .await?;
        let deleted = tx
            .execute(Statement::new("DELETE FROM webhooks WHERE id = $1").text(id.as_str()))
            .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn enqueue_delivery(
        &self,
        webhook: &WebhookId,
        event: &EventId,
        kind: &str,
        payload: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, kind, ordering_key, payload, \
             created_at, state, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $1, $4, $5, 'pending', 0, $5)",
        )
        .text(webhook.as_str())
        .text(event.as_str())
        .text(kind)
        .text(payload)
        .time(now);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        owner: &str,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let statement = Statement::new(self.engine.dialect().claim_deliveries)
            .time(now)
            .text(owner)
            .time(until)
            .int(i64::from(limit));
        let mut claimed = self.all(Access::Write, statement, rows::delivery).await?;
        claimed.sort_by_key(|d| d.seq);
        Ok(claimed)
    }

    async fn record_attempts(&self, attempts: &[AttemptWrite]) -> StoreResult<Vec<bool>> {
        let mut tx = self.engine.begin().await?;
        let mut recorded = Vec::with_capacity(attempts.len());
        // Per endpoint: whether an attempt succeeded, and the first failure's time.
        let mut health: Vec<(&WebhookId, bool, Option<Timestamp>)> = Vec::new();
        for a in attempts {
            let finished = (a.state != DeliveryState::Pending).then_some(a.at);
            let statement = Statement::new(
                "UPDATE webhook_deliveries SET state = $3, attempts = attempts + 1, \
                 next_attempt_at = $4, last_status = $5, last_error = $6, \
                 last_latency_ms = $7, finished_at = $8, lease_owner = NULL, \
                 lease_until = NULL WHERE seq = $1 AND lease_owner = $2",
            )
            .int(a.seq)
            .text(a.owner.as_str())
            .text(a.state.as_str())
            .time(a.next_attempt_at)
            .int(a.status)
            .text(a.error.as_deref())
            .int(a.latency_ms)
            .time(finished);
            let done = tx.execute(statement).await? == 1;
            recorded.push(done);
            if !done {
                continue;
            }
            let delivered = a.state == DeliveryState::Delivered;
            match health.iter_mut().find(|(id, _, _)| **id == a.webhook_id) {
                Some(entry) => {
                    entry.1 |= delivered;
                    entry.2 = entry.2.or((!delivered).then_some(a.at));
                }
                None => health.push((&a.webhook_id, delivered, (!delivered).then_some(a.at))),
            }
        }
        // An endpoint is failing from its first failed attempt until its next success.
        for (webhook, succeeded, failed_at) in health {
            let statement = match (succeeded, failed_at) {
                (true, _) => Statement::new(
                    "UPDATE webhooks SET failing_since = NULL \
                     WHERE id = $1 AND failing_since IS NOT NULL",
                )
                .text(webhook.as_str()),
                (false, Some(at)) => Statement::new(
                    "UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
                )
                .text(webhook.as_str())
                .time(at),
                (false, None) => continue,
            };
            tx.execute(statement).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn deliveries(
        &self,
        webhook: &WebhookId,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let statement = Statement::new(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = $1 AND ($2 IS NULL OR seq < $2) \
             ORDER BY seq DESC LIMIT $3",
        )
        .text(webhook.as_str())
        .int(before)
        .int(i64::from(limit));
        self.all(Access::Read, statement, rows::delivery).await
    }

    async fn redeliver(
        &self,
        webhook: &WebhookId,
        event: &EventId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, \
             finished_at = NULL WHERE webhook_id = $1 AND event_id = $2 AND state <> 'pending'",
        )
        .text(webhook.as_str())
        .text(event.as_str())
        .time(now);
        Ok(self.engine.execute(statement).await? == 1)
    }

    async fn purge_deliveries(&self, before: Timestamp) -> StoreResult<u64> {
        let statement = Statement::new(
            "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1",
        )
        .time(before);
        self.engine.execute(statement).await
    }

    async fn disable_webhook(
        &self,
        id: &WebhookId,
        reason: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE webhooks SET enabled = $2, disabled_reason = $3, updated_at = $4 \
             WHERE id = $1 AND enabled = $5",
        )
        .text(id.as_str())
        .flag(false)
        .text(reason)
        .time(now)
        .flag(true);
        Ok(self.engine.execute(statement).await? == 1)
    }
}
