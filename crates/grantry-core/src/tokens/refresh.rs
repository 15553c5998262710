//! Refreshing one connection, exactly once across every task and node.
//!
//! The lease in the row is what makes it exactly once: whoever holds it (an owner name unique to
//! one attempt) is the only one calling the provider for that connection. After taking it the row
//! is read again, so a refresh that another node just finished is used, not repeated. New tokens,
//! the rotated refresh token above all, are written in one statement guarded by the row's version
//! and the lease, before any caller sees them. If the process dies after the provider answered but
//! before that write, the lease runs out within seconds and the next refresh presents the stored
//! refresh token again, which Bitbucket still accepts inside its grace period for used tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitbucket_facts::ScopeSet;
use secrecy::ExposeSecret;

use super::cache::{CachedToken, TokenState, effective_margin};
use super::pending::Unwritten;
use super::schedule;
use crate::app::{Actor, Grantry};
use crate::catalog::{FailureClass, missing_scope_advice};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::metrics::RefreshOutcome;
use crate::provider::{ProviderFailure, TokenGrant, classify};
use crate::store::SealedColumn;
use crate::store::{
    Announcement, ConnectionRecord, ConnectionStatus, CredentialKind, OutcomeWrite, ProfileRecord,
    StoreError, TokenWrite,
};

/// Why a refresh runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A token read found the token expiring.
    OnDemand,
    /// The background refresher found the connection due.
    Background,
    /// Someone asked for it (API, CLI, console); ignores backoff.
    Forced,
}

/// How often a waiter looks at a row another owner is refreshing.
const POLL: Duration = Duration::from_millis(50);

impl Grantry {
    /// Whether a connection's token should be renewed before it is handed out.
    pub(crate) fn needs_refresh(&self, row: &ConnectionRecord, now: Timestamp) -> bool {
        row.credential.renewable()
            && row.status != ConnectionStatus::NeedsReauth
            && row.expires_at.is_some_and(|expires_at| {
                let margin = effective_margin(
                    crate::clock::seconds(self.settings.refresh.margin),
                    row.refreshed_at,
                    expires_at,
                );
                expires_at - now <= margin
            })
    }

    /// Whether the row's lease ran out without being released: its holder died mid-refresh and
    /// may have presented the refresh token, so only Bitbucket's grace period is left to present
    /// it again (the refresher claims such rows first; a read that finds one refreshes too).
    pub(crate) fn lease_abandoned(row: &ConnectionRecord, now: Timestamp) -> bool {
        row.lease_owner.is_some() && row.lease_until.is_some_and(|until| until < now)
    }

    /// Opens a row's access token and caches it (unless the connection needs reauthorization).
    pub(crate) fn cache_row(&self, row: &ConnectionRecord) -> CoreResult<Arc<CachedToken>> {
        let access_token = self.open(
            SealedColumn::AccessToken,
            row.id.as_str(),
            &row.access_token,
        )?;
        let token = Arc::new(CachedToken::new(row, access_token, TokenState::of(row)));
        if row.status != ConnectionStatus::NeedsReauth && !self.cache_bypassed() {
            self.cache.put(token.clone());
        }
        Ok(token)
    }

    /// Refreshes a connection unless someone else just did. `Ok(None)`: another owner is
    /// refreshing right now and the current token is still valid, so use it.
    pub(crate) async fn refresh_connection(
        &self,
        start: ConnectionRecord,
        trigger: Trigger,
    ) -> CoreResult<Option<Arc<CachedToken>>> {
        let mut row = start;
        loop {
            let now = self.clock.now();
            if let Some(retry_at) = self.backing_off(&row, now, trigger) {
                return Err(self.still_backing_off(&row, retry_at - now).await);
            }
            let owner = self.lease_owner("read");
            let until = now + self.settings.refresh.lease;
            if let Some(leased) = self.store.take_lease(&row.id, &owner, until, now).await? {
                if leased.version != row.version && !self.needs_refresh(&leased, now) {
                    self.store.release_lease(&leased.id, &owner).await?;
                    return self.cache_row(&leased).map(Some);
                }
                return self.refresh_leased(leased, &owner, trigger).await.map(Some);
            }
            if trigger != Trigger::Forced && row.expires_at.is_some_and(|e| e > now) {
                return Ok(None);
            }
            match self.wait_for_lease(&row).await? {
                Some(updated) if updated.version != row.version => {
                    return self.cache_row(&updated).map(Some);
                }
                Some(updated) => row = updated,
                None => return Err(CoreError::NotFound(format!("connection `{}`", row.id))),
            }
        }
    }

