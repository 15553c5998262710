//! Connect sessions: opened once (the browser's first visit), completed once (the callback).

use grantry_core::clock::Timestamp;
use grantry_core::ids::SessionId;
use grantry_core::store::{SessionRecord, StoreResult};

use crate::rows;
use crate::{PgStore, db_error};

pub async fn insert(store: &PgStore, s: &SessionRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO connect_sessions (id, token_digest, profile_id, end_user_id, return_url, \
         connection_id, state_digest, pkce_verifier, created_at, expires_at, opened_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(s.id.as_str())
    .bind(&s.token_digest)
    .bind(s.profile_id.as_str())
    .bind(&s.end_user_id)
    .bind(&s.return_url)
    .bind(s.connection_id.as_ref().map(|c| c.as_str()))
    .bind(&s.state_digest)
    .bind(&s.pkce_verifier)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.opened_at)
    .bind(s.completed_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Which digest a session is looked up by.
pub enum Lookup {
    Token,
    State,
}

pub async fn by_column(
    store: &PgStore,
    lookup: Lookup,
    digest: &str,
) -> StoreResult<Option<SessionRecord>> {
    let sql = match lookup {
        Lookup::Token => "SELECT * FROM connect_sessions WHERE token_digest = $1",
        Lookup::State => "SELECT * FROM connect_sessions WHERE state_digest = $1",
    };
    let row = sqlx::query(sql)
        .bind(digest)
        .fetch_optional(store.db()?)
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::session).transpose()
}

pub async fn open(
    store: &PgStore,
    id: &SessionId,
    state: &str,
    verifier: Option<&[u8]>,
    now: Timestamp,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE connect_sessions SET state_digest = $2, pkce_verifier = $3, opened_at = $4 \
         WHERE id = $1 AND opened_at IS NULL",
    )
    .bind(id.as_str())
    .bind(state)
    .bind(verifier)
    .bind(now)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

pub async fn complete(store: &PgStore, id: &SessionId, now: Timestamp) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE connect_sessions SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL",
    )
    .bind(id.as_str())
    .bind(now)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

pub async fn purge(store: &PgStore, before: Timestamp) -> StoreResult<u64> {
    let result = sqlx::query("DELETE FROM connect_sessions WHERE expires_at < $1")
        .bind(before)
        .execute(store.db()?)
        .await
        .map_err(db_error)?;
    Ok(result.rows_affected())
}
