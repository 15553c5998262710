//! Confirmation: where the application gave a return URL, the credential a callback obtained
//! waits in the session (sealed), and the browser goes back to the application with a one-time
//! verification code. The application's backend then confirms, with that code and the end-user
//! id of the user it has signed in, that the browser which finished is its own user's
//! (`POST /v1/connect-sessions/{id}/confirm`). Only then is the connection saved. A wrong code
//! or another end user spends the session; an unconfirmed credential is dropped when the
//! confirmation time passes.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use super::callback::back_to;
use crate::app::{Actor, Grantry};
use crate::clock::Timestamp;
use crate::connections::save::{Acquired, Saved};
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::SessionId;
use crate::provider::{Identity, TokenGrant};
use crate::store::SealedColumn;
use crate::store::{CredentialKind, SessionRecord};

/// A credential waiting for confirmation, as sealed into the session.
#[derive(Serialize, Deserialize)]
struct HeldGrant {
    credential: CredentialKind,
    account_id: String,
    username: String,
    display_name: String,
    identity_scopes: Option<Vec<String>>,
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    scopes: Option<Vec<String>>,
    login: Option<String>,
    obtained_at: Timestamp,
}

impl HeldGrant {
    fn from(acquired: &Acquired) -> HeldGrant {
        HeldGrant {
            credential: acquired.credential,
            account_id: acquired.identity.account_id.clone(),
            username: acquired.identity.username.clone(),
            display_name: acquired.identity.display_name.clone(),
            identity_scopes: acquired.identity.scopes.clone(),
            access_token: acquired.grant.access_token.expose_secret().to_owned(),
            refresh_token: (acquired.grant.refresh_token.as_ref())
                .map(|t| t.expose_secret().to_owned()),
            expires_in: acquired.grant.expires_in,
            scopes: acquired.grant.scopes.clone(),
            login: acquired.login.clone(),
            obtained_at: acquired.obtained_at,
        }
    }

    fn into_acquired(self) -> Acquired {
        Acquired {
            credential: self.credential,
            identity: Identity {
                account_id: self.account_id,
                username: self.username,
                display_name: self.display_name,
                scopes: self.identity_scopes,
            },
            grant: TokenGrant {
                access_token: SecretString::from(self.access_token),
                refresh_token: self.refresh_token.map(SecretString::from),
                expires_in: self.expires_in,
                scopes: self.scopes,
            },
            login: self.login,
            obtained_at: self.obtained_at,
        }
    }
}

impl Grantry {
    /// Seals the credential into the session and sends the browser back with the one-time code.
    pub(super) async fn hold_for_confirmation(
        &self,
        session: &SessionRecord,
        acquired: Acquired,
    ) -> Url {
        let code = grantry_crypto::random_token(32);
        let held = match self.seal_held(session, &acquired) {
            Ok(held) => held,
            Err(error) => {
                tracing::error!(%error, session.id = %session.id, "could not seal a credential for confirmation");
                return back_to(session, &[("error", "server_error")]);
            }
        };
        let confirm_by = self.clock.now() + self.settings.session_ttl;
        let digest = grantry_crypto::sha256_hex(&code);
        match self
            .store
            .hold_grant(&session.id, &digest, &held, confirm_by)
            .await
        {
            Ok(true) => back_to(
                session,
                &[
                    ("connect_session_id", session.id.as_str()),
                    ("verification_code", &code),
                ],
            ),
            Ok(false) => back_to(session, &[("error", "session_gone")]),
            Err(error) => {
                tracing::error!(%error, session.id = %session.id, "could not keep a credential for confirmation");
                back_to(session, &[("error", "server_error")])
            }
        }
    }

    fn seal_held(&self, session: &SessionRecord, acquired: &Acquired) -> CoreResult<Vec<u8>> {
        let json = Zeroizing::new(
            serde_json::to_string(&HeldGrant::from(acquired)).expect("a held grant serializes"),
        );
        self.seal(SealedColumn::PendingGrant, session.id.as_str(), &json)
    }

    fn open_held(&self, session: &SessionRecord, sealed: &[u8]) -> CoreResult<Acquired> {
        let json = self.open(SealedColumn::PendingGrant, session.id.as_str(), sealed)?;
        let held: HeldGrant = serde_json::from_str(json.expose_secret())
            .map_err(|_| CoreError::Crypto(grantry_crypto::CryptoError::Malformed))?;
        Ok(held.into_acquired())
    }

    /// The application's backend confirms that the browser which finished the session is its
    /// signed-in `end_user_id`, with the code that browser brought back. Saves the connection.
    pub async fn confirm_session(
        &self,
        id: &SessionId,
        end_user_id: Option<&str>,
        code: &str,
        actor: &Actor,
    ) -> CoreResult<Saved> {
        let now = self.clock.now();
        let Some(session) = self.store.take_grant(id, now).await? else {
            return Err(self.nothing_to_confirm(id, now).await);
        };
        let right_code = session
            .verification_digest
            .as_deref()
            .is_some_and(|digest| grantry_crypto::same(digest, &grantry_crypto::sha256_hex(code)));
        let end_user = end_user_id.map(str::trim).filter(|e| !e.is_empty());
        let right_user = session.end_user_id.as_deref() == end_user;
        if !right_code || !right_user {
            let why = if right_code {
                "the application's signed-in end user is not the one the session was made for"
            } else {
                "the verification code does not match"
            };
            return Err(self.refuse_confirmation(&session, why, actor).await);
        }
        let profile = self.store.profile(&session.profile_id).await?;
        let profile = profile
            .ok_or_else(|| CoreError::NotFound(format!("profile `{}`", session.profile_id)))?;
        let sealed = session.pending_grant.as_deref().unwrap_or_default();
        let acquired = self.open_held(&session, sealed)?;
        self.save_acquired(
            &profile,
            session.end_user_id.clone(),
            session.connection_id.as_ref(),
            acquired,
            actor,
        )
        .await
    }

    async fn refuse_confirmation(
        &self,
        session: &SessionRecord,
        why: &str,
        actor: &Actor,
    ) -> CoreError {
        tracing::warn!(session.id = %session.id, profile.id = %session.profile_id, reason = why, "a connection's confirmation was refused; its credential was dropped");
        let detail = format!("Connect session {} refused: {why}", session.id);
        self.record(
            EventKind::ConnectRefused,
            Some(&session.profile_id),
            session.connection_id.as_ref(),
            actor,
            detail,
        )
        .await;
        CoreError::ConfirmationRefused(format!(
            "{why}; nothing was connected and this connect session cannot be used again"
        ))
    }

    /// Why a session has no credential to confirm.
    async fn nothing_to_confirm(&self, id: &SessionId, now: Timestamp) -> CoreError {
        let session = match self.store.session(id).await {
            Ok(Some(session)) => session,
            Ok(None) => return CoreError::NotFound(format!("connect session `{id}`")),
            Err(error) => return error.into(),
        };
        let why = if session.confirmed_at.is_some() {
            "it was confirmed (or refused) before"
        } else if session.confirm_by.is_some_and(|by| by < now) {
            "the time to confirm it has passed; start a new connect session"
        } else if session.completed_at.is_none() {
            "the user has not finished authorizing yet"
        } else {
            "it did not end with a connection to confirm (refused, failed, or confirmation is off)"
        };
        CoreError::Conflict(format!(
            "connect session `{id}` has nothing to confirm: {why}"
        ))
    }
}
