//! What the store keeps, as plain records. Sealed secrets are opaque bytes: the store never sees
//! a plaintext secret. Times are Unix seconds.

use serde::{Deserialize, Serialize};

use crate::catalog::ProviderKind;
use crate::clock::Timestamp;
use crate::ids::{AdminId, ApiKeyId, ConnectionId, EventId, ProfileId, SessionId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRecord {
    pub id: ProfileId,
    pub name: String,
    pub description: String,
    pub provider: ProviderKind,
    pub client_id: String,
    /// Sealed at (`profiles`, `client_secret`, id).
    pub client_secret: Vec<u8>,
    /// Data Center instance, e.g. `https://git.example.com/bitbucket`.
    pub base_url: Option<String>,
    pub required_scopes: Vec<String>,
    pub allowed_return_urls: Vec<String>,
    /// Cloud: the consumer is private, so client-credentials connections are allowed.
    pub private: bool,
    /// Connections made through a connect session with the application's return URL wait for
    /// the application to confirm that the browser that finished is its own signed-in user.
    pub confirm_connections: bool,
    /// Set when the provider refused the client itself (`unauthorized_client`).
    pub problem: Option<String>,
    pub problem_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The state of a connection, as applications and admins see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    /// The provider refused the refresh token or the grant was revoked: the user must reconnect.
    NeedsReauth,
    /// Connected, but the token lacks some of the profile's required scopes.
    InsufficientScopes,
    /// Transient errors; the current token is still served while it is valid.
    Failing,
}

impl ConnectionStatus {
    pub const ALL: [ConnectionStatus; 4] = [
        ConnectionStatus::Active,
        ConnectionStatus::NeedsReauth,
        ConnectionStatus::InsufficientScopes,
        ConnectionStatus::Failing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::InsufficientScopes => "insufficient_scopes",
            ConnectionStatus::Failing => "failing",
        }
    }

    pub fn parse(text: &str) -> Option<ConnectionStatus> {
        ConnectionStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// How a connection's credential was obtained and is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// Authorization code grant; refreshed with a refresh token.
    Oauth2,
    /// A private consumer's own token; the grant is run again before expiry.
    ClientCredentials,
    /// An Atlassian API token with the account's email (HTTP Basic).
    ApiToken,
    /// A static bearer token (repository, project or workspace access token).
    AccessToken,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 4] = [
        CredentialKind::Oauth2,
        CredentialKind::ClientCredentials,
        CredentialKind::ApiToken,
        CredentialKind::AccessToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Oauth2 => "oauth2",
            CredentialKind::ClientCredentials => "client_credentials",
            CredentialKind::ApiToken => "api_token",
            CredentialKind::AccessToken => "access_token",
        }
    }

    pub fn parse(text: &str) -> Option<CredentialKind> {
        CredentialKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether Grantry renews this credential itself.
    pub fn renewable(self) -> bool {
        matches!(
            self,
            CredentialKind::Oauth2 | CredentialKind::ClientCredentials
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub profile_id: ProfileId,
    /// The application's own id for its user.
    pub end_user_id: Option<String>,
    pub credential: CredentialKind,
    /// Unique per profile: the same account connecting again updates this connection.
    pub account_key: String,
    pub account_id: Option<String>,
    pub account_username: Option<String>,
    pub account_display_name: Option<String>,
    /// HTTP Basic user name for API tokens (the Atlassian account's email).
    pub login: Option<String>,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub granted_scopes: Vec<String>,
    /// Sealed at (`connections`, `access_token`, id).
    pub access_token: Vec<u8>,
    /// Sealed at (`connections`, `refresh_token`, id).
    pub refresh_token: Option<Vec<u8>>,
    pub expires_at: Option<Timestamp>,
    pub refreshed_at: Option<Timestamp>,
    /// When the current refresh token was issued (rotating tokens die unused after 90 days).
    pub refresh_token_at: Option<Timestamp>,
    /// When the refresher should next look at this connection.
    pub next_refresh_at: Option<Timestamp>,
    pub failures: i64,
    pub last_error: Option<String>,
    /// Bumped by every token write; writes are guarded by it.
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// New tokens after a successful refresh, written in one statement.
#[derive(Debug, Clone)]
pub struct TokenWrite {
    pub access_token: Vec<u8>,
    /// `None` keeps the stored refresh token (a provider that did not rotate it).
    pub refresh_token: Option<Vec<u8>>,
    pub refresh_token_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub granted_scopes: Vec<String>,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub refreshed_at: Timestamp,
    pub next_refresh_at: Option<Timestamp>,
    /// What to announce with the write (`connection.recovered`), in its transaction.
    pub announce: Vec<super::Announcement>,
}

/// The outcome of a failed refresh (or a decision not to refresh); releases the lease.
#[derive(Debug, Clone)]
pub struct OutcomeWrite {
    /// The row's version the outcome is about: a row replaced since (a reconnect, a new
    /// credential stored over the old) is left alone.
    pub version: i64,
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub failures: i64,
    pub last_error: Option<String>,
    pub next_refresh_at: Option<Timestamp>,
    /// What to announce with the outcome (`connection.failing`, …), in its transaction.
    pub announce: Vec<super::Announcement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    /// SHA-256 of the secret in the connect URL.
    pub token_digest: String,
    pub profile_id: ProfileId,
    pub end_user_id: Option<String>,
    pub return_url: String,
    /// Set for a reconnect: the connection keeps its id.
    pub connection_id: Option<ConnectionId>,
    /// SHA-256 of the OAuth `state`, set when the browser arrives.
    pub state_digest: Option<String>,
    /// PKCE verifier, sealed at (`connect_sessions`, `pkce_verifier`, id).
    pub pkce_verifier: Option<Vec<u8>>,
    /// SHA-256 of the nonce the connect link set in the browser; the callback must bring it.
    pub browser_digest: Option<String>,
    /// SHA-256 of the one-time code the browser takes back to the application.
    pub verification_digest: Option<String>,
    /// The credential the callback obtained, sealed at (`connect_sessions`, `pending_grant`,
    /// id), until the application confirms it (or `confirm_by` passes).
    pub pending_grant: Option<Vec<u8>>,
    pub confirm_by: Option<Timestamp>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub opened_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub confirmed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including profiles and API keys.
    Admin,
    /// Connect sessions, connections and tokens.
    App,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::App => "app",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Admin, Role::App]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the key.
    pub digest: String,
    /// The first characters, for listings.
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: EventId,
    pub at: Timestamp,
    /// e.g. `connection.needs_reauth`
    pub kind: String,
    pub profile_id: Option<ProfileId>,
    pub connection_id: Option<ConnectionId>,
    /// Who did it: `api-key:key_…`, `admin:alice`, `cli`, `system`.
    pub actor: String,
    /// A sentence for people; never a secret.
    pub detail: String,
}

/// What `Store::delete_admin` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRemoval {
    Removed,
    NotFound,
    /// Refused: the admin is the only one.
    LastAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord {
    pub id: AdminId,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// A signed-in console admin's session, found by the digest of the cookie's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    pub digest: String,
    pub admin_id: AdminId,
    pub username: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end, whatever the activity.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub profile_id: Option<ProfileId>,
    pub end_user_id: Option<String>,
    pub status: Option<ConnectionStatus>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub profile_id: Option<ProfileId>,
    pub connection_id: Option<ConnectionId>,
    /// Exact kind, or a prefix ending in `.` (`connection.`).
    pub kind: Option<String>,
}

/// Keyset pagination: items with an id after `after`, ascending (events: descending).
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

/// A sealed column, for re-sealing under a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    ProfileSecret,
    AccessToken,
    RefreshToken,
    PkceVerifier,
    PendingGrant,
    WebhookSecret,
    WebhookPreviousSecret,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 7] = [
        SealedColumn::ProfileSecret,
        SealedColumn::AccessToken,
        SealedColumn::RefreshToken,
        SealedColumn::PkceVerifier,
        SealedColumn::PendingGrant,
        SealedColumn::WebhookSecret,
        SealedColumn::WebhookPreviousSecret,
    ];

    /// What a value sealed in this column's cell of `row` is bound to.
    pub fn binding(self, row: &str) -> grantry_crypto::Binding<'_> {
        let (table, column) = self.location();
        grantry_crypto::Binding::new(table, column, row)
    }

    /// (table, column), also the sealed value's binding.
    pub fn location(self) -> (&'static str, &'static str) {
        match self {
            SealedColumn::ProfileSecret => ("profiles", "client_secret"),
            SealedColumn::AccessToken => ("connections", "access_token"),
            SealedColumn::RefreshToken => ("connections", "refresh_token"),
            SealedColumn::PkceVerifier => ("connect_sessions", "pkce_verifier"),
            SealedColumn::PendingGrant => ("connect_sessions", "pending_grant"),
            SealedColumn::WebhookSecret => ("webhooks", "secret"),
            SealedColumn::WebhookPreviousSecret => ("webhooks", "previous_secret"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCell {
    pub row_id: String,
    pub value: Vec<u8>,
}
