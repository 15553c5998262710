//! API tokens and access tokens: Grantry cannot renew them, so it makes sure it never serves one
//! Bitbucket no longer takes. A connection holding one turns `needs_reauth`, with the reason, when
//! - its expiry passes: the refresher looks at it then, and a token read past it finds it so;
//! - Bitbucket refuses it (401). An API token is asked with `GET /user` every
//!   `refresh.verify_static_secs` (six hours) by the refresher, after a proxied call with it was
//!   refused, and when someone asks for a refresh (API, console, CLI): anything but a 401 (a 403
//!   for lack of `read:user:bitbucket`) means Bitbucket still takes it; no answer, a 5xx or a 429
//!   means nothing is known, and the check is tried again after a backoff. An access token acts
//!   for its resource and no endpoint is open to all of them, so it is not asked: a 401 to a
//!   proxied call with it is Bitbucket's word that it is dead.

use std::sync::Arc;

use super::cache::CachedToken;
use super::schedule;
use crate::app::Grantry;
use crate::clock::rfc3339;
use crate::connections::service::presented;
use crate::error::{CoreError, CoreResult};
use crate::metrics::RefreshOutcome;
use crate::provider::ProviderFailure;
use crate::store::{
    ConnectionRecord, ConnectionStatus, CredentialKind, OutcomeWrite, ProfileRecord,
};

/// Whether a check of a static credential could ask what it needed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    Done,
    /// Bitbucket could not be asked; try again after `retry_after` seconds.
    Unknown {
        retry_after: u64,
        cause: String,
    },
}

/// What Bitbucket said of a static credential.
enum Verdict {
    Alive,
    /// Refused, with what Bitbucket answered.
    Refused(String),
    Unreachable(ProviderFailure),
}

/// How a credential kind is named in reasons.
pub(crate) fn credential_words(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::ApiToken => "API token",
        CredentialKind::AccessToken => "access token",
        _ => "credential",
    }
}