    /// Why a backing-off connection is not refreshed now: its profile's client is refused, or the
    /// provider was unavailable.
    async fn still_backing_off(&self, row: &ConnectionRecord, wait: i64) -> CoreError {
        if let Ok(Some(profile)) = self.store.profile(&row.profile_id).await
            && let Some(problem) = profile.problem
        {
            return CoreError::ProfileMisconfigured {
                profile: profile.id,
                problem,
            };
        }
        CoreError::ProviderUnavailable {
            retry_after: wait.max(1) as u64,
            cause: row
                .last_error
                .clone()
                .unwrap_or_else(|| "earlier failures".into()),
        }
    }

    /// The time to wait for, when the connection is backing off after failures.
    fn backing_off(
        &self,
        row: &ConnectionRecord,
        now: Timestamp,
        trigger: Trigger,
    ) -> Option<Timestamp> {
        let waiting = trigger != Trigger::Forced && row.failures > 0;
        row.next_refresh_at.filter(|at| waiting && *at > now)
    }

    /// Waits until another owner's lease ends or the row changes; at most one lease period.
    async fn wait_for_lease(
        &self,
        seen: &ConnectionRecord,
    ) -> CoreResult<Option<ConnectionRecord>> {
        let deadline = Instant::now() + self.settings.refresh.lease + Duration::from_secs(1);
        loop {
            tokio::time::sleep(POLL).await;
            let Some(row) = self.store.connection(&seen.id).await? else {
                return Ok(None);
            };
            let now = self.clock.now();
            let lease_free = row.lease_until.is_none_or(|until| until < now);
            if row.version != seen.version || lease_free || Instant::now() > deadline {
                return Ok(Some(row));
            }
        }
    }

    /// With the lease held by `owner`: call the provider, write, update the cache.
    pub(crate) async fn refresh_leased(
        &self,
        row: ConnectionRecord,
        owner: &str,
        trigger: Trigger,
    ) -> CoreResult<Arc<CachedToken>> {
        let id = row.id.clone();
        let result = self.refresh_leased_inner(row, owner, trigger).await;
        if result.is_err() {
            // A no-op when the outcome was recorded (that releases the lease too). Otherwise the
            // attempt stopped short (the row may have been abandoned by a node that presented
            // the refresh token): due again within a lease's time.
            let due_by = self.clock.now() + self.settings.refresh.lease;
            if let Err(error) = self.store.hand_back(&id, owner, due_by).await {
                tracing::warn!(%error, connection.id = %id, "could not release a refresh lease");
            }
        }
        result
    }

    async fn refresh_leased_inner(
        &self,
        row: ConnectionRecord,
        owner: &str,
        trigger: Trigger,
    ) -> CoreResult<Arc<CachedToken>> {
        // From memory when this node holds it: a refresh wave reads the same profile thousands
        // of times, and changes to it reach every node's cache (see `changes.rs`).
        let known = self.profile_for(&row.profile_id).await?;
        let profile = &known.record;
        if let Some(kept) = self.pending.take_for(&row.id, row.version) {
            // An answer Bitbucket gave that the database did not take: write it, never ask
            // Bitbucket again with the refresh token it retired.
            return self.write_kept(&row, owner, kept).await;
        }
        let client = self.oauth_client_at(profile, known.endpoints.clone())?;
        let started = Instant::now();
        let answer = match row.credential {
            CredentialKind::Oauth2 => {
                let Some(sealed) = &row.refresh_token else {
                    let failure = ProviderFailure::OAuth {
                        status: 0,
                        error: "invalid_grant".into(),
                        description: Some("no refresh token is stored".into()),
                    };
                    return Err(self.refresh_failed(&row, profile, owner, failure).await);
                };
                let refresh_token =
                    self.open(SealedColumn::RefreshToken, row.id.as_str(), sealed)?;
                self.provider
                    .refresh(&client.target(), &refresh_token)
                    .await
            }
            CredentialKind::ClientCredentials => {
                self.provider.client_credentials(&client.target()).await
            }
            CredentialKind::ApiToken | CredentialKind::AccessToken => {
                let (token, _) = self.check_static_leased(&row, profile, owner).await?;
                return Ok(token);
            }
        };
        self.metrics.provider_call(started.elapsed());
        match answer {
            Ok(grant) => {
                self.failpoint("after-provider-refresh");
                self.persist_grant(&row, profile, grant, owner, trigger)
                    .await
            }
            Err(failure) => Err(self.refresh_failed(&row, profile, owner, failure).await),
        }
    }

