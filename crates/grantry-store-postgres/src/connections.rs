//! Connections, and the lease that makes a refresh happen once.
//!
//! Every lease change is a single `UPDATE … WHERE`, atomic on its own; claims for the refresher
//! lock the rows they pick with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once share the work.

use grantry_core::clock::Timestamp;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::*;
use sqlx::Row;

use crate::rows::{self, scopes_text};
use crate::{PgStore, db_error};

pub async fn insert(store: &PgStore, c: &ConnectionRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO connections (id, profile_id, end_user_id, credential, account_key, account_id, \
         account_username, account_display_name, login, status, status_reason, granted_scopes, \
         access_token, refresh_token, expires_at, refreshed_at, refresh_token_at, next_refresh_at, \
         failures, last_error, version, lease_owner, lease_until, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, NULL, NULL, $22, $23)",
    )
    .bind(c.id.as_str())
    .bind(c.profile_id.as_str())
    .bind(&c.end_user_id)
    .bind(c.credential.as_str())
    .bind(&c.account_key)
    .bind(&c.account_id)
    .bind(&c.account_username)
    .bind(&c.account_display_name)
    .bind(&c.login)
    .bind(c.status.as_str())
    .bind(&c.status_reason)
    .bind(scopes_text(&c.granted_scopes))
    .bind(&c.access_token)
    .bind(&c.refresh_token)
    .bind(c.expires_at)
    .bind(c.refreshed_at)
    .bind(c.refresh_token_at)
    .bind(c.next_refresh_at)
    .bind(c.failures)
    .bind(&c.last_error)
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn replace(store: &PgStore, c: &ConnectionRecord) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE connections SET end_user_id = $2, credential = $3, account_key = $4, account_id = $5, \
         account_username = $6, account_display_name = $7, login = $8, status = $9, status_reason = $10, \
         granted_scopes = $11, access_token = $12, refresh_token = $13, expires_at = $14, \
         refreshed_at = $15, refresh_token_at = $16, next_refresh_at = $17, failures = 0, \
         last_error = NULL, version = version + 1, lease_owner = NULL, lease_until = NULL, \
         updated_at = $18 WHERE id = $1",
    )
    .bind(c.id.as_str())
    .bind(&c.end_user_id)
    .bind(c.credential.as_str())
    .bind(&c.account_key)
    .bind(&c.account_id)
    .bind(&c.account_username)
    .bind(&c.account_display_name)
    .bind(&c.login)
    .bind(c.status.as_str())
    .bind(&c.status_reason)
    .bind(scopes_text(&c.granted_scopes))
    .bind(&c.access_token)
    .bind(&c.refresh_token)
    .bind(c.expires_at)
    .bind(c.refreshed_at)
    .bind(c.refresh_token_at)
    .bind(c.next_refresh_at)
    .bind(c.updated_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

pub async fn by_id(store: &PgStore, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
    let row = sqlx::query("SELECT * FROM connections WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(store.db()?)
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::connection).transpose()
}

pub async fn by_account(
    store: &PgStore,
    profile: &ProfileId,
    key: &str,
) -> StoreResult<Option<ConnectionRecord>> {
    let row = sqlx::query("SELECT * FROM connections WHERE profile_id = $1 AND account_key = $2")
        .bind(profile.as_str())
        .bind(key)
        .fetch_optional(store.db()?)
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::connection).transpose()
}

pub async fn list(
    store: &PgStore,
    filter: &ConnectionFilter,
    page: &PageRequest,
) -> StoreResult<Vec<ConnectionRecord>> {
    let rows = sqlx::query(
        "SELECT * FROM connections \
         WHERE ($1 IS NULL OR profile_id = $1) AND ($2 IS NULL OR end_user_id = $2) \
         AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id > $4) \
         ORDER BY id LIMIT $5",
    )
    .bind(filter.profile_id.as_ref().map(|p| p.as_str()))
    .bind(&filter.end_user_id)
    .bind(filter.status.map(ConnectionStatus::as_str))
    .bind(&page.after)
    .bind(i64::from(page.limit))
    .fetch_all(store.db()?)
    .await
    .map_err(db_error)?;
    rows.iter().map(rows::connection).collect()
}

