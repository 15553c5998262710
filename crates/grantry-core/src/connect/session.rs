//! `POST /v1/connect-sessions`: a short-lived, single-use invitation, created only by the
//! application's backend, so no one can attach an account to someone else's id.

use crate::app::{Actor, Grantry};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ConnectionId, SessionId};
use crate::profiles::validate;
use crate::store::SessionRecord;

pub struct NewSession {
    /// Profile id or name.
    pub profile: String,
    pub end_user_id: Option<String>,
    /// Where the browser goes back to; default: Grantry's own "connected" page.
    pub return_url: Option<String>,
    /// Reconnect this connection (it keeps its id).
    pub connection_id: Option<ConnectionId>,
}

pub struct CreatedSession {
    pub record: SessionRecord,
    /// The single-use link for the end user's browser.
    pub url: String,
    /// Whether the application must confirm the connection when the browser comes back.
    pub confirmation_required: bool,
}

pub(crate) fn end_user_id(value: Option<String>) -> CoreResult<Option<String>> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "end_user_id",
            "at most 256 characters, no control characters",
        ));
    }
    Ok(Some(value))
}

impl Grantry {
    pub async fn create_session(
        &self,
        new: NewSession,
        _actor: &Actor,
    ) -> CoreResult<CreatedSession> {
        let profile = self.find_profile(&new.profile).await?;
        let complete = self.settings.complete_url();
        let mut allowed = profile.allowed_return_urls.clone();
        allowed.push(self.settings.console_return_url());
        let return_url = validate::return_url_allowed(
            new.return_url.as_deref().unwrap_or(&complete),
            &allowed,
            &complete,
        )?;
        let mut end_user = end_user_id(new.end_user_id)?;
        if let Some(id) = &new.connection_id {
            let connection = self.store.connection(id).await?;
            let Some(connection) = connection.filter(|c| c.profile_id == profile.id) else {
                return Err(CoreError::invalid(
                    "connection_id",
                    format!(
                        "connection `{id}` does not exist under profile `{}`",
                        profile.name
                    ),
                ));
            };
            // A reconnect is the connection's own end user's: it is never moved to another.
            match (&end_user, &connection.end_user_id) {
                (None, owner) => end_user = owner.clone(),
                (Some(asked), Some(owner)) if asked == owner => {}
                _ => {
                    return Err(CoreError::invalid(
                        "end_user_id",
                        format!(
                            "connection `{id}` belongs to another end user; a reconnect keeps its end user"
                        ),
                    ));
                }
            }
        }
        let token = grantry_crypto::random_token(32);
        let now = self.clock.now();
        let record = SessionRecord {
            id: SessionId::generate(),
            token_digest: grantry_crypto::sha256_hex(&token),
            profile_id: profile.id.clone(),
            end_user_id: end_user,
            return_url,
            connection_id: new.connection_id,
            state_digest: None,
            pkce_verifier: None,
            browser_digest: None,
            verification_digest: None,
            pending_grant: None,
            confirm_by: None,
            created_at: now,
            expires_at: now + self.settings.session_ttl,
            opened_at: None,
            completed_at: None,
            confirmed_at: None,
        };
        self.store.insert_session(&record).await?;
        Ok(CreatedSession {
            url: self.settings.connect_url(&token),
            confirmation_required: self.needs_confirmation(&profile, &record),
            record,
        })
    }
}