    /// Writes a refresh result kept in memory under the lease; if the database still does not
    /// take it, keeps it and answers its token from memory.
    async fn write_kept(
        &self,
        row: &ConnectionRecord,
        owner: &str,
        kept: TokenWrite,
    ) -> CoreResult<Arc<CachedToken>> {
        let failure = match self
            .store
            .write_tokens(&row.id, row.version, owner, &kept)
            .await
        {
            Ok(true) => None,
            Ok(false) => match self.why_unwritten(&row.id, row.version).await {
                Unwritten::NotTaken => Some(StoreError::Other("the write changed no row".into())),
                Unwritten::Superseded | Unwritten::Gone => None,
            },
            Err(error) => Some(error),
        };
        let Some(cause) = failure else {
            let current = self.connection_row(&row.id).await?;
            return self.cache_row(&current);
        };
        self.keep_unwritten(&row.id, row.version, kept, &cause);
        self.hand_back_unwritten(row, owner).await;
        match self.cache.peek(&row.id) {
            Some(held) if held.is_valid(self.clock.now()) => Ok(held),
            _ => Err(CoreError::Store(cause)),
        }
    }

    /// After a refresh Bitbucket answered but the database did not take: the answer is kept in
    /// this node's memory and written when the database takes writes. Should this node die
    /// first, the row is due within a lease's time, so another node presents the stored (used)
    /// refresh token again inside Bitbucket's grace. While the database takes no writes at all,
    /// neither this nor any claim goes through, so nobody presents it meanwhile.
    async fn hand_back_unwritten(&self, row: &ConnectionRecord, owner: &str) {
        let due_by = self.clock.now() + self.settings.refresh.lease;
        let _ = self.store.hand_back(&row.id, owner, due_by).await;
    }

    /// The profile's required scopes that `granted` neither holds nor implies.
    fn missing_set(&self, profile: &ProfileRecord, granted: &[String]) -> ScopeSet {
        let spec = profile.provider.spec();
        let known = granted
            .iter()
            .filter(|s| spec.scopes.bit(s).is_ok())
            .map(String::as_str);
        let granted = spec
            .parse_scopes(known)
            .unwrap_or_else(|_| spec.scopes.empty());
        let required = spec
            .parse_scopes(profile.required_scopes.iter().map(String::as_str))
            .unwrap_or_else(|_| spec.scopes.empty());
        granted.missing(&required)
    }

    pub fn missing_scopes(&self, profile: &ProfileRecord, granted: &[String]) -> Vec<String> {
        self.missing_set(profile, granted).to_vec()
    }

    /// Status and reason for a set of granted scopes against the profile's requirements.
    pub(crate) fn scope_status(
        &self,
        profile: &ProfileRecord,
        granted: &[String],
    ) -> (ConnectionStatus, Option<String>) {
        let missing = self.missing_set(profile, granted);
        if missing.is_empty() {
            (ConnectionStatus::Active, None)
        } else {
            let advice = missing_scope_advice(profile.provider, &missing);
            (ConnectionStatus::InsufficientScopes, Some(advice))
        }
    }