/// Bitbucket's words, cut to a reasonable length for a status reason.
fn gist(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let cloud = v["error"]["message"].as_str().map(str::to_owned);
            cloud.or_else(|| v["errors"][0]["message"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| body.trim().to_owned());
    if message.is_empty() {
        return "no details given".into();
    }
    message.chars().take(200).collect()
}

impl Grantry {
    async fn ask_provider(&self, profile: &ProfileRecord, token: &CachedToken) -> Verdict {
        let client = match self.oauth_client(profile) {
            Ok(client) => client,
            Err(error) => {
                return Verdict::Unreachable(ProviderFailure::Protocol(error.to_string()));
            }
        };
        match self
            .provider
            .probe(&client.target(), presented(token))
            .await
        {
            Ok(answer) if answer.status == 401 => {
                Verdict::Refused(format!("401: {}", gist(&answer.body)))
            }
            Ok(answer) if answer.status >= 500 || answer.status == 429 => {
                Verdict::Unreachable(ProviderFailure::Http {
                    status: answer.status,
                    retry_after: None,
                })
            }
            Ok(_) => Verdict::Alive,
            Err(ProviderFailure::Http { status: 401, .. }) => Verdict::Refused("401".into()),
            Err(failure @ ProviderFailure::Http { status, .. })
                if status >= 500 || status == 429 =>
            {
                Verdict::Unreachable(failure)
            }
            Err(failure @ ProviderFailure::Network { .. }) => Verdict::Unreachable(failure),
            Err(_) => Verdict::Alive,
        }
    }

    /// With the lease held by `owner`: is the static credential still good? Records what was
    /// found (and the next look) and answers the token while it is, with whether Bitbucket could
    /// be asked (`Checked::Unknown`: it could not; the token is still the last known good one).
    pub(crate) async fn check_static_leased(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        owner: &str,
    ) -> CoreResult<(Arc<CachedToken>, Checked)> {
        let now = self.clock.now();
        let what = credential_words(row.credential);
        if let Some(at) = row.expires_at.filter(|at| *at <= now) {
            let reason = format!("the {what} expired at {}; add a new one", rfc3339(at));
            return Err(self
                .static_credential_dead(row, profile, owner, reason)
                .await);
        }
        let token = self.cache_row(row)?;
        let provider = profile.provider.spec().display_name;
        let verdict = match row.credential {
            CredentialKind::ApiToken => self.ask_provider(profile, &token).await,
            _ => Verdict::Alive,
        };
        let settings = &self.settings.refresh;
        let (mut failures, mut last_error, mut checked) = (0, None, Checked::Done);
        let next = match verdict {
            Verdict::Refused(answer) => {
                let reason = format!(
                    "{provider} refused the {what} ({answer}): it was revoked or has expired; add a new one"
                );
                return Err(self
                    .static_credential_dead(row, profile, owner, reason)
                    .await);
            }
            Verdict::Alive => {
                schedule::next_static_check(row.credential, now, row.expires_at, settings)
            }
            Verdict::Unreachable(failure) => {
                // Backs off like a failed refresh, and says so in the connection's last error.
                failures = row.failures + 1;
                let delay = schedule::backoff(failures, failure.retry_after(), settings);
                tracing::warn!(connection.id = %row.id, %failure, "could not check a {what} with {provider}; trying again in {delay} s");
                last_error = Some(format!(
                    "could not check the {what} with {provider} ({failure})"
                ));
                checked = Checked::Unknown {
                    retry_after: delay,
                    cause: failure.to_string(),
                };
                Some(now.plus_seconds(delay as i64))
            }
        };
        let outcome = OutcomeWrite {
            version: row.version,
            status: row.status,
            status_reason: row.status_reason.clone(),
            failures,
            last_error,
            next_refresh_at: next,
            announce: Vec::new(),
        };
        self.store.record_outcome(&row.id, owner, &outcome).await?;
        Ok((token, checked))
    }

    /// A proxied call with a static credential got a 401. An API token is asked again (a 401
    /// to `/user` settles it). An access token's 401 settles it only on a call inside what every
    /// access token may reach, its repositories (`on_own_ground`): elsewhere (`/user`, say)
    /// Bitbucket also answers 401 "not supported for this endpoint" to live tokens.
    pub(crate) async fn proxied_call_refused(
        &self,
        row: &ConnectionRecord,
        on_own_ground: bool,
        answer: &str,
    ) -> CoreResult<()> {
        if row.credential == CredentialKind::ApiToken {
            return self.verify_static(row).await.map(|_| ());
        }
        if !on_own_ground {
            tracing::info!(connection.id = %row.id, "an access token was refused outside its repositories; not taken as dead");
            return Ok(());
        }
        let now = self.clock.now();
        let owner = self.lease_owner("refused");
        let until = now + self.settings.refresh.lease;
        let Some(leased) = self.store.take_lease(&row.id, &owner, until, now).await? else {
            return Ok(());
        };
        let known = self.profile_for(&leased.profile_id).await?;
        let provider = known.record.provider.spec().display_name;
        let what = credential_words(leased.credential);
        let reason = format!(
            "{provider} refused the {what} on a proxied call (401: {}): it was revoked or has expired; add a new one",
            gist(answer)
        );
        Err(self
            .static_credential_dead(&leased, &known.record, &owner, reason)
            .await)
    }

    /// Marks a connection whose static credential is dead `needs_reauth`, announcing it, and
    /// answers the error for the caller.
    async fn static_credential_dead(
        &self,
        row: &ConnectionRecord,
        profile: &ProfileRecord,
        owner: &str,
        reason: String,
    ) -> CoreError {
        self.metrics.refresh(RefreshOutcome::NeedsReauth);
        let mut outcome = OutcomeWrite {
            version: row.version,
            status: ConnectionStatus::NeedsReauth,
            status_reason: Some(reason.clone()),
            failures: row.failures + 1,
            last_error: Some(reason.clone()),
            next_refresh_at: None,
            announce: Vec::new(),
        };
        outcome.announce = self.note_failure(row, profile, &outcome);
        if let Err(store_error) = self.store.record_outcome(&row.id, owner, &outcome).await {
            tracing::error!(%store_error, connection.id = %row.id, "could not record a dead credential");
        }
        self.cache.forget(&row.id);
        CoreError::NeedsReauth {
            connection: row.id.clone(),
            reason,
        }
    }

    /// Checks a static credential now, under its lease: asked for a refresh, or a read found it
    /// past its expiry.
    pub(crate) async fn verify_static(
        &self,
        row: &ConnectionRecord,
    ) -> CoreResult<Arc<CachedToken>> {
        let now = self.clock.now();
        let owner = self.lease_owner("verify");
        let until = now + self.settings.refresh.lease;
        let Some(leased) = self.store.take_lease(&row.id, &owner, until, now).await? else {
            return Err(CoreError::Conflict(
                "another check of this connection is running; try again".into(),
            ));
        };
        let result = match self.profile_for(&leased.profile_id).await {
            Ok(known) => match self
                .check_static_leased(&leased, &known.record, &owner)
                .await
            {
                Ok((token, Checked::Done)) => Ok(token),
                // Asked to check and could not: say so rather than report a pass (the check
                // is recorded and retried; the lease is already released).
                Ok((_, Checked::Unknown { retry_after, cause })) => {
                    return Err(CoreError::ProviderUnavailable { retry_after, cause });
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        if result.is_err()
            && let Err(error) = self.store.release_lease(&leased.id, &owner).await
        {
            tracing::warn!(%error, connection.id = %leased.id, "could not release a lease");
        }
        result
    }
}
