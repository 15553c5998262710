//! Listing, reading, deleting and testing connections; connecting without a browser
//! (client credentials) and storing static credentials (API tokens, access tokens).

use secrecy::{ExposeSecret, SecretString};

use super::save::Acquired;
use crate::app::{Actor, Grantry};
use crate::clock::Timestamp;
use crate::connect::session::end_user_id;
use crate::error::{CoreError, CoreResult};
use crate::events::EventKind;
use crate::ids::ConnectionId;
use crate::provider::{ApiAnswer, Identity, Presented, ProviderFailure, TokenGrant};
use crate::store::{
    ConnectionFilter, ConnectionRecord, CredentialKind, PageRequest, ProfileRecord,
};
use crate::tokens::CachedToken;

/// A credential to connect without a browser.
pub enum NewCredential {
    /// Run a private Cloud consumer's client credentials grant (renewed before expiry).
    ClientCredentials,
    /// An Atlassian API token with the account's email, presented as HTTP Basic (Cloud only).
    ApiToken {
        email: String,
        token: SecretString,
        expires_at: Option<Timestamp>,
    },
    /// A repository, project or workspace access token, presented as Bearer.
    AccessToken {
        token: SecretString,
        expires_at: Option<Timestamp>,
    },
}

pub struct NewConnection {
    /// Profile id or name.
    pub profile: String,
    pub end_user_id: Option<String>,
    pub credential: NewCredential,
}

fn static_token(field: &str, token: &SecretString) -> CoreResult<()> {
    let text = token.expose_secret();
    if text.is_empty()
        || text.len() > 16_384
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CoreError::invalid(
            field,
            "a token of 1 to 16384 characters without spaces",
        ));
    }
    Ok(())
}

fn not_expired(expires_at: Option<Timestamp>, now: Timestamp) -> CoreResult<()> {
    if expires_at.is_some_and(|at| at <= now) {
        return Err(CoreError::invalid(
            "expires_at",
            "the token has already expired",
        ));
    }
    Ok(())
}

fn email(value: &str) -> CoreResult<String> {
    let value = value.trim();
    let plausible = value.len() <= 254
        && value
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if plausible {
        Ok(value.to_owned())
    } else {
        Err(CoreError::invalid(
            "email",
            "the Atlassian account's email address",
        ))
    }
}

impl Grantry {
    /// How many connections each profile has, by status (the console's list, `/metrics`).
    pub async fn connection_counts(
        &self,
    ) -> CoreResult<Vec<(crate::ids::ProfileId, crate::store::ConnectionStatus, u64)>> {
        Ok(self.store.connection_counts().await?)
    }

    /// How many API tokens and access tokens in use end within the warning period
    /// (`webhooks.expiry_warning_days`): each needs a new one from its user before then.
    pub async fn credentials_ending_soon(&self) -> CoreResult<u64> {
        let now = self.clock.now();
        let until = now + self.settings.webhooks.expiry_warning;
        Ok(self.store.credentials_ending(now, until).await?)
    }

