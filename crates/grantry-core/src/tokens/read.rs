//! `GET /v1/connections/{id}/token`: a valid token in one request.
//!
//! Hot path: the in-memory cache answers when the token is fresh (no database, no decryption).
//! Otherwise the caller takes this connection's turn (single flight in the process), looks again,
//! then reads the row and refreshes if the token expires within the margin.

use std::sync::Arc;

use super::cache::CachedToken;
use super::refresh::Trigger;
use crate::app::{Actor, Grantry};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::ConnectionId;
use crate::metrics::ReadOutcome;
use crate::store::{ConnectionRecord, ConnectionStatus, CredentialKind, StoreError};

impl Grantry {
    pub async fn token(&self, id: &ConnectionId) -> CoreResult<Arc<CachedToken>> {
        let margin = crate::clock::seconds(self.settings.refresh.margin);
        if !self.cache_bypassed()
            && let Some(hit) = self.cache.fresh(id, self.clock.now(), margin)
        {
            self.metrics.read(ReadOutcome::Cache);
            return Ok(hit);
        }
        // Boxed, so the future of a read answered from memory stays a few words: the store
        // read and the refresh make a state machine of kilobytes, which every caller's future
        // (a token read's, a proxied call's) would otherwise carry and copy on each request.
        Box::pin(self.token_not_cached(id, margin)).await
    }

    /// A read the cache did not answer: this connection's turn, the cache again (another read
    /// may have just filled it), then the store and perhaps a refresh.
    async fn token_not_cached(
        &self,
        id: &ConnectionId,
        margin: i64,
    ) -> CoreResult<Arc<CachedToken>> {
        if self.cache_bypassed() {
            let _turn = self.flights.enter(id).await;
            return self.token_from_store(id).await;
        }
        let _turn = self.flights.enter(id).await;
        if let Some(hit) = self.cache.fresh(id, self.clock.now(), margin) {
            self.metrics.read(ReadOutcome::Cache);
            return Ok(hit);
        }
        match self.token_from_store(id).await {
            // The database is down, so nothing can have changed this connection: a token that
            // is inside the refresh margin but still valid beats a 503.
            Err(CoreError::Store(StoreError::Unavailable(cause))) => {
                let now = self.clock.now();
                match self.cache.peek(id) {
                    Some(held) if held.expires_at.is_some_and(|at| at > now) => {
                        self.metrics.read(ReadOutcome::Stale);
                        Ok(held)
                    }
                    _ => {
                        self.metrics.read(ReadOutcome::Error);
                        Err(CoreError::Store(StoreError::Unavailable(cause)))
                    }
                }
            }
            Err(error) => {
                self.metrics.read(ReadOutcome::Error);
                Err(error)
            }
            Ok(token) => Ok(token),
        }
    }

    /// Tokens in the in-memory cache and the bytes they hold.
    pub fn token_cache_size(&self) -> (usize, u64) {
        (self.cache.len(), self.cache.bytes())
    }

    pub(crate) async fn connection_row(&self, id: &ConnectionId) -> CoreResult<ConnectionRecord> {
        self.store
            .connection(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("connection `{id}`")))
    }

    async fn token_from_store(&self, id: &ConnectionId) -> CoreResult<Arc<CachedToken>> {
        let row = self.connection_row(id).await?;
        if row.status == ConnectionStatus::NeedsReauth {
            return Err(CoreError::NeedsReauth {
                connection: row.id.clone(),
                reason: row.status_reason.clone().unwrap_or_default(),
            });
        }
        let now = self.clock.now();
        if !row.credential.renewable() && row.expires_at.is_some_and(|at| at <= now) {
            // Past its expiry: never served; the check marks the connection and says why.
            return self.verify_static(&row).await;
        }
        let abandoned = row.credential.renewable() && Self::lease_abandoned(&row, now);
        if !self.needs_refresh(&row, now) && !abandoned {
            self.metrics.read(ReadOutcome::Store);
            return self.cache_row(&row);
        }
        let still_valid = row.expires_at.is_some_and(|expires_at| expires_at > now);
        match self
            .refresh_connection(row.clone(), Trigger::OnDemand)
            .await
        {
            Ok(Some(token)) => {
                self.metrics.read(ReadOutcome::Refreshed);
                Ok(token)
            }
            Ok(None) => {
                self.metrics.read(ReadOutcome::Stale);
                self.cache_row(&row)
            }
            Err(CoreError::ProviderUnavailable { .. } | CoreError::ProfileMisconfigured { .. })
                if still_valid =>
            {
                self.metrics.read(ReadOutcome::Stale);
                self.cache_row(&row)
            }
            Err(error) => Err(error),
        }
    }

    /// Refreshes now, whatever the token's expiry and any backoff.
    pub async fn force_refresh(
        &self,
        id: &ConnectionId,
        actor: &Actor,
    ) -> CoreResult<Arc<CachedToken>> {
        let _turn = self.flights.enter(id).await;
        let row = self.connection_row(id).await?;
        if row.status == ConnectionStatus::NeedsReauth {
            return Err(CoreError::NeedsReauth {
                connection: row.id.clone(),
                reason: row.status_reason.clone().unwrap_or_default(),
            });
        }
        if !row.credential.renewable() {
            // Nothing to renew: ask Bitbucket whether it still takes the credential instead.
            let token = self.verify_static(&row).await?;
            let detail = match row.credential {
                CredentialKind::ApiToken => {
                    "Checked on request: Bitbucket still takes the API token"
                }
                _ => {
                    "Checked on request: the access token has not expired (Bitbucket offers no check every access token may call)"
                }
            };
            self.record(
                EventKind::ConnectionRefreshed,
                Some(&row.profile_id),
                Some(&row.id),
                actor,
                detail.into(),
            )
            .await;
            return Ok(token);
        }
        let (profile, connection) = (row.profile_id.clone(), row.id.clone());
        let token = self
            .refresh_connection(row, Trigger::Forced)
            .await?
            .ok_or_else(|| CoreError::Conflict("another refresh is running; try again".into()))?;
        self.record(
            EventKind::ConnectionRefreshed,
            Some(&profile),
            Some(&connection),
            actor,
            "Refreshed on request".into(),
        )
        .await;
        Ok(token)
    }

    /// Refreshes now (API, console, CLI) and answers the connection as stored; a refresh the
    /// database did not take is an error the caller must show, although its token is served.
    pub async fn refresh_now(
        &self,
        id: &ConnectionId,
        actor: &Actor,
    ) -> CoreResult<ConnectionRecord> {
        self.force_refresh(id, actor).await?;
        if self.write_pending(id) {
            return Err(CoreError::RefreshNotSaved(id.clone()));
        }
        self.connection_row(id).await
    }

    /// Forgets a cached token (another node changed the connection).
    pub fn forget_token(&self, id: &ConnectionId) {
        self.cache.forget(id);
    }

    /// How many tokens are held in memory.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Forgets every cached token and API key (a lost change feed).
    pub fn forget_everything(&self) {
        self.cache.clear();
        self.api_keys.clear();
        self.profiles.clear();
    }
}
