//! API keys, console admins, audit events and re-sealing.

use grantry_core::clock::Timestamp;
use grantry_core::ids::{AdminId, ApiKeyId};
use grantry_core::store::*;

use crate::rows;
use crate::{SqliteStore, db_error};

pub async fn insert_api_key(store: &SqliteStore, k: &ApiKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, role, digest, hint, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(k.id.as_str())
    .bind(&k.name)
    .bind(k.role.as_str())
    .bind(&k.digest)
    .bind(&k.hint)
    .bind(k.created_at)
    .bind(k.revoked_at)
    .execute(store.write())
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn api_key_by_digest(
    store: &SqliteStore,
    digest: &str,
) -> StoreResult<Option<ApiKeyRecord>> {
    let row = sqlx::query("SELECT * FROM api_keys WHERE digest = $1")
        .bind(digest)
        .fetch_optional(store.read())
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::api_key).transpose()
}

pub async fn api_keys(store: &SqliteStore) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows = sqlx::query("SELECT * FROM api_keys ORDER BY id")
        .fetch_all(store.read())
        .await
        .map_err(db_error)?;
    rows.iter().map(rows::api_key).collect()
}

pub async fn revoke_api_key(
    store: &SqliteStore,
    id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<bool> {
    let result =
        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.as_str())
            .bind(at)
            .execute(store.write())
            .await
            .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

pub async fn insert_admin(store: &SqliteStore, a: &AdminRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO admins (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(a.id.as_str())
    .bind(&a.username)
    .bind(&a.password_hash)
    .bind(a.created_at)
    .execute(store.write())
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn admin_by_username(
    store: &SqliteStore,
    username: &str,
) -> StoreResult<Option<AdminRecord>> {
    let row = sqlx::query("SELECT * FROM admins WHERE username = $1")
        .bind(username)
        .fetch_optional(store.read())
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::admin).transpose()
}

pub async fn admins(store: &SqliteStore) -> StoreResult<Vec<AdminRecord>> {
    let rows = sqlx::query("SELECT * FROM admins ORDER BY username")
        .fetch_all(store.read())
        .await
        .map_err(db_error)?;
    rows.iter().map(rows::admin).collect()
}

pub async fn admin_count(store: &SqliteStore) -> StoreResult<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins")
        .fetch_one(store.read())
        .await
        .map_err(db_error)?;
    Ok(n as u64)
}

pub async fn set_admin_password(
    store: &SqliteStore,
    id: &AdminId,
    password_hash: &str,
) -> StoreResult<bool> {
    let mut tx = store.write().begin().await.map_err(db_error)?;
    let updated = sqlx::query("UPDATE admins SET password_hash = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(password_hash)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    end_console_sessions(&mut tx, id).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(updated.rows_affected() == 1)
}

pub async fn delete_admin(store: &SqliteStore, id: &AdminId) -> StoreResult<AdminRemoval> {
    let mut tx = store.write().begin().await.map_err(db_error)?;
    // One writer at a time on SQLite, so the count holds until the commit.
    let admins: Vec<String> = sqlx::query_scalar("SELECT id FROM admins")
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
    if !admins.iter().any(|a| a == id.as_str()) {
        return Ok(AdminRemoval::NotFound);
    }
    if admins.len() == 1 {
        return Ok(AdminRemoval::LastAdmin);
    }
    // The schema cascades too; ending the sessions here does not depend on it.
    end_console_sessions(&mut tx, id).await?;
    sqlx::query("DELETE FROM admins WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(AdminRemoval::Removed)
}

async fn end_console_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: &AdminId,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM console_sessions WHERE admin_id = $1")
        .bind(id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn insert_console_session(
    store: &SqliteStore,
    c: &ConsoleSessionRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO console_sessions (digest, admin_id, username, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&c.digest)
    .bind(c.admin_id.as_str())
    .bind(&c.username)
    .bind(c.created_at)
    .bind(c.last_seen_at)
    .bind(c.expires_at)
    .execute(store.write())
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn console_session(
    store: &SqliteStore,
    digest: &str,
) -> StoreResult<Option<ConsoleSessionRecord>> {
    let row = sqlx::query("SELECT * FROM console_sessions WHERE digest = $1")
        .bind(digest)
        .fetch_optional(store.write())
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::console_session).transpose()
}

pub async fn touch_console_session(
    store: &SqliteStore,
    digest: &str,
    at: Timestamp,
) -> StoreResult<()> {
    sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE digest = $1")
        .bind(digest)
        .bind(at)
        .execute(store.write())
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn delete_console_session(store: &SqliteStore, digest: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM console_sessions WHERE digest = $1")
        .bind(digest)
        .execute(store.write())
        .await
        .map_err(db_error)?;
    Ok(())
}

pub async fn put_meta(store: &SqliteStore, key: &str, value: Option<&str>) -> StoreResult<()> {
    let query = match value {
        Some(value) => sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value),
        None => sqlx::query("DELETE FROM meta WHERE key = $1").bind(key),
    };
    query.execute(store.write()).await.map_err(db_error)?;
    Ok(())
}

pub async fn meta(store: &SqliteStore, key: &str) -> StoreResult<Option<String>> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(store.write())
        .await
        .map_err(db_error)
}

pub async fn insert_event(store: &SqliteStore, e: &EventRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (id, at, kind, profile_id, connection_id, actor, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.id.as_str())
    .bind(e.at)
    .bind(&e.kind)
    .bind(e.profile_id.as_ref().map(|p| p.as_str()))
    .bind(e.connection_id.as_ref().map(|c| c.as_str()))
    .bind(&e.actor)
    .bind(&e.detail)
    .execute(store.write())
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn events(
    store: &SqliteStore,
    f: &EventFilter,
    page: &PageRequest,
) -> StoreResult<Vec<EventRecord>> {
    let (kind_exact, kind_prefix) = match f.kind.as_deref() {
        Some(kind) if kind.ends_with('.') => (None, Some(format!("{kind}%"))),
        Some(kind) => (Some(kind.to_owned()), None),
        None => (None, None),
    };
    let rows = sqlx::query(
        "SELECT * FROM events \
         WHERE ($1 IS NULL OR profile_id = $1) AND ($2 IS NULL OR connection_id = $2) \
         AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR kind LIKE $4) AND ($5 IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $6",
    )
    .bind(f.profile_id.as_ref().map(|p| p.as_str()))
    .bind(f.connection_id.as_ref().map(|c| c.as_str()))
    .bind(kind_exact)
    .bind(kind_prefix)
    .bind(&page.after)
    .bind(i64::from(page.limit))
    .fetch_all(store.read())
    .await
    .map_err(db_error)?;
    rows.iter().map(rows::event).collect()
}

pub async fn sealed_cells(
    store: &SqliteStore,
    column: SealedColumn,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<SealedCell>> {
    let sql = match column {
        SealedColumn::ProfileSecret => {
            "SELECT id, client_secret AS value FROM profiles WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::AccessToken => {
            "SELECT id, access_token AS value FROM connections WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::RefreshToken => {
            "SELECT id, refresh_token AS value FROM connections \
             WHERE refresh_token IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::PkceVerifier => {
            "SELECT id, pkce_verifier AS value FROM connect_sessions \
             WHERE pkce_verifier IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
    };
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(store.read())
        .await
        .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(row_id, value)| SealedCell { row_id, value })
        .collect())
}

pub async fn reseal(
    store: &SqliteStore,
    column: SealedColumn,
    row_id: &str,
    old: &[u8],
    new: &[u8],
) -> StoreResult<bool> {
    let sql = match column {
        SealedColumn::ProfileSecret => {
            "UPDATE profiles SET client_secret = $3 WHERE id = $1 AND client_secret = $2"
        }
        SealedColumn::AccessToken => {
            "UPDATE connections SET access_token = $3 WHERE id = $1 AND access_token = $2"
        }
        SealedColumn::RefreshToken => {
            "UPDATE connections SET refresh_token = $3 WHERE id = $1 AND refresh_token = $2"
        }
        SealedColumn::PkceVerifier => {
            "UPDATE connect_sessions SET pkce_verifier = $3 WHERE id = $1 AND pkce_verifier = $2"
        }
    };
    let result = sqlx::query(sql)
        .bind(row_id)
        .bind(old)
        .bind(new)
        .execute(store.write())
        .await
        .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}