    pub async fn connection(&self, id: &ConnectionId) -> CoreResult<ConnectionRecord> {
        self.store
            .connection(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("connection `{id}`")))
    }

    pub async fn list_connections(
        &self,
        filter: &ConnectionFilter,
        page: &PageRequest,
    ) -> CoreResult<Vec<ConnectionRecord>> {
        Ok(self.store.connections(filter, page).await?)
    }

    pub async fn delete_connection(
        &self,
        id: &ConnectionId,
        actor: &Actor,
    ) -> CoreResult<ConnectionRecord> {
        let connection = self.connection(id).await?;
        let profile = self.store.profile(&connection.profile_id).await?;
        let who = connection
            .account_username
            .as_deref()
            .unwrap_or("an account");
        let detail = format!("{who} disconnected");
        let announce: Vec<_> = profile
            .iter()
            .map(|profile| {
                let status = (connection.status, Some("deleted"));
                self.about_connection(
                    EventKind::ConnectionDeleted,
                    profile,
                    &connection,
                    status,
                    actor,
                    detail.clone(),
                )
            })
            .collect();
        if !self.store.delete_connection(id, &announce).await? {
            return Err(CoreError::NotFound(format!("connection `{id}`")));
        }
        self.cache.forget(id);
        self.flights.forget(id);
        Ok(connection)
    }

    /// Connects without a browser: client credentials, an API token or an access token.
    pub async fn create_connection(
        &self,
        new: NewConnection,
        actor: &Actor,
    ) -> CoreResult<ConnectionRecord> {
        let profile = self.find_profile(&new.profile).await?;
        let end_user = end_user_id(new.end_user_id)?;
        let acquired = match new.credential {
            NewCredential::ClientCredentials => self.client_credentials_grant(&profile).await?,
            NewCredential::ApiToken {
                email: address,
                token,
                expires_at,
            } => {
                static_token("token", &token)?;
                let address = email(&address)?;
                let now = self.clock.now();
                not_expired(expires_at, now)?;
                if !profile.provider.spec().api_tokens {
                    return Err(CoreError::invalid(
                        "credential",
                        "API tokens are Bitbucket Cloud's; on Data Center, store an HTTP access token",
                    ));
                }
                let presented = Presented::Basic {
                    username: &address,
                    password: &token,
                };
                let identity = self
                    .static_identity(&profile, presented, "API token")
                    .await?
                    .unwrap_or_else(|| Identity {
                        account_id: address.clone(),
                        username: address.clone(),
                        display_name: address.clone(),
                        scopes: None,
                    });
                Acquired {
                    credential: CredentialKind::ApiToken,
                    grant: TokenGrant {
                        access_token: token,
                        refresh_token: None,
                        expires_in: expires_at.map(|at| (at - now) as u64),
                        scopes: identity.scopes.clone(),
                    },
                    identity,
                    login: Some(address),
                    obtained_at: now,
                }
            }
            NewCredential::AccessToken { token, expires_at } => {
                static_token("token", &token)?;
                let now = self.clock.now();
                not_expired(expires_at, now)?;
                // Not checked with Bitbucket: an access token acts for its resource, and no
                // endpoint is open to every access token (`/user` is not). Its first refused
                // proxied call, or its expiry, marks the connection (see `tokens/verify.rs`).
                let fingerprint = &grantry_crypto::sha256_hex(token.expose_secret())[..16];
                Acquired {
                    credential: CredentialKind::AccessToken,
                    identity: Identity {
                        account_id: format!("token-{fingerprint}"),
                        username: format!("access token {fingerprint}"),
                        display_name: "Access token".into(),
                        scopes: None,
                    },
                    grant: TokenGrant {
                        access_token: token,
                        refresh_token: None,
                        expires_in: expires_at.map(|at| (at - now) as u64),
                        scopes: Some(profile.required_scopes.clone()),
                    },
                    login: None,
                    obtained_at: now,
                }
            }
        };
        let saved = self
            .save_acquired(&profile, end_user, None, acquired, actor)
            .await?;
        Ok(saved.record)
    }

    /// Asks Bitbucket who an API token belongs to, before storing it. Refused (401): rejected
    /// with a clear error. Answered but not as a user (a 403: the token may not read the
    /// account): `None`, stored under the e-mail it came with.
    async fn static_identity(
        &self,
        profile: &ProfileRecord,
        credential: Presented<'_>,
        what: &str,
    ) -> CoreResult<Option<Identity>> {
        let client = self.oauth_client(profile)?;
        let provider = profile.provider.spec().display_name;
        match self.provider.identity(&client.target(), credential).await {
            Ok(identity) => Ok(Some(identity)),
            Err(ProviderFailure::Http { status: 401, .. }) => Err(CoreError::invalid(
                "token",
                format!(
                    "{provider} refused this {what}: check it (and the e-mail it goes with), and that it has not expired or been revoked"
                ),
            )),
            Err(failure @ ProviderFailure::Network { .. }) => Err(CoreError::ProviderUnavailable {
                retry_after: 5,
                cause: failure.to_string(),
            }),
            Err(failure @ ProviderFailure::Http { status, .. }) if status >= 500 => {
                Err(CoreError::ProviderUnavailable {
                    retry_after: 5,
                    cause: failure.to_string(),
                })
            }
            Err(_) => Ok(None),
        }
    }

    async fn client_credentials_grant(
        &self,
        profile: &crate::store::ProfileRecord,
    ) -> CoreResult<Acquired> {
        let spec = profile.provider.spec();
        if !spec.client_credentials || !profile.private {
            return Err(CoreError::invalid(
                "credential",
                format!(
                    "client credentials need a private {} consumer; mark the profile private once the consumer is",
                    spec.display_name
                ),
            ));
        }
        let client = self.oauth_client(profile)?;
        let obtained_at = self.clock.now();
        let grant = self
            .provider
            .client_credentials(&client.target())
            .await
            .map_err(CoreError::Provider)?;
        let identity = self
            .provider
            .identity(&client.target(), Presented::Bearer(&grant.access_token))
            .await
            .map_err(CoreError::Provider)?;
        Ok(Acquired {
            credential: CredentialKind::ClientCredentials,
            identity,
            grant,
            login: None,
            obtained_at,
        })
    }

    /// Calls the provider's identity endpoint with the connection's token and answers what it
    /// said (the console's "Test").
    pub async fn test_connection(&self, id: &ConnectionId) -> CoreResult<ApiAnswer> {
        let token = self.token(id).await?;
        let profile = self.profile_of(&token).await?;
        let client = self.oauth_client(&profile)?;
        self.provider
            .probe(&client.target(), presented(&token))
            .await
            .map_err(CoreError::Provider)
    }

    pub(crate) async fn profile_of(&self, token: &CachedToken) -> CoreResult<ProfileRecord> {
        self.store
            .profile(&token.profile_id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("profile `{}`", token.profile_id)))
    }
}

/// How a cached credential is presented to the provider's API.
pub(crate) fn presented(token: &CachedToken) -> Presented<'_> {
    match &token.login {
        Some(login) => Presented::Basic {
            username: login,
            password: &token.access_token,
        },
        None => Presented::Bearer(&token.access_token),
    }
}
