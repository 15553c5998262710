//! What the API answers. These are not database rows: no sealed values, no leases, times as
//! RFC 3339, and secrets only where the caller asked for one (a token, a new API key).

use grantry_core::catalog::SetupGuide;
use grantry_core::clock::{Timestamp, rfc3339};
use grantry_core::store::{
    AdminRecord, ApiKeyRecord, ConnectionRecord, CredentialKind, EventRecord, ProfileRecord,
};
use grantry_core::tokens::CachedToken;
use grantry_core::tokens::cache::Rendered;
use secrecy::ExposeSecret;
use serde::Serialize;

fn time(at: Option<Timestamp>) -> Option<String> {
    at.map(rfc3339)
}

#[derive(Serialize)]
pub struct ProblemView {
    pub message: String,
    pub at: Option<String>,
}

#[derive(Serialize)]
pub struct ProfileView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub provider: &'static str,
    /// The OAuth client id (Bitbucket's consumer "Key"); the secret is never returned.
    pub key: String,
    pub base_url: Option<String>,
    pub required_scopes: Vec<String>,
    pub allowed_return_urls: Vec<String>,
    pub private: bool,
    /// Connections through a connect session with a return URL wait for the application's
    /// confirmation.
    pub confirm_connections: bool,
    pub callback_url: String,
    pub problem: Option<ProblemView>,
    pub created_at: String,
    pub updated_at: String,
    /// What to configure at the provider.
    pub setup: SetupGuide,
}

impl ProfileView {
    pub fn new(profile: ProfileRecord, setup: SetupGuide) -> ProfileView {
        ProfileView {
            id: profile.id.to_string(),
            provider: profile.provider.as_str(),
            key: profile.client_id,
            base_url: profile.base_url,
            required_scopes: profile.required_scopes,
            allowed_return_urls: profile.allowed_return_urls,
            private: profile.private,
            confirm_connections: profile.confirm_connections,
            callback_url: setup.callback_url.clone(),
            problem: profile.problem.map(|message| ProblemView {
                message,
                at: time(profile.problem_at),
            }),
            created_at: rfc3339(profile.created_at),
            updated_at: rfc3339(profile.updated_at),
            name: profile.name,
            description: profile.description,
            setup,
        }
    }
}

#[derive(Serialize)]
pub struct AccountView {
    pub id: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Serialize)]
pub struct ConnectionView {
    pub id: String,
    pub profile_id: String,
    pub end_user_id: Option<String>,
    pub credential: &'static str,
    pub status: &'static str,
    pub status_reason: Option<String>,
    pub account: AccountView,
    pub granted_scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub refreshed_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The profile's required scopes the grant lacks, where the answer just saved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_scopes: Option<Vec<String>>,
}

impl ConnectionView {
    /// A connection just saved, with what its grant lacks.
    pub fn saved(saved: grantry_core::connections::Saved) -> ConnectionView {
        ConnectionView {
            missing_scopes: Some(saved.missing_scopes),
            ..ConnectionView::from(saved.record)
        }
    }
}

impl From<ConnectionRecord> for ConnectionView {
    fn from(c: ConnectionRecord) -> Self {
        ConnectionView {
            id: c.id.to_string(),
            profile_id: c.profile_id.to_string(),
            end_user_id: c.end_user_id,
            credential: c.credential.as_str(),
            status: c.status.as_str(),
            status_reason: c.status_reason,
            account: AccountView {
                id: c.account_id,
                username: c.account_username,
                display_name: c.account_display_name,
            },
            granted_scopes: c.granted_scopes,
            expires_at: time(c.expires_at),
            refreshed_at: time(c.refreshed_at),
            last_error: c.last_error,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            missing_scopes: None,
        }
    }
}