    /// The row write for a fresh grant: the rotated refresh token, if any, above all.
    fn token_write(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        grant: &TokenGrant,
        now: Timestamp,
    ) -> CoreResult<TokenWrite> {
        let id = row.id.as_str();
        let expires_at = now.plus_seconds(
            grant
                .expires_in
                .unwrap_or(profile.provider.spec().default_token_ttl) as i64,
        );
        let scopes = grant
            .scopes
            .clone()
            .unwrap_or_else(|| row.granted_scopes.clone());
        let (status, status_reason) = self.scope_status(profile, &scopes);
        let rotated = match &grant.refresh_token {
            Some(token) => {
                Some(self.seal(SealedColumn::RefreshToken, id, token.expose_secret())?)
            }
            None => None,
        };
        let refresh_token_at = if rotated.is_some() {
            Some(now)
        } else {
            row.refresh_token_at
        };
        let keepalive_from = refresh_token_at.filter(|_| row.credential == CredentialKind::Oauth2);
        let announce = self.status_changes(row, profile, status, status_reason.as_deref());
        Ok(TokenWrite {
            announce,
            access_token: self.seal(
                SealedColumn::AccessToken,
                id,
                grant.access_token.expose_secret(),
            )?,
            refresh_token: rotated,
            refresh_token_at,
            expires_at: Some(expires_at),
            granted_scopes: scopes,
            status,
            status_reason,
            refreshed_at: now,
            next_refresh_at: schedule::next_refresh_at(
                row.credential,
                now,
                Some(expires_at),
                keepalive_from,
                &self.settings.refresh,
            ),
        })
    }

    /// What a fresh grant's status means for webhooks: recovered, or short of scopes.
    fn status_changes(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        status: ConnectionStatus,
        reason: Option<&str>,
    ) -> Vec<Announcement> {
        let (kind, detail) = match (row.status, status) {
            (
                ConnectionStatus::Failing | ConnectionStatus::NeedsReauth,
                ConnectionStatus::Active,
            ) => (EventKind::ConnectionRecovered, "Refreshing works again"),
            (before, ConnectionStatus::InsufficientScopes)
                if before != ConnectionStatus::InsufficientScopes =>
            {
                (
                    EventKind::ConnectionInsufficientScopes,
                    "The refreshed token lacks required scopes",
                )
            }
            _ => return Vec::new(),
        };
        vec![self.about_connection(
            kind,
            profile,
            row,
            (status, reason),
            &Actor::System,
            detail.to_owned(),
        )]
    }

    async fn persist_grant(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        grant: TokenGrant,
        owner: &str,
        trigger: Trigger,
    ) -> CoreResult<Arc<CachedToken>> {
        let write = self.token_write(row, profile, &grant, self.clock.now())?;
        let written = self
            .store
            .write_tokens(&row.id, row.version, owner, &write)
            .await;
        let failure = match written {
            Ok(true) => None,
            Ok(false) => match self.why_unwritten(&row.id, row.version).await {
                Unwritten::Superseded | Unwritten::Gone => {
                    self.metrics.refresh(RefreshOutcome::Superseded);
                    let current = self.connection_row(&row.id).await?;
                    return self.cache_row(&current);
                }
                Unwritten::NotTaken => Some(StoreError::Other(
                    "the guarded write changed no row, yet nobody wrote a newer version".into(),
                )),
            },
            Err(error) => Some(error),
        };
        self.metrics.refresh(RefreshOutcome::Ok);
        if let Some(cause) = failure {
            // Bitbucket has rotated the refresh token: never lose the answer.
            self.keep_unwritten(&row.id, row.version, write.clone(), &cause);
            self.hand_back_unwritten(row, owner).await;
        }
        let state = TokenState {
            expires_at: write.expires_at,
            issued_at: Some(write.refreshed_at),
            scopes: write.granted_scopes,
            status: write.status,
            version: row.version + 1,
        };
        let token = Arc::new(CachedToken::new(row, grant.access_token, state));
        if !self.cache_bypassed() || self.pending.holds(&row.id) {
            self.cache.put(token.clone());
        }
        self.after_success(row, profile, trigger).await;
        Ok(token)
    }

    async fn after_success(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        trigger: Trigger,
    ) {
        if profile.problem.is_some() {
            let recovered = self.about_profile(EventKind::ProfileRecovered, profile, None);
            if let Err(error) = self
                .store
                .set_profile_problem(&profile.id, None, self.clock.now(), &[recovered])
                .await
            {
                tracing::warn!(%error, profile.id = %profile.id, "could not clear the profile's problem");
            }
            self.profiles.forget(&profile.id);
        }
        tracing::debug!(connection.id = %row.id, ?trigger, "refreshed");
    }

