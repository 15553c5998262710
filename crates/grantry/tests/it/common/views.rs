//! Grantry's answers as the tests read them: mirrors of the wire shapes that
//! `grantry-http`'s views write (see `docs/api.md`), owned and deserializable. A field the server
//! writes as `null` or leaves out is an `Option`; times stay RFC 3339 strings, as on the wire.
//! Unknown members are ignored, so a test that cares about exactly which members are present
//! reads the raw JSON instead.
//! A member no test reads is left out.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `body` into `T`, or panics naming the type and showing the body.
pub fn decode<T: DeserializeOwned>(body: &Value) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| {
        panic!(
            "not a {}: {e}\n{body:#}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("view")
        )
    })
}

/// An RFC 9457 problem (`application/problem+json`) with the members Grantry adds.
#[derive(Debug, Deserialize)]
pub struct Problem {
    /// `urn:grantry:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub code: String,
    /// `invalid-field`: the field refused.
    pub field: Option<String>,
    /// `needs-reauth`: the connection that needs it.
    pub connection_id: Option<String>,
    /// `needs-reauth`: why, in words.
    pub reason: Option<String>,
    /// On proxy refusals: Bitbucket Cloud's error shape, `{"message": detail}`.
    pub error: Option<ErrorMessage>,
    /// On proxy refusals: Bitbucket Data Center's error shape, `[{"message": detail}]`.
    pub errors: Option<Vec<ErrorMessage>>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorMessage {
    pub message: String,
}

/// Who a connection or token acts for.
#[derive(Debug, Deserialize)]
pub struct Account {
    pub username: Option<String>,
    pub display_name: Option<String>,
}

/// `GET /v1/connections/{id}/token`.
#[derive(Debug, Deserialize)]
pub struct Token {
    pub access_token: String,
    /// `bearer` or `basic`.
    pub token_type: String,
    pub authorization: String,
    /// HTTP Basic user name, for API tokens.
    pub username: Option<String>,
    pub expires_at: Option<String>,
    pub account: Account,
    /// Absent for credentials that do not expire.
    pub expires_in: Option<i64>,
}

/// A connection (`GET /v1/connections/{id}`, listings, and what saving one answers).
#[derive(Debug, Deserialize)]
pub struct Connection {
    pub id: String,
    pub end_user_id: Option<String>,
    /// `oauth2`, `client_credentials`, `api_token` or `access_token`.
    pub credential: String,
    /// `active`, `failing`, `needs_reauth`, `insufficient_scopes`, …
    pub status: String,
    pub status_reason: Option<String>,
    pub account: Account,
    pub granted_scopes: Vec<String>,
    pub expires_at: Option<String>,
    /// Only in the answer that just saved the connection.
    pub missing_scopes: Option<Vec<String>>,
}

/// A profile (`/v1/profiles`).
#[derive(Debug, Deserialize)]
pub struct Profile {
    pub id: String,
    pub description: String,
    pub key: String,
    pub base_url: Option<String>,
    pub required_scopes: Vec<String>,
    pub callback_url: String,
    /// Set while Bitbucket refuses the profile's client.
    pub problem: Option<ProfileProblem>,
    pub setup: Setup,
}

#[derive(Debug, Deserialize)]
pub struct ProfileProblem {
    pub message: String,
}

/// What to configure at the provider.
#[derive(Debug, Deserialize)]
pub struct Setup {
    pub location: String,
    /// Cloud: the permission boxes to click.
    #[serde(default)]
    pub tick: Vec<String>,
    /// Cloud: every box that ends up ticked.
    #[serde(default)]
    pub ticked: Vec<String>,
    /// Data Center: the scopes to give the incoming link.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `DELETE /v1/profiles/{profile}` (and `grantry profiles delete`).
#[derive(Debug, Deserialize)]
pub struct ProfileDeleted {
    pub connections_deleted: u64,
}

/// `POST /v1/connect-sessions`.
#[derive(Debug, Deserialize)]
pub struct Session {
    pub url: String,
    pub end_user_id: Option<String>,
}

/// An API key; `key` only in the answer that created it.
#[derive(Debug, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub key: Option<String>,
}

/// A console admin.
#[derive(Debug, Deserialize)]
pub struct Admin {
    pub username: String,
}

/// An entry of the audit trail (`GET /v1/events`).
#[derive(Debug, Deserialize)]
pub struct Event {
    pub kind: String,
    pub detail: String,
}

/// A page of a listing (`{"items", "next_cursor"}`), or a whole list (`{"items"}`).
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/connections/{id}/test`: Bitbucket's answer to the token.
#[derive(Debug, Deserialize)]
pub struct TestAnswer {
    pub status: u16,
}

/// A webhook endpoint; `secret` only when just created or rotated.
#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub kinds: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub previous_secret_until: Option<String>,
    pub secret: Option<String>,
}

/// `POST /v1/webhooks/{id}/test`.
#[derive(Debug, Deserialize)]
pub struct TestQueued {
    pub event_id: String,
}

/// `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize)]
pub struct Deliveries {
    pub items: Vec<Delivery>,
    pub next_before: Option<i64>,
}

/// One message for one endpoint and how its delivery went.
#[derive(Debug, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    /// `pending`, `delivered`, `failed`, …
    pub state: String,
    pub last_status: Option<i64>,
}

/// The `data` of a webhook message about a connection (and of the other kinds, whose members
/// are a subset: `webhook.test` names only `webhook_id`).
#[derive(Debug, Deserialize)]
pub struct MessageData {
    pub connection_id: Option<String>,
    pub end_user_id: Option<String>,
    pub account: Option<Account>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub expires_at: Option<String>,
}

/// What `grantry … --output json` prints where no API answer has the same shape.
pub mod cli {
    use serde::Deserialize;

    /// `grantry keys status`.
    #[derive(Debug, Deserialize)]
    pub struct KeysStatus {
        /// The id of the key new values are sealed under.
        pub primary: String,
    }

    /// `grantry keys rotate`.
    #[derive(Debug, Deserialize)]
    pub struct KeysRotated {
        pub primary: String,
        pub resealed: u64,
        pub left_under_older_keys: u64,
    }

    /// `grantry keys retire`: the key ids removed from the file and kept in it.
    #[derive(Debug, Deserialize)]
    pub struct KeysRetired {
        pub removed: Vec<String>,
        pub kept: Vec<String>,
    }

    /// `grantry connect`: the link to send a browser to.
    #[derive(Debug, Deserialize)]
    pub struct Link {
        pub url: String,
    }

    /// `grantry api-keys revoke`.
    #[derive(Debug, Deserialize)]
    pub struct Revoked {
        pub revoked: String,
    }

    /// `grantry migrate-store`: what each kind of row came to.
    #[derive(Debug, Deserialize)]
    pub struct MigrateReport {
        pub profiles: Tally,
        pub connections: Tally,
        pub api_keys: Tally,
        pub admins: Tally,
        pub events: Tally,
    }

    #[derive(Debug, Deserialize, PartialEq, Eq)]
    pub struct Tally {
        /// Written into the target.
        pub copied: u64,
        /// Already in the target, left as they were.
        pub present: u64,
    }

    /// `grantry admin password`.
    #[derive(Debug, Deserialize)]
    pub struct PasswordChanged {
        pub sessions_ended: bool,
    }
}
