//! The lease that makes a refresh happen once, guarded token writes, outcomes, and the
//! refresher's claims. Every lease change is a single `UPDATE … WHERE`, atomic on its own.

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{ConnectionRecord, OutcomeWrite, RefreshStore, StoreResult, TokenWrite};

use crate::rows::{self, scopes_text};
use crate::{Access, Engine, SqlStore, Statement, Transaction, events};

impl<E: Engine> SqlStore<E> {
    /// Writes new tokens if the row is at `version` and, when `owner` is given, leased by it;
    /// bumps the version and releases the lease.
    async fn write_if(
        &self,
        id: &ConnectionId,
        version: i64,
        owner: Option<&str>,
        w: &TokenWrite,
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE connections SET access_token = $4, refresh_token = COALESCE($5, refresh_token), \
             refresh_token_at = $6, expires_at = $7, granted_scopes = $8, status = $9, \
             status_reason = $10, refreshed_at = $11, next_refresh_at = $12, failures = 0, \
             last_error = NULL, version = version + 1, lease_owner = NULL, lease_until = NULL, \
             updated_at = $11, \
             expiry_warned_at = CASE WHEN $5 IS NULL THEN expiry_warned_at ELSE NULL END \
             WHERE id = $1 AND version = $2 AND ($3 IS NULL OR lease_owner = $3)",
        )
        .text(id.as_str())
        .int(version)
        .text(owner)
        .bytes(w.access_token.as_slice())
        .bytes(w.refresh_token.as_deref())
        .time(w.refresh_token_at)
        .time(w.expires_at)
        .text(scopes_text(&w.granted_scopes).as_str())
        .text(w.status.as_str())
        .text(w.status_reason.as_deref())
        .time(w.refreshed_at)
        .time(w.next_refresh_at);
        let announce = w.announce.iter().flat_map(events::announcing).collect();
        let changed = self
            .token_writes
            .write(id.as_str(), statement, announce)
            .await?;
        Ok(changed == 1)
    }
}

#[async_trait]
impl<E: Engine> RefreshStore for SqlStore<E> {
    async fn take_lease(
        &self,
        id: &ConnectionId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let statement = Statement::new(
            "UPDATE connections SET lease_owner = $2, lease_until = $3 \
             WHERE id = $1 AND (lease_owner IS NULL OR lease_until < $4 OR lease_owner = $2) \
             RETURNING *",
        )
        .text(id.as_str())
        .text(owner)
        .time(until)
        .time(now);
        self.one(Access::Write, statement, rows::connection).await
    }

    async fn release_lease(&self, id: &ConnectionId, owner: &str) -> StoreResult<()> {
        let statement = Statement::new(
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2",
        )
        .text(id.as_str())
        .text(owner);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn hand_back(
        &self,
        id: &ConnectionId,
        owner: &str,
        due_by: Timestamp,
    ) -> StoreResult<()> {
        let statement = Statement::new(
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL, \
             next_refresh_at = CASE WHEN next_refresh_at IS NULL OR next_refresh_at > $3 \
             THEN $3 ELSE next_refresh_at END \
             WHERE id = $1 AND lease_owner = $2",
        )
        .text(id.as_str())
        .text(owner)
        .time(due_by);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn write_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        write: &TokenWrite,
    ) -> StoreResult<bool> {
        self.write_if(id, version, Some(owner), write).await
    }

    async fn write_pending_tokens(
        &self,
        id: &ConnectionId,
        version: i64,
        write: &TokenWrite,
    ) -> StoreResult<bool> {
        self.write_if(id, version, None, write).await
    }

    async fn record_outcome(
        &self,
        id: &ConnectionId,
        owner: &str,
        o: &OutcomeWrite,
    ) -> StoreResult<()> {
        let statement = Statement::new(
            "UPDATE connections SET status = $3, status_reason = $4, failures = $5, \
             last_error = $6, next_refresh_at = $7, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND (lease_owner = $2 OR lease_owner IS NULL) AND version = $8",
        )
        .text(id.as_str())
        .text(owner)
        .text(o.status.as_str())
        .text(o.status_reason.as_deref())
        .int(o.failures)
        .text(o.last_error.as_deref())
        .time(o.next_refresh_at)
        .int(o.version);
        self.change(statement, &o.announce).await?;
        Ok(())
    }

    async fn retry_failing_now(&self, profile: &ProfileId, now: Timestamp) -> StoreResult<u64> {
        let mut tx = self.engine.begin().await?;
        // Locked first, in the order token writes lock them.
        let lock = Statement::new(self.engine.dialect().lock_profile_connections)
            .text(profile.as_str())
            .text("failing");
        tx.fetch_all(lock).await?;
        let statement = Statement::new(
            "UPDATE connections SET next_refresh_at = $2 \
             WHERE profile_id = $1 AND status = 'failing'",
        )
        .text(profile.as_str())
        .time(now);
        let changed = tx.execute(statement).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let statement = Statement::new(self.engine.dialect().claim_due)
            .time(now)
            .text(owner)
            .time(until)
            .int(i64::from(limit));
        self.all(Access::Write, statement, rows::connection).await
    }
}
