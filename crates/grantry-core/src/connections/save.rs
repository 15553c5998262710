//! Saving a freshly acquired credential: a new connection, or the existing one for the same
//! account under the same profile (which keeps its id, as does a reconnect).

use bitbucket_facts::{ScopeSet, api_tokens};
use secrecy::ExposeSecret;

use crate::app::{Actor, Grantry};
use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::ConnectionId;
use crate::provider::{Identity, TokenGrant};
use crate::store::SealedColumn;
use crate::store::{
    Announcement, ConnectionRecord, ConnectionStatus, CredentialKind, ProfileRecord, StoreError,
};
use crate::tokens::schedule;

/// A credential just obtained, with whose it is.
pub(crate) struct Acquired {
    pub credential: CredentialKind,
    pub identity: Identity,
    pub grant: TokenGrant,
    /// HTTP Basic user (API tokens).
    pub login: Option<String>,
    /// When the provider issued it (its expiry counts from then).
    pub obtained_at: Timestamp,
}

/// A connection as saved, with the profile's required scopes its grant lacks.
pub struct Saved {
    pub record: ConnectionRecord,
    pub missing_scopes: Vec<String>,
}

impl Grantry {
    /// The connection this credential updates: the one being reconnected, or this end user's
    /// connection of the same account. Never another end user's: the same account connected
    /// for a second end user is that end user's own connection.
    async fn existing_for(
        &self,
        profile: &ProfileRecord,
        end_user_id: Option<&str>,
        reconnect: Option<&ConnectionId>,
        account_key: &str,
    ) -> CoreResult<Option<ConnectionRecord>> {
        let Some(id) = reconnect else {
            return Ok(self
                .store
                .connection_by_account(&profile.id, end_user_id, account_key)
                .await?);
        };
        let existing = self
            .store
            .connection(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("connection `{id}`")))?;
        if existing.account_key != account_key {
            return Err(CoreError::Conflict(format!(
                "a different account authorized than the one connection `{id}` belongs to"
            )));
        }
        if existing.end_user_id.as_deref() != end_user_id {
            return Err(CoreError::Conflict(format!(
                "connection `{id}` belongs to another end user; it is never moved"
            )));
        }
        Ok(Some(existing))
    }

    pub(crate) async fn save_acquired(
        &self,
        profile: &ProfileRecord,
        end_user_id: Option<String>,
        reconnect: Option<&ConnectionId>,
        acquired: Acquired,
        actor: &Actor,
    ) -> CoreResult<Saved> {
        let account_key = format!(
            "{}:{}",
            acquired.credential.as_str(),
            acquired.identity.account_id
        );
        let mut existing = self
            .existing_for(profile, end_user_id.as_deref(), reconnect, &account_key)
            .await?;
        if existing.is_none()
            && reconnect.is_none()
            && acquired.credential == CredentialKind::ApiToken
            && let Some(login) = acquired.login.as_deref()
            && login != acquired.identity.account_id
        {
            // An API token Bitbucket did not name the account of (stored before Grantry asked,
            // or without `read:user:bitbucket`) is keyed by its e-mail: the same account's new
            // token replaces it rather than making a second connection.
            let by_email = format!("{}:{login}", CredentialKind::ApiToken.as_str());
            existing = self
                .store
                .connection_by_account(&profile.id, end_user_id.as_deref(), &by_email)
                .await?;
        }
        let record = self.new_record(
            profile,
            end_user_id,
            existing.as_ref(),
            account_key,
            &acquired,
        )?;
        let missing_scopes = self.missing_scopes(profile, &record.granted_scopes);
        let announce = self.connected_announcements(profile, existing.as_ref(), &record, actor);
        let reconnected = match existing {
            Some(_) => self.store.replace_connection(&record, &announce).await?,
            None => match self.store.insert_connection(&record, &announce).await {
                Ok(()) => false,
                Err(StoreError::Conflict(_)) => {
                    // The same account connected at the same moment in another request.
                    return Box::pin(self.save_acquired(
                        profile,
                        record.end_user_id.clone(),
                        None,
                        acquired,
                        actor,
                    ))
                    .await;
                }
                Err(error) => return Err(error.into()),
            },
        };
        self.cache.forget(&record.id);
        tracing::debug!(connection.id = %record.id, reconnected, "connection saved");
        Ok(Saved {
            record,
            missing_scopes,
        })
    }

    /// What a (re)connect announces: created or reconnected, then recovered (it was failing or
    /// needed reauthorization) or short of scopes.
    fn connected_announcements(
        &self,
        profile: &ProfileRecord,
        existing: Option<&ConnectionRecord>,
        record: &ConnectionRecord,
        actor: &Actor,
    ) -> Vec<Announcement> {
        let (kind, verb) = if existing.is_some() {
            (EventKind::ConnectionReconnected, "reconnected")
        } else {
            (EventKind::ConnectionCreated, "connected")
        };
        let who = record.account_username.as_deref().unwrap_or("an account");
        let detail = format!(
            "{who} {verb} ({}, {})",
            record.credential.as_str(),
            record.status.as_str()
        );
        let now = (record.status, record.status_reason.as_deref());
        let mut announce = vec![self.about_connection(kind, profile, record, now, actor, detail)];
        let was = existing.map(|c| c.status);
        let follow_up = match record.status {
            ConnectionStatus::InsufficientScopes => Some((
                EventKind::ConnectionInsufficientScopes,
                "Connected without some required scopes",
            )),
            ConnectionStatus::Active
                if matches!(
                    was,
                    Some(ConnectionStatus::Failing | ConnectionStatus::NeedsReauth)
                ) =>
            {
                Some((EventKind::ConnectionRecovered, "Reconnected: working again"))
            }
            _ => None,
        };
        if let Some((kind, detail)) = follow_up {
            announce.push(self.about_connection(
                kind,
                profile,
                record,
                now,
                actor,
                detail.to_owned(),
            ));
        }
        announce
    }

    fn new_record(
        &self,
        profile: &ProfileRecord,
        end_user_id: Option<String>,
        existing: Option<&ConnectionRecord>,
        account_key: String,
        acquired: &Acquired,
    ) -> CoreResult<ConnectionRecord> {
        let now = acquired.obtained_at;
        let id = existing.map_or_else(ConnectionId::generate, |c| c.id.clone());
        let grant = &acquired.grant;
        let expires_at = match acquired.credential {
            CredentialKind::ApiToken | CredentialKind::AccessToken => {
                grant.expires_in.map(|s| now.plus_seconds(s as i64))
            }
            _ => Some(
                now.plus_seconds(
                    grant
                        .expires_in
                        .unwrap_or(profile.provider.spec().default_token_ttl)
                        as i64,
                ),
            ),
        };
        let scopes = grant
            .scopes
            .clone()
            .or_else(|| acquired.identity.scopes.clone())
            .unwrap_or_default();
        let (status, status_reason) = match acquired.credential {
            CredentialKind::ApiToken => api_token_status(profile, &scopes),
            _ => self.scope_status(profile, &scopes),
        };
        let refresh_token = match &grant.refresh_token {
            Some(token) => Some(self.seal(
                SealedColumn::RefreshToken,
                id.as_str(),
                token.expose_secret(),
            )?),
            None => None,
        };
        let refresh_token_at = refresh_token.as_ref().map(|_| now);
        Ok(ConnectionRecord {
            profile_id: profile.id.clone(),
            end_user_id,
            credential: acquired.credential,
            account_key,
            account_id: Some(acquired.identity.account_id.clone()),
            account_username: Some(acquired.identity.username.clone()),
            account_display_name: Some(acquired.identity.display_name.clone()),
            login: acquired.login.clone(),
            status,
            status_reason,
            granted_scopes: scopes,
            access_token: self.seal(
                SealedColumn::AccessToken,
                id.as_str(),
                grant.access_token.expose_secret(),
            )?,
            refresh_token,
            expires_at,
            refreshed_at: Some(now),
            refresh_token_at,
            next_refresh_at: schedule::next_refresh_at(
                acquired.credential,
                now,
                expires_at,
                refresh_token_at,
                &self.settings.refresh,
            ),
            failures: 0,
            last_error: None,
            version: existing.map_or(1, |c| c.version + 1),
            lease_owner: None,
            lease_until: None,
            created_at: existing.map_or(now, |c| c.created_at),
            updated_at: self.clock.now(),
            id,
        })
    }
}

