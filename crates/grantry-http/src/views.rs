//! What the API answers. These are not database rows: no sealed values, no leases, times as
//! RFC 3339, and secrets only where the caller asked for one (a token, a new API key).

use grantry_core::catalog::SetupGuide;
use grantry_core::clock::{Rfc3339, Timestamp, rfc3339};
use grantry_core::store::{
    AdminRecord, ApiKeyRecord, ConnectionRecord, CredentialKind, DeliveryRecord, DeliveryState,
    EventRecord, ProfileRecord, WebhookRecord,
};
use grantry_core::tokens::CachedToken;
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

fn time(at: Option<Timestamp>) -> Option<String> {
    at.map(rfc3339)
}

#[derive(Serialize, ToSchema)]
pub struct ProblemView {
    pub message: String,
    pub at: Option<String>,
}

#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    pub id: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

/// A connected account or stored credential. The example is a real answer of `grantry demo`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "con_01m98yxhxgscse16wks9p4tdmm", "profile_id": "prf_01m98yxhwt9arvmar47z18wqnk",
    "end_user_id": "user-42", "credential": "oauth2", "status": "active", "status_reason": null,
    "account": {"id": "{1374021b-80d8-e92e-779b-72f5c7393fb4}", "username": "alice", "display_name": "Alice Liddell"},
    "granted_scopes": ["account", "email", "repository", "repository:write", "pullrequest"],
    "expires_at": "2026-12-07T21:15:32Z", "refreshed_at": "2026-12-07T19:15:32Z", "last_error": null,
    "created_at": "2026-12-07T19:15:32Z", "updated_at": "2026-12-07T19:15:32Z"}))]
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

/// `GET /v1/connections/{id}/token`, borrowed from the cached token: a read copies the token
/// only into its answer.
/// The example is a real answer of `grantry demo`, the 2,600-character token cut short.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"connection_id": "con_01m98yxhxgscse16wks9p4tdmm", "access_token": "wyNr0erDWyBliuz-CtPf…",
    "token_type": "bearer", "authorization": "Bearer wyNr0erDWyBliuz-CtPf…", "username": null,
    "expires_at": "2026-12-07T21:15:32Z", "scopes": ["account", "email", "repository", "repository:write", "pullrequest"],
    "status": "active", "account": {"id": "{1374021b-80d8-e92e-779b-72f5c7393fb4}", "username": "alice",
    "display_name": "Alice Liddell"}, "expires_in": 7196}))]
pub struct TokenView<'a> {
    pub connection_id: &'a str,
    /// The secret to present: an access token, or an API token.
    pub access_token: &'a str,
    /// `bearer` or `basic`.
    pub token_type: &'static str,
    /// The header value, ready to send: `Bearer …` or `Basic …`.
    #[schema(value_type = String)]
    pub authorization: Authorization<'a>,
    /// HTTP Basic user name, for API tokens.
    pub username: Option<&'a str>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Rfc3339>,
    pub scopes: &'a [String],
    pub status: &'static str,
    pub account: AccountRef<'a>,
    /// Seconds left; absent for credentials that do not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
}

/// An `Authorization` header value, written straight into the answer.
pub enum Authorization<'a> {
    Bearer(&'a str),
    /// `login:secret`, base64.
    Basic(String),
}

impl std::fmt::Display for Authorization<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::Bearer(token) => write!(f, "Bearer {token}"),
            Authorization::Basic(pair) => write!(f, "Basic {pair}"),
        }
    }
}

impl Serialize for Authorization<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Who a token acts for, borrowed.
#[derive(Serialize, ToSchema)]
pub struct AccountRef<'a> {
    pub id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

