//! `GET /oauth/callback`: the provider sends the browser back. The state is checked once and
//! only from the browser that opened the connect link (anything else shows an error page and
//! stores nothing), the code is exchanged, the account looked up, and then either the connection
//! is saved and the browser returned with its id, or the credential waits in the session for the
//! application's confirmation and the browser is returned with the one-time verification code.

use secrecy::ExposeSecret;
use url::Url;

use super::{ConnectError, browser_cookie};
use crate::app::{Actor, Grantry};
use crate::catalog::FailureClass;
use crate::connections::save::{Acquired, Saved};
use crate::error::CoreError;
use crate::events::EventKind;
use crate::provider::{Presented, classify};
use crate::store::SealedColumn;
use crate::store::{ConnectionStatus, CredentialKind, ProfileRecord, SessionRecord};

/// What the provider sends back, and the browser-binding cookies the browser brought.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// `(name, value)` of every cookie whose name starts with `BROWSER_COOKIE_PREFIX`.
    pub browser_cookies: Vec<(String, String)>,
}

/// Where a finished connect flow sends the browser, and the cookie that bound it to the browser.
#[derive(Debug)]
pub struct Finished {
    pub url: Url,
    pub cookie_name: String,
}

pub(super) fn back_to(session: &SessionRecord, params: &[(&str, &str)]) -> Url {
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
    /// Also names the browser-binding cookie the flow used up, so that only that one is cleared:
    /// the same browser may be in the middle of other flows (other tabs), each with its own.
    pub async fn finish_connect(&self, params: &CallbackParams) -> Result<Finished, ConnectError> {
        let session = self.claim_callback(params).await?;
        let url = self.finish_claimed(&session, params).await?;
        Ok(Finished {
            url,
            cookie_name: super::browser_cookie(&session.id),
        })
    }

    async fn finish_claimed(
        &self,
        session: &SessionRecord,
        params: &CallbackParams,
    ) -> Result<Url, ConnectError> {
        let profile = self
            .store
            .profile(&session.profile_id)
            .await?
            .ok_or(ConnectError::ProfileGone)?;
        if let Some(error) = &params.error {
            return Ok(self
                .provider_refused(session, &profile, error, params)
                .await);
        }
        let Some(code) = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
        else {
            return Ok(back_to(session, &[("error", "invalid_request")]));
        };
        let acquired = match self.exchange(session, &profile, code).await {
            Ok(acquired) => acquired,
            Err(code) => return Ok(back_to(session, &[("error", code)])),
        };
        if self.needs_confirmation(&profile, session) {
            return Ok(self.hold_for_confirmation(session, acquired).await);
        }
        let saved = self
            .save_acquired(
                &profile,
                session.end_user_id.clone(),
                session.connection_id.as_ref(),
                acquired,
                &Actor::System,
            )
            .await;
        match saved {
            Ok(saved) => Ok(self.connected(session, &saved)),
            Err(error) => Ok(back_to(session, &[("error", save_error_code(&error))])),
        }
    }

    /// Finds the session by state, checks the browser's cookie, and marks it completed, exactly
    /// once. A callback from another browser spends the session too: its code is not used.
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
        if !same_browser(&session, params) {
            tracing::warn!(session.id = %session.id, profile.id = %session.profile_id, "a callback came from a browser that did not open the connect link; refused");
            let detail = format!(
                "Connect session {} refused: the authorization was finished in a browser that did not open its link",
                session.id
            );
            self.record(
                EventKind::ConnectRefused,
                Some(&session.profile_id),
                session.connection_id.as_ref(),
                &Actor::System,
                detail,
            )
            .await;
            return Err(ConnectError::OtherBrowser);
        }
        Ok(session)
    }

    /// Whether the application must confirm this session's connection before it is saved.
    pub(super) fn needs_confirmation(
        &self,
        profile: &ProfileRecord,
        session: &SessionRecord,
    ) -> bool {
        profile.confirm_connections && session.return_url != self.settings.complete_url()
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

    /// Exchanges the code and looks up the account; `Err` is the error code for the application.
    async fn exchange(
        &self,
        session: &SessionRecord,
        profile: &ProfileRecord,
        code: &str,
    ) -> Result<Acquired, &'static str> {
        let client = self.oauth_client(profile).map_err(|_| "server_error")?;
        let verifier = match &session.pkce_verifier {
            Some(sealed) => Some(
                self.open(SealedColumn::PkceVerifier, session.id.as_str(), sealed)
                    .map_err(|_| "server_error")?,
            ),
            None => None,
        };
        let verifier = verifier.as_ref().map(|v| v.expose_secret());
        let obtained_at = self.clock.now();
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
        Ok(Acquired {
            credential: CredentialKind::Oauth2,
            identity,
            grant,
            login: None,
            obtained_at,
        })
    }

    pub(super) fn connected(&self, session: &SessionRecord, saved: &Saved) -> Url {
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

    /// Marks the profile misconfigured (announced when it was not already).
    pub(crate) async fn flag_profile_problem(&self, profile: &ProfileRecord, problem: &str) {
        let announce = self.about_profile(EventKind::ProfileMisconfigured, profile, Some(problem));
        if let Err(error) = self
            .store
            .set_profile_problem(&profile.id, Some(problem), self.clock.now(), &[announce])
            .await
        {
            tracing::error!(%error, profile.id = %profile.id, "could not flag the profile");
        }
        self.profiles.forget(&profile.id);
    }
}

/// The error code for the application when saving a connection failed.
pub(super) fn save_error_code(error: &CoreError) -> &'static str {
    match error {
        CoreError::Conflict(_) => "account_mismatch",
        _ => "server_error",
    }
}

/// Whether the browser brought the cookie the connect link gave it (compared as digests, in
/// constant time).
fn same_browser(session: &SessionRecord, params: &CallbackParams) -> bool {
    let Some(expected) = &session.browser_digest else {
        return false;
    };
    let name = browser_cookie(&session.id);
    params
        .browser_cookies
        .iter()
        .filter(|(cookie, _)| *cookie == name)
        .any(|(_, nonce)| grantry_crypto::same(&grantry_crypto::sha256_hex(nonce), expected))
}
