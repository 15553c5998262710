//! `GET /connect/{token}`: the browser arrives with the session's link and is sent to the
//! provider with a fresh 256-bit `state` (stored hashed) and, where the provider takes it, PKCE.
//! The browser also gets a nonce in a cookie (its digest stored with the state): the callback is
//! accepted only from the browser that opened the link, so an authorize URL sent to someone else
//! leads nowhere (RFC 9700 §4.7).

use url::Url;

use super::{ConnectError, browser_cookie};
use crate::app::Grantry;
use crate::store::SealedColumn;
use crate::store::SessionRecord;

/// Where to send the browser, and the cookie binding the flow to it.
#[derive(Debug)]
pub struct Begun {
    pub authorize: Url,
    /// `grantry_connect_{session id}`: one per session, so two flows in one browser coexist.
    pub cookie_name: String,
    pub nonce: String,
    /// How long the cookie should live: the rest of the session's life.
    pub max_age: i64,
}

impl Grantry {
    /// Answers the provider's authorize URL to redirect the browser to, and the cookie to set.
    pub async fn begin_connect(&self, token: &str) -> Result<Begun, ConnectError> {
        let session = self.live_session(token).await?;
        let profile = self
            .store
            .profile(&session.profile_id)
            .await?
            .ok_or(ConnectError::ProfileGone)?;
        let client = self.oauth_client(&profile)?;
        let state = grantry_crypto::random_token(32);
        let nonce = grantry_crypto::random_token(32);
        let verifier = client.spec.pkce.then(|| grantry_crypto::random_token(32));
        let sealed = match &verifier {
            Some(verifier) => {
                Some(self.seal(SealedColumn::PkceVerifier, session.id.as_str(), verifier)?)
            }
            None => None,
        };
        let now = self.clock.now();
        let opened = self
            .store
            .open_session(
                &session.id,
                &grantry_crypto::sha256_hex(&state),
                &grantry_crypto::sha256_hex(&nonce),
                sealed.as_deref(),
                now,
            )
            .await?;
        if !opened {
            return Err(ConnectError::UsedLink);
        }
        let mut url = client.endpoints.authorize.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &client.client_id)
                .append_pair("response_type", "code")
                .append_pair("state", &state)
                .append_pair("redirect_uri", &client.callback_url);
            if client.spec.scopes_in_authorize {
                query.append_pair("scope", &client.scopes.join(" "));
            }
            if let Some(verifier) = &verifier {
                query
                    .append_pair("code_challenge", &grantry_crypto::pkce_challenge(verifier))
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(Begun {
            authorize: url,
            cookie_name: browser_cookie(&session.id),
            nonce,
            max_age: (session.expires_at - now).max(1),
        })
    }

    async fn live_session(&self, token: &str) -> Result<SessionRecord, ConnectError> {
        if token.is_empty() || token.len() > 100 {
            return Err(ConnectError::UnknownLink);
        }
        let digest = grantry_crypto::sha256_hex(token);
        let session = self
            .store
            .session_by_token(&digest)
            .await?
            .ok_or(ConnectError::UnknownLink)?;
        if session.opened_at.is_some() {
            return Err(ConnectError::UsedLink);
        }
        if session.expires_at < self.clock.now() {
            return Err(ConnectError::ExpiredLink);
        }
        Ok(session)
    }
}
