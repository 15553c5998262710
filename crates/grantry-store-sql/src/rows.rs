//! Records made from rows, and the text encodings of their columns (scopes space-separated, URL
//! lists as JSON, enums as their names). Rows of any sqlx driver are read through [`Columns`].

use grantry_core::catalog::ProviderKind;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{
    AdminId, ApiKeyId, ConnectionId, EventId, ProfileId, SessionId, WebhookId,
};
use grantry_core::store::*;
use sqlx::{ColumnIndex, Decode, Row, Type};

/// Reading one column of a row, NULL as `None`; a missing or undecodable column is
/// [`StoreError::Corrupt`]. (SQLite keeps flags as INTEGER 0 or 1, which sqlx reads as `bool`.)
pub trait Columns {
    fn text(&self, column: &str) -> StoreResult<Option<String>>;
    fn bytes(&self, column: &str) -> StoreResult<Option<Vec<u8>>>;
    fn int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, column: &str) -> StoreResult<Option<bool>>;
}

impl<R> Columns for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<bool>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> StoreResult<Option<String>> {
        self.try_get(column).map_err(unreadable)
    }

    fn bytes(&self, column: &str) -> StoreResult<Option<Vec<u8>>> {
        self.try_get(column).map_err(unreadable)
    }

    fn int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(unreadable)
    }

    fn flag(&self, column: &str) -> StoreResult<Option<bool>> {
        self.try_get(column).map_err(unreadable)
    }
}