impl<'a> TokenView<'a> {
    /// The JSON answer for a token at `now`. The hot path of token reads: the token (which
    /// appears twice, 2,600 characters each on Bitbucket Cloud) and every other string are
    /// copied as they are when they need no escaping, which is always for Bitbucket's tokens;
    /// a string that does goes through serde_json. The same bytes as
    /// `serde_json::to_vec(&TokenView::at(token, now))` (a test holds them to it).
    pub fn json(token: &CachedToken, now: Timestamp) -> Vec<u8> {
        let view = TokenView::at(token, now);
        let mut out = Vec::with_capacity(2 * view.access_token.len() + 512);
        if !plain(view.access_token) || view.username.is_some_and(|u| !plain(u)) {
            serde_json::to_writer(&mut out, &view).expect("a view serializes");
            return out;
        }
        out.extend_from_slice(b"{\"connection_id\":");
        json::string(&mut out, view.connection_id);
        out.extend_from_slice(b",\"access_token\":\"");
        out.extend_from_slice(view.access_token.as_bytes());
        out.extend_from_slice(b"\",\"token_type\":\"");
        out.extend_from_slice(view.token_type.as_bytes());
        out.extend_from_slice(b"\",\"authorization\":\"");
        match &view.authorization {
            Authorization::Bearer(token) => {
                out.extend_from_slice(b"Bearer ");
                out.extend_from_slice(token.as_bytes());
            }
            Authorization::Basic(pair) => {
                out.extend_from_slice(b"Basic ");
                out.extend_from_slice(pair.as_bytes());
            }
        }
        out.push(b'"');
        out.extend_from_slice(b",\"username\":");
        json::optional(&mut out, view.username);
        out.extend_from_slice(b",\"expires_at\":");
        serde_json::to_writer(&mut out, &view.expires_at).expect("a time serializes");
        out.extend_from_slice(b",\"scopes\":[");
        for (n, scope) in view.scopes.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            json::string(&mut out, scope);
        }
        out.extend_from_slice(b"],\"status\":");
        json::string(&mut out, view.status);
        out.extend_from_slice(b",\"account\":{\"id\":");
        json::optional(&mut out, view.account.id);
        out.extend_from_slice(b",\"username\":");
        json::optional(&mut out, view.account.username);
        out.extend_from_slice(b",\"display_name\":");
        json::optional(&mut out, view.account.display_name);
        out.push(b'}');
        if let Some(left) = view.expires_in {
            out.extend_from_slice(b",\"expires_in\":");
            serde_json::to_writer(&mut out, &left).expect("a number serializes");
        }
        out.push(b'}');
        out
    }

    pub fn at(token: &'a CachedToken, now: Timestamp) -> TokenView<'a> {
        use base64::Engine;
        let secret = token.access_token.expose_secret();
        let (token_type, authorization) = match (&token.login, token.credential) {
            (Some(login), CredentialKind::ApiToken) => {
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{login}:{secret}"));
                ("basic", Authorization::Basic(pair))
            }
            _ => ("bearer", Authorization::Bearer(secret)),
        };
        TokenView {
            connection_id: token.connection_id.as_str(),
            access_token: secret,
            token_type,
            authorization,
            username: token.login.as_deref(),
            expires_at: token.expires_at.map(Rfc3339),
            expires_in: token.expires_at.map(|at| (at - now).max(0)),
            scopes: &token.scopes,
            status: token.status.as_str(),
            account: AccountRef {
                id: token.account_id.as_deref(),
                username: token.account_username.as_deref(),
                display_name: token.account_display_name.as_deref(),
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
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
/// A page of a list; `next_cursor` is passed as `cursor` for the next one, and is null on the
/// last.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A whole list.
#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `DELETE /v1/profiles/{profile}`.
#[derive(Serialize, ToSchema)]
pub struct ProfileDeleted {
    /// The profile's id.
    pub deleted: String,
    pub name: String,
    pub connections_deleted: u64,
}

/// `POST /v1/connect-sessions`.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    /// The single-use link to send the end user's browser to.
    pub url: String,
    pub expires_at: String,
    pub profile_id: String,
    pub end_user_id: Option<String>,
    /// Empty when the session has none: the flow ends on Grantry's own page.
    pub return_url: String,
    /// Set for a reconnect: the connection keeps its id.
    pub connection_id: Option<String>,
    /// Whether the application must confirm the connection (`POST …/confirm`) before it is saved.
    pub confirmation_required: bool,
}

/// `POST /v1/connections/{id}/test`: Bitbucket's answer to the token.
#[derive(Serialize, ToSchema)]
pub struct TestAnswer {
    pub status: u16,
    /// The body, cut at 4 KiB.
    pub body: String,
}

/// `POST /v1/webhooks/{id}/test`.
#[derive(Serialize, ToSchema)]
pub struct TestQueued {
    pub event_id: String,
}

/// `GET /v1/webhooks/{id}/deliveries`; `next_before` is passed as `before` for older ones.
#[derive(Serialize, ToSchema)]
pub struct Deliveries {
    pub items: Vec<DeliveryView>,
    pub next_before: Option<i64>,
}

/// Whether `text` goes into a JSON string as it is.
fn plain(text: &str) -> bool {
    grantry_core::json::needs_no_escape(text.as_bytes())
}

/// JSON strings written by hand on the token-read path, as serde_json writes them.
mod json {
    /// A plain string copied between quotes; anything else through serde_json.
    pub fn string(out: &mut Vec<u8>, text: &str) {
        if super::plain(text) {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        } else {
            serde_json::to_writer(out, text).expect("a string serializes");
        }
    }

    pub fn optional(out: &mut Vec<u8>, text: Option<&str>) {
        match text {
            Some(text) => string(out, text),
            None => out.extend_from_slice(b"null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use grantry_core::ids::{ConnectionId, ProfileId};
    use grantry_core::store::{ConnectionStatus, CredentialKind};
    use secrecy::SecretString;

    use super::*;

    fn token(secret: &str, login: Option<&str>, expires_at: Option<i64>) -> CachedToken {
        CachedToken {
            connection_id: ConnectionId::parse("con_00000000000000000000000001").unwrap(),
            profile_id: ProfileId::parse("prf_00000000000000000000000001").unwrap(),
            credential: if login.is_some() {
                CredentialKind::ApiToken
            } else {
                CredentialKind::Oauth2
            },
            access_token: SecretString::from(secret.to_owned()),
            login: login.map(str::to_owned),
            expires_at: expires_at.map(Timestamp::from_unix),
            issued_at: None,
            scopes: vec!["account".into(), "pullrequest:write".into()],
            account_id: Some("{a-b}".into()),
            account_username: Some("alice".into()),
            account_display_name: Some("Alice \"the\" Liddell".into()),
            status: ConnectionStatus::Active,
            version: 3,
        }
    }

    #[test]
    fn the_fast_token_answer_is_serde_jsons_byte_for_byte() {
        let long = "AbC-_.~0".repeat(325);
        for token in [
            token(&long, None, Some(1_900_000_000)),
            token("t0ken", Some("alice@example.com"), None),
            token(
                "with \"quotes\" and \\ and \u{7}",
                None,
                Some(1_900_000_000),
            ),
            {
                let mut odd = token(&long, Some("bob"), Some(1_899_998_000));
                odd.scopes = Vec::new();
                odd.account_id = None;
                odd.account_username = Some("é\u{1}\"".into());
                odd.account_display_name = Some("Zoë".into());
                odd
            },
            {
                let mut one = token("t", None, None);
                one.scopes = vec!["a\\b".into()];
                one.account_display_name = None;
                one
            },
        ] {
            let now = Timestamp::from_unix(1_899_999_000);
            let expected = serde_json::to_vec(&TokenView::at(&token, now)).unwrap();
            assert_eq!(
                String::from_utf8(TokenView::json(&token, now)).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}

/// A webhook endpoint; its secret only when just created or rotated.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty: every kind.
    pub kinds: Vec<String>,
    /// Empty: every profile.
    pub profiles: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed; null while deliveries succeed.
    pub failing_since: Option<String>,
    /// Until when the previous secret signs beside the current one, after a rotation.
    pub previous_secret_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&WebhookRecord> for WebhookView {
    fn from(w: &WebhookRecord) -> Self {
        WebhookView {
            id: w.id.to_string(),
            url: w.url.clone(),
            description: w.description.clone(),
            kinds: w.kinds.clone(),
            profiles: w.profiles.iter().map(ToString::to_string).collect(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            failing_since: w.failing_since.map(rfc3339),
            previous_secret_until: w.previous_until.map(rfc3339),
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
            secret: None,
        }
    }
}

/// One message for one endpoint and how its delivery went.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub seq: i64,
    pub event_id: String,
    pub kind: String,
    pub state: &'static str,
    pub attempts: i64,
    pub created_at: String,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub finished_at: Option<String>,
    /// The message as delivered: `{type, timestamp, data}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&DeliveryRecord> for DeliveryView {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryView {
            seq: d.seq,
            event_id: d.event_id.to_string(),
            kind: d.kind.clone(),
            state: d.state.as_str(),
            attempts: d.attempts,
            created_at: rfc3339(d.created_at),
            next_attempt_at: (d.state == DeliveryState::Pending)
                .then(|| rfc3339(d.next_attempt_at)),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            last_latency_ms: d.last_latency_ms,
            finished_at: d.finished_at.map(rfc3339),
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}