/// The API token scopes a profile's needs call for that `granted` lacks. API token scopes are
/// their own vocabulary and none implies another, so the profile's classic scopes are read as
/// the API token scopes that do the same (`bitbucket_facts::api_tokens::for_classic`). Where
/// Bitbucket did not say which scopes the token holds (`granted` empty), nothing is known to
/// be missing.
fn api_token_missing(profile: &ProfileRecord, granted: &[String]) -> Vec<String> {
    if granted.is_empty() {
        return Vec::new();
    }
    let known = granted
        .iter()
        .filter(|s| api_tokens::SCOPES.bit(s).is_ok())
        .map(String::as_str);
    let held = api_tokens::SCOPES
        .from_names(known)
        .unwrap_or_else(|_| api_tokens::SCOPES.empty());
    held.missing(&api_token_scopes(profile)).to_vec()
}

/// Status and reason for an API token's scopes against a profile's needs.
fn api_token_status(
    profile: &ProfileRecord,
    granted: &[String],
) -> (ConnectionStatus, Option<String>) {
    let missing = api_token_missing(profile, granted);
    if missing.is_empty() {
        return (ConnectionStatus::Active, None);
    }
    let advice = format!(
        "the API token lacks {}: create one with these scopes ticked (Atlassian account settings > Security > API tokens)",
        missing.join(", ")
    );
    (ConnectionStatus::InsufficientScopes, Some(advice))
}

/// The API token scopes a profile's required scopes correspond to.
fn api_token_scopes(profile: &ProfileRecord) -> ScopeSet {
    let classic = profile
        .provider
        .spec()
        .parse_scopes(profile.required_scopes.iter().map(String::as_str))
        .unwrap_or_else(|_| bitbucket_facts::cloud::SCOPES.empty());
    api_tokens::for_classic(&classic)
}

impl Grantry {
    /// The scopes a connection lacks for its profile, in its credential's own words (API
    /// tokens have scopes of their own).
    pub fn connection_missing_scopes(
        &self,
        profile: &ProfileRecord,
        connection: &ConnectionRecord,
    ) -> Vec<String> {
        match connection.credential {
            CredentialKind::ApiToken => api_token_missing(profile, &connection.granted_scopes),
            _ => self.missing_scopes(profile, &connection.granted_scopes),
        }
    }
}