pub async fn delete(store: &PgStore, id: &ConnectionId) -> StoreResult<bool> {
    let result = sqlx::query("DELETE FROM connections WHERE id = $1")
        .bind(id.as_str())
        .execute(store.db()?)
        .await
        .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

pub async fn counts(store: &PgStore) -> StoreResult<Vec<(ProfileId, ConnectionStatus, u64)>> {
    let rows = sqlx::query(
        "SELECT profile_id, status, COUNT(*) AS n FROM connections GROUP BY profile_id, status",
    )
    .fetch_all(store.db()?)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status").map_err(db_error)?;
            let status = ConnectionStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown status `{status}`")))?;
            let profile = ProfileId::from_stored(row.try_get("profile_id").map_err(db_error)?);
            let n: i64 = row.try_get("n").map_err(db_error)?;
            Ok((profile, status, n as u64))
        })
        .collect()
}

pub async fn take_lease(
    store: &PgStore,
    id: &ConnectionId,
    owner: &str,
    until: Timestamp,
    now: Timestamp,
) -> StoreResult<Option<ConnectionRecord>> {
    let row = sqlx::query(
        "UPDATE connections SET lease_owner = $2, lease_until = $3 \
         WHERE id = $1 AND (lease_owner IS NULL OR lease_until < $4 OR lease_owner = $2) \
         RETURNING *",
    )
    .bind(id.as_str())
    .bind(owner)
    .bind(until)
    .bind(now)
    .fetch_optional(store.db()?)
    .await
    .map_err(db_error)?;
    row.as_ref().map(rows::connection).transpose()
}

pub async fn release_lease(store: &PgStore, id: &ConnectionId, owner: &str) -> StoreResult<()> {
    sqlx::query("UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
        .bind(id.as_str())
        .bind(owner)
        .execute(store.db()?)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Writes new tokens if the row is at `version` and, when `owner` is given, leased by it.
pub async fn write_if(
    store: &PgStore,
    id: &ConnectionId,
    version: i64,
    owner: Option<&str>,
    w: &TokenWrite,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE connections SET access_token = $4, refresh_token = COALESCE($5, refresh_token), \
         refresh_token_at = $6, expires_at = $7, granted_scopes = $8, status = $9, status_reason = $10, \
         refreshed_at = $11, next_refresh_at = $12, failures = 0, last_error = NULL, \
         version = version + 1, lease_owner = NULL, lease_until = NULL, updated_at = $11 \
         WHERE id = $1 AND version = $2 AND ($3 IS NULL OR lease_owner = $3)",
    )
    .bind(id.as_str())
    .bind(version)
    .bind(owner)
    .bind(&w.access_token)
    .bind(&w.refresh_token)
    .bind(w.refresh_token_at)
    .bind(w.expires_at)
    .bind(scopes_text(&w.granted_scopes))
    .bind(w.status.as_str())
    .bind(&w.status_reason)
    .bind(w.refreshed_at)
    .bind(w.next_refresh_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

pub async fn record_outcome(
    store: &PgStore,
    id: &ConnectionId,
    owner: &str,
    o: &OutcomeWrite,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE connections SET status = $3, status_reason = $4, failures = $5, last_error = $6, \
         next_refresh_at = $7, lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND (lease_owner = $2 OR lease_owner IS NULL)",
    )
    .bind(id.as_str())
    .bind(owner)
    .bind(o.status.as_str())
    .bind(&o.status_reason)
    .bind(o.failures)
    .bind(&o.last_error)
    .bind(o.next_refresh_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn retry_failing_now(
    store: &PgStore,
    profile: &ProfileId,
    now: Timestamp,
) -> StoreResult<u64> {
    let result = sqlx::query(
        "UPDATE connections SET next_refresh_at = $2 WHERE profile_id = $1 AND status = 'failing'",
    )
    .bind(profile.as_str())
    .bind(now)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(result.rows_affected())
}

pub async fn claim_due(
    store: &PgStore,
    now: Timestamp,
    owner: &str,
    until: Timestamp,
    limit: u32,
) -> StoreResult<Vec<ConnectionId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "WITH due AS ( \
           SELECT id FROM connections \
           WHERE status <> 'needs_reauth' AND (lease_owner IS NULL OR lease_until < $1) \
             AND (next_refresh_at <= $1 OR lease_owner IS NOT NULL) \
           ORDER BY lease_owner IS NULL, next_refresh_at LIMIT $4 \
           FOR UPDATE SKIP LOCKED) \
         UPDATE connections AS c SET lease_owner = $2, lease_until = $3 \
         FROM due WHERE c.id = due.id \
         RETURNING c.id",
    )
    .bind(now)
    .bind(owner)
    .bind(until)
    .bind(i64::from(limit))
    .fetch_all(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(ids.into_iter().map(ConnectionId::from_stored).collect())
}