/// `GET /v1/connections/{id}/token`
#[derive(Serialize)]
pub struct TokenView {
    pub connection_id: String,
    /// The secret to present: an access token, or an API token.
    pub access_token: String,
    /// `bearer` or `basic`.
    pub token_type: &'static str,
    /// The header value, ready to send: `Bearer …` or `Basic …`.
    pub authorization: String,
    /// HTTP Basic user name, for API tokens.
    pub username: Option<String>,
    pub expires_at: Option<String>,
    pub scopes: Vec<String>,
    pub status: &'static str,
    pub account: AccountView,
    /// Seconds left; absent for credentials that do not expire. Last, so a rendered answer can
    /// be reused with only this value written fresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
}

impl TokenView {
    /// The JSON answer for a cached token, rendered once per token and completed with the
    /// seconds left.
    pub fn json(token: &CachedToken, now: Timestamp) -> Vec<u8> {
        let rendered = token.rendered.get_or_init(|| {
            let mut head =
                serde_json::to_vec(&TokenView::new(token, None)).expect("a view serializes");
            head.pop();
            Rendered {
                head,
                tail: b"}".to_vec(),
            }
        });
        let mut body = Vec::with_capacity(rendered.head.len() + 40);
        body.extend_from_slice(&rendered.head);
        if let Some(expires_at) = token.expires_at {
            body.extend_from_slice(
                format!(",\"expires_in\":{}", (expires_at - now).max(0)).as_bytes(),
            );
        }
        body.extend_from_slice(&rendered.tail);
        body
    }

    pub fn at(token: &CachedToken, now: Timestamp) -> TokenView {
        TokenView::new(token, Some(now))
    }

    fn new(token: &CachedToken, now: Option<Timestamp>) -> TokenView {
        use base64::Engine;
        let secret = token.access_token.expose_secret().to_owned();
        let (token_type, authorization) = match (&token.login, token.credential) {
            (Some(login), CredentialKind::ApiToken) => {
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{login}:{secret}"));
                ("basic", format!("Basic {pair}"))
            }
            _ => ("bearer", format!("Bearer {secret}")),
        };
        TokenView {
            connection_id: token.connection_id.to_string(),
            access_token: secret,
            token_type,
            authorization,
            username: token.login.clone(),
            expires_at: time(token.expires_at),
            expires_in: now.and_then(|now| token.expires_at.map(|at| (at - now).max(0))),
            scopes: token.scopes.clone(),
            status: token.status.as_str(),
            account: AccountView {
                id: token.account_id.clone(),
                username: token.account_username.clone(),
                display_name: token.account_display_name.clone(),
            },
        }
    }
}

#[derive(Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub hint: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// Only when just created: the key itself, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A console admin; never the password hash.
#[derive(Serialize)]
pub struct AdminView {
    pub id: String,
    pub username: String,
    pub created_at: String,
}

impl From<&AdminRecord> for AdminView {
    fn from(a: &AdminRecord) -> Self {
        AdminView {
            id: a.id.to_string(),
            username: a.username.clone(),
            created_at: rfc3339(a.created_at),
        }
    }
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(k: ApiKeyRecord) -> Self {
        ApiKeyView {
            id: k.id.to_string(),
            name: k.name,
            role: k.role.as_str(),
            hint: k.hint,
            created_at: rfc3339(k.created_at),
            revoked_at: time(k.revoked_at),
            key: None,
        }
    }
}

#[derive(Serialize)]
pub struct EventView {
    pub id: String,
    pub at: String,
    pub kind: String,
    pub profile_id: Option<String>,
    pub connection_id: Option<String>,
    pub actor: String,
    pub detail: String,
}

impl From<EventRecord> for EventView {
    fn from(e: EventRecord) -> Self {
        EventView {
            id: e.id.to_string(),
            at: rfc3339(e.at),
            kind: e.kind,
            profile_id: e.profile_id.map(|p| p.to_string()),
            connection_id: e.connection_id.map(|c| c.to_string()),
            actor: e.actor,
            detail: e.detail,
        }
    }
}

/// One page of a listing; `next_cursor` continues it.
#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
