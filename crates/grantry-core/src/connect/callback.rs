//! `GET /oauth/callback`: the provider sends the browser back. The state is checked once (an
//! unknown, reused or expired one shows an error page and stores nothing), the code is exchanged,
//! the account looked up, granted scopes compared with the required ones, tokens sealed, and the
//! browser returned to the session's return URL with the connection id or an error code.

use secrecy::ExposeSecret;
use url::Url;

use super::ConnectError;
use crate::app::{Actor, Grantry};
use crate::catalog::{FailureClass, classify};
use crate::connections::save::{Acquired, Saved};
use crate::error::CoreError;
use crate::provider::Presented;
use crate::store::{ConnectionStatus, CredentialKind, ProfileRecord, SessionRecord};

/// The query the provider sends back.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn back_to(session: &SessionRecord, params: &[(&str, &str)]) -> Url {
    let mut url = Url::parse(&session.return_url).expect("return URLs are checked when stored");
    url.query_pairs_mut().extend_pairs(params);
    url
}

/// Keeps a provider's error code to a safe, short token before echoing it to the application.
fn safe_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

impl Grantry {
    /// Answers where to send the browser: the session's return URL with the outcome.
    pub async fn finish_connect(&self, params: &CallbackParams) -> Result<Url, ConnectError> {
        let session = self.claim_callback(params).await?;
        let profile = self
            .store
            .profile(&session.profile_id)
            .await?
            .ok_or(ConnectError::ProfileGone)?;
        if let Some(error) = &params.error {
            return Ok(self
                .provider_refused(&session, &profile, error, params)
                .await);
        }
        let Some(code) = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
        else {
            return Ok(back_to(&session, &[("error", "invalid_request")]));
        };
        match self.exchange(&session, &profile, code).await {
            Ok(saved) => Ok(self.connected(&session, &saved)),
            Err(code) => Ok(back_to(&session, &[("error", code)])),
        }
    }

    /// Finds the session by state and marks it completed, exactly once.
    async fn claim_callback(&self, params: &CallbackParams) -> Result<SessionRecord, ConnectError> {
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 100);
        let state = state.ok_or(ConnectError::UnknownState)?;
        let digest = grantry_crypto::sha256_hex(state);
        let session = self
            .store
            .session_by_state(&digest)
            .await?
            .ok_or(ConnectError::UnknownState)?;
        if session.completed_at.is_some() {
            return Err(ConnectError::ReplayedState);
        }
        let now = self.clock.now();
        if session.expires_at < now {
            return Err(ConnectError::ExpiredState);
        }
        if !self.store.complete_session(&session.id, now).await? {
            return Err(ConnectError::ReplayedState);
        }
        Ok(session)
    }

    async fn provider_refused(
        &self,
        session: &SessionRecord,
        profile: &ProfileRecord,
        error: &str,
        params: &CallbackParams,
    ) -> Url {
        let code = safe_code(error);
        if code == "invalid_scope" || code == "unauthorized_client" {
            let description = params
                .error_description
                .as_deref()
                .unwrap_or("no description");
            let problem = format!(
                "{} refused the authorization: {code} ({description})",
                profile.provider.spec().display_name
            );
            self.flag_profile_problem(profile, &problem).await;
        }
        tracing::info!(profile.id = %profile.id, error = %code, "the provider refused an authorization");
        back_to(session, &[("error", &code)])
    }

    /// Exchanges the code and saves the connection; `Err` is the error code for the application.
    async fn exchange(
        &self,
        session: &SessionRecord,
        profile: &ProfileRecord,
        code: &str,
    ) -> Result<Saved, &'static str> {
        let client = self.oauth_client(profile).map_err(|_| "server_error")?;
        let verifier = match &session.pkce_verifier {
            Some(sealed) => Some(
                self.open(
                    "connect_sessions",
                    "pkce_verifier",
                    session.id.as_str(),
                    sealed,
                )
                .map_err(|_| "server_error")?,
            ),
            None => None,
        };
        let verifier = verifier.as_ref().map(|v| v.expose_secret());
        let grant = match self
            .provider
            .exchange_code(&client.target(), code, verifier)
            .await
        {
            Ok(grant) => grant,
            Err(failure) => {
                tracing::warn!(profile.id = %profile.id, %failure, "code exchange failed");
                if classify(client.spec, &failure) == FailureClass::ProfileMisconfigured {
                    self.flag_profile_problem(
                        profile,
                        &format!("the provider refused the OAuth client: {failure}"),
                    )
                    .await;
                    return Err("profile_misconfigured");
                }
                return Err("exchange_failed");
            }
        };
        let identity = match self
            .provider
            .identity(&client.target(), Presented::Bearer(&grant.access_token))
            .await
        {
            Ok(identity) => identity,
            Err(failure) => {
                tracing::warn!(profile.id = %profile.id, %failure, "account lookup failed");
                return Err("identity_failed");
            }
        };
        let acquired = Acquired {
            credential: CredentialKind::Oauth2,
            identity,
            grant,
            login: None,
        };
        let actor = Actor::System;
        self.save_acquired(
            profile,
            session.end_user_id.clone(),
            session.connection_id.as_ref(),
            acquired,
            &actor,
        )
        .await
        .map_err(|error| match error {
            CoreError::Conflict(_) => "account_mismatch",
            _ => "server_error",
        })
    }

    fn connected(&self, session: &SessionRecord, saved: &Saved) -> Url {
        let record = &saved.record;
        let mut params = vec![
            ("connection_id", record.id.as_str()),
            ("status", record.status.as_str()),
        ];
        let missing;
        if record.status == ConnectionStatus::InsufficientScopes {
            params.push(("error", "insufficient_scopes"));
            missing = saved.missing_scopes.join(" ");
            params.push(("missing_scopes", &missing));
        }
        back_to(session, &params)
    }

    pub(crate) async fn flag_profile_problem(&self, profile: &ProfileRecord, problem: &str) {
        if let Err(error) = self
            .store
            .set_profile_problem(&profile.id, Some(problem), self.clock.now())
            .await
        {
            tracing::error!(%error, profile.id = %profile.id, "could not flag the profile");
        }
        if profile.problem.is_none() {
            self.record(
                crate::events::EventKind::ProfileMisconfigured,
                Some(&profile.id),
                None,
                &Actor::System,
                problem.to_owned(),
            )
            .await;
        }
    }
}