    /// Records what a failed refresh means and answers the error for the caller.
    async fn refresh_failed(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        owner: &str,
        failure: ProviderFailure,
    ) -> CoreError {
        let now = self.clock.now();
        let failures = row.failures + 1;
        let class = classify(profile.provider.spec(), &failure);
        let provider = profile.provider.spec().display_name;
        let (outcome, error) = match class {
            FailureClass::Reauth => {
                let reason = format!(
                    "{provider} refused the refresh token ({failure}); the user must reconnect"
                );
                self.metrics.refresh(RefreshOutcome::NeedsReauth);
                let outcome = OutcomeWrite {
                    version: row.version,
                    status: ConnectionStatus::NeedsReauth,
                    status_reason: Some(reason.clone()),
                    failures,
                    last_error: Some(failure.to_string()),
                    next_refresh_at: None,
                    announce: Vec::new(),
                };
                let error = CoreError::NeedsReauth {
                    connection: row.id.clone(),
                    reason,
                };
                (outcome, error)
            }
            FailureClass::ProfileMisconfigured => {
                let problem = format!(
                    "{provider} refused the OAuth client ({failure}); check the profile's key and secret"
                );
                self.flag_profile_problem(profile, &problem).await;
                self.metrics.refresh(RefreshOutcome::Misconfigured);
                let outcome = self.failing(
                    row.version,
                    failures,
                    &failure,
                    problem.clone(),
                    self.settings.refresh.backoff_max.as_secs(),
                    now,
                );
                let error = CoreError::ProfileMisconfigured {
                    profile: profile.id.clone(),
                    problem,
                };
                (outcome, error)
            }
            FailureClass::Transient | FailureClass::Unexpected => {
                let delay = if class == FailureClass::Transient {
                    self.metrics.refresh(RefreshOutcome::Transient);
                    schedule::backoff(failures, failure.retry_after(), &self.settings.refresh)
                } else {
                    self.metrics.refresh(RefreshOutcome::Unexpected);
                    self.settings.refresh.backoff_max.as_secs()
                };
                let reason = format!("refreshing failed ({failure}); retrying in {delay} s");
                let outcome = self.failing(row.version, failures, &failure, reason, delay, now);
                let error = CoreError::ProviderUnavailable {
                    retry_after: delay,
                    cause: failure.to_string(),
                };
                (outcome, error)
            }
        };
        let mut outcome = outcome;
        outcome.announce = self.note_failure(row, profile, &outcome);
        if let Err(store_error) = self.store.record_outcome(&row.id, owner, &outcome).await {
            tracing::error!(%store_error, connection.id = %row.id, "could not record a refresh failure");
        }
        if outcome.status == ConnectionStatus::NeedsReauth {
            self.cache.forget(&row.id);
        }
        error
    }

    fn failing(
        &self,
        version: i64,
        failures: i64,
        failure: &ProviderFailure,
        reason: String,
        delay: u64,
        now: Timestamp,
    ) -> OutcomeWrite {
        OutcomeWrite {
            version,
            status: ConnectionStatus::Failing,
            status_reason: Some(reason),
            failures,
            last_error: Some(failure.to_string()),
            next_refresh_at: Some(now.plus_seconds(delay as i64)),
            announce: Vec::new(),
        }
    }

    /// Logs a failed refresh and answers what to announce with its outcome: the first
    /// transient failure, or the need to reconnect.
    pub(crate) fn note_failure(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        outcome: &OutcomeWrite,
    ) -> Vec<Announcement> {
        let reason = outcome.status_reason.as_deref().unwrap_or_default();
        tracing::warn!(connection.id = %row.id, profile.id = %row.profile_id, status = outcome.status.as_str(), %reason, "refresh failed");
        let kind = match outcome.status {
            ConnectionStatus::NeedsReauth => EventKind::ConnectionNeedsReauth,
            _ if row.status != ConnectionStatus::Failing => EventKind::ConnectionFailing,
            _ => return Vec::new(),
        };
        vec![self.about_connection(
            kind,
            profile,
            row,
            (outcome.status, Some(reason)),
            &Actor::System,
            reason.to_owned(),
        )]
    }
}