fn unreadable(error: sqlx::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// A value a column holds: the four kinds of [`Columns`], NULL allowed or not.
pub trait FromColumn: Sized {
    fn read(row: &impl Columns, column: &str) -> StoreResult<Self>;
}

fn null(column: &str) -> StoreError {
    StoreError::Corrupt(format!("column `{column}` is NULL"))
}

macro_rules! from_column {
    ($type:ty, $method:ident) => {
        impl FromColumn for Option<$type> {
            fn read(row: &impl Columns, column: &str) -> StoreResult<Self> {
                row.$method(column)
            }
        }
        impl FromColumn for $type {
            fn read(row: &impl Columns, column: &str) -> StoreResult<Self> {
                row.$method(column)?.ok_or_else(|| null(column))
            }
        }
    };
}

from_column!(String, text);
from_column!(Vec<u8>, bytes);
from_column!(i64, int);
from_column!(bool, flag);

/// Moments are kept as integers of Unix seconds.
impl FromColumn for Option<Timestamp> {
    fn read(row: &impl Columns, column: &str) -> StoreResult<Self> {
        Ok(row.int(column)?.map(Timestamp::from_unix))
    }
}

impl FromColumn for Timestamp {
    fn read(row: &impl Columns, column: &str) -> StoreResult<Self> {
        Option::<Timestamp>::read(row, column)?.ok_or_else(|| null(column))
    }
}

fn get<T: FromColumn>(row: &impl Columns, column: &str) -> StoreResult<T> {
    T::read(row, column)
}

/// The `id` column.
pub fn id(row: &impl Columns) -> StoreResult<String> {
    get(row, "id")
}

/// The `value` column (settings).
pub fn value(row: &impl Columns) -> StoreResult<String> {
    get(row, "value")
}

/// A sealed value with its row: `id` and `value`.
pub fn sealed_cell(row: &impl Columns) -> StoreResult<SealedCell> {
    Ok(SealedCell {
        row_id: get(row, "id")?,
        value: get(row, "value")?,
    })
}

/// A master key id read as the bytes `id` (see `SealedStore::sealed_key_ids`).
pub fn key_id(row: &impl Columns) -> StoreResult<[u8; 4]> {
    let bytes: Vec<u8> = get(row, "id")?;
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a sealed value is shorter than its header".into()))
}

/// The `n` of a `SELECT COUNT(*) AS n`.
pub fn count(row: &impl Columns) -> StoreResult<u64> {
    let n: i64 = get(row, "n")?;
    Ok(n.max(0) as u64)
}

pub fn scopes_text(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn scopes_from(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

pub fn urls_text(urls: &[String]) -> String {
    serde_json::to_string(urls).expect("a list of strings serializes")
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} `{value}`"))
}

pub fn profile(row: &impl Columns) -> StoreResult<ProfileRecord> {
    let provider: String = get(row, "provider")?;
    let urls: String = get(row, "allowed_return_urls")?;
    Ok(ProfileRecord {
        id: ProfileId::from_stored(get(row, "id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        provider: ProviderKind::parse(&provider).ok_or_else(|| corrupt("provider", &provider))?,
        client_id: get(row, "client_id")?,
        client_secret: get(row, "client_secret")?,
        base_url: get(row, "base_url")?,
        required_scopes: scopes_from(&get::<String>(row, "required_scopes")?),
        allowed_return_urls: serde_json::from_str(&urls)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        private: get(row, "private")?,
        confirm_connections: get(row, "confirm_connections")?,
        problem: get(row, "problem")?,
        problem_at: get(row, "problem_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub fn connection(row: &impl Columns) -> StoreResult<ConnectionRecord> {
    let credential: String = get(row, "credential")?;
    let status: String = get(row, "status")?;
    Ok(ConnectionRecord {
        id: ConnectionId::from_stored(get(row, "id")?),
        profile_id: ProfileId::from_stored(get(row, "profile_id")?),
        end_user_id: get(row, "end_user_id")?,
        credential: CredentialKind::parse(&credential)
            .ok_or_else(|| corrupt("credential", &credential))?,
        account_key: get(row, "account_key")?,
        account_id: get(row, "account_id")?,
        account_username: get(row, "account_username")?,
        account_display_name: get(row, "account_display_name")?,
        login: get(row, "login")?,
        status: ConnectionStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        status_reason: get(row, "status_reason")?,
        granted_scopes: scopes_from(&get::<String>(row, "granted_scopes")?),
        access_token: get(row, "access_token")?,
        refresh_token: get(row, "refresh_token")?,
        expires_at: get(row, "expires_at")?,
        refreshed_at: get(row, "refreshed_at")?,
        refresh_token_at: get(row, "refresh_token_at")?,
        next_refresh_at: get(row, "next_refresh_at")?,
        failures: get(row, "failures")?,
        last_error: get(row, "last_error")?,
        version: get(row, "version")?,
        lease_owner: get(row, "lease_owner")?,
        lease_until: get(row, "lease_until")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub fn session(row: &impl Columns) -> StoreResult<SessionRecord> {
    let connection: Option<String> = get(row, "connection_id")?;
    Ok(SessionRecord {
        id: SessionId::from_stored(get(row, "id")?),
        token_digest: get(row, "token_digest")?,
        profile_id: ProfileId::from_stored(get(row, "profile_id")?),
        end_user_id: get(row, "end_user_id")?,
        return_url: get(row, "return_url")?,
        connection_id: connection.map(ConnectionId::from_stored),
        state_digest: get(row, "state_digest")?,
        pkce_verifier: get(row, "pkce_verifier")?,
        browser_digest: get(row, "browser_digest")?,
        verification_digest: get(row, "verification_digest")?,
        pending_grant: get(row, "pending_grant")?,
        confirm_by: get(row, "confirm_by")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        opened_at: get(row, "opened_at")?,
        completed_at: get(row, "completed_at")?,
        confirmed_at: get(row, "confirmed_at")?,
    })
}

pub fn api_key(row: &impl Columns) -> StoreResult<ApiKeyRecord> {
    let role: String = get(row, "role")?;
    Ok(ApiKeyRecord {
        id: ApiKeyId::from_stored(get(row, "id")?),
        name: get(row, "name")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        digest: get(row, "digest")?,
        hint: get(row, "hint")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub fn admin(row: &impl Columns) -> StoreResult<AdminRecord> {
    Ok(AdminRecord {
        id: AdminId::from_stored(get(row, "id")?),
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        created_at: get(row, "created_at")?,
    })
}

pub fn console_session(row: &impl Columns) -> StoreResult<ConsoleSessionRecord> {
    Ok(ConsoleSessionRecord {
        digest: get(row, "digest")?,
        admin_id: AdminId::from_stored(get(row, "admin_id")?),
        username: get(row, "username")?,
        created_at: get(row, "created_at")?,
        last_seen_at: get(row, "last_seen_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub fn event(row: &impl Columns) -> StoreResult<EventRecord> {
    let profile: Option<String> = get(row, "profile_id")?;
    let connection: Option<String> = get(row, "connection_id")?;
    Ok(EventRecord {
        id: EventId::from_stored(get(row, "id")?),
        at: get(row, "at")?,
        kind: get(row, "kind")?,
        profile_id: profile.map(ProfileId::from_stored),
        connection_id: connection.map(ConnectionId::from_stored),
        actor: get(row, "actor")?,
        detail: get(row, "detail")?,
    })
}

/// A list kept as `,a,b,` so that one LIKE finds one member; empty for "every".
pub fn list_text<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    if items.is_empty() {
        String::new()
    } else {
        format!(",{},", items.join(","))
    }
}

fn list_from(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn webhook(row: &impl Columns) -> StoreResult<WebhookRecord> {
    let kinds: String = get(row, "kinds")?;
    let profiles: String = get(row, "profiles")?;
    Ok(WebhookRecord {
        id: WebhookId::from_stored(get(row, "id")?),
        url: get(row, "url")?,
        description: get(row, "description")?,
        kinds: list_from(&kinds),
        profiles: list_from(&profiles)
            .into_iter()
            .map(ProfileId::from_stored)
            .collect(),
        enabled: get(row, "enabled")?,
        secret: get(row, "secret")?,
        previous_secret: get(row, "previous_secret")?,
        previous_until: get(row, "previous_until")?,
        disabled_reason: get(row, "disabled_reason")?,
        failing_since: get(row, "failing_since")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub fn delivery(row: &impl Columns) -> StoreResult<DeliveryRecord> {
    let state: String = get(row, "state")?;
    Ok(DeliveryRecord {
        seq: get(row, "seq")?,
        webhook_id: WebhookId::from_stored(get(row, "webhook_id")?),
        event_id: EventId::from_stored(get(row, "event_id")?),
        kind: get(row, "kind")?,
        ordering_key: get(row, "ordering_key")?,
        payload: get(row, "payload")?,
        created_at: get(row, "created_at")?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get(row, "next_attempt_at")?,
        last_status: get(row, "last_status")?,
        last_error: get(row, "last_error")?,
        last_latency_ms: get(row, "last_latency_ms")?,
        finished_at: get(row, "finished_at")?,
    })
}
