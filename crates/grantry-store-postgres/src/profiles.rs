//! Profiles. Deleting one cascades to its connections and connect sessions.

use grantry_core::clock::Timestamp;
use grantry_core::ids::ProfileId;
use grantry_core::store::{ProfileRecord, StoreResult};

use crate::rows::{self, scopes_text, urls_text};
use crate::{PgStore, db_error};

pub async fn insert(store: &PgStore, p: &ProfileRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO profiles (id, name, description, provider, client_id, client_secret, base_url, \
         required_scopes, allowed_return_urls, private, problem, problem_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(p.id.as_str())
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.provider.as_str())
    .bind(&p.client_id)
    .bind(&p.client_secret)
    .bind(&p.base_url)
    .bind(scopes_text(&p.required_scopes))
    .bind(urls_text(&p.allowed_return_urls))
    .bind(p.private)
    .bind(&p.problem)
    .bind(p.problem_at)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn update(store: &PgStore, p: &ProfileRecord) -> StoreResult<bool> {
    let result = sqlx::query(
        "UPDATE profiles SET name = $2, description = $3, client_id = $4, client_secret = $5, \
         base_url = $6, required_scopes = $7, allowed_return_urls = $8, private = $9, problem = $10, \
         problem_at = $11, updated_at = $12 WHERE id = $1",
    )
    .bind(p.id.as_str())
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.client_id)
    .bind(&p.client_secret)
    .bind(&p.base_url)
    .bind(scopes_text(&p.required_scopes))
    .bind(urls_text(&p.allowed_return_urls))
    .bind(p.private)
    .bind(&p.problem)
    .bind(p.problem_at)
    .bind(p.updated_at)
    .execute(store.db()?)
    .await
    .map_err(db_error)?;
    Ok(result.rows_affected() == 1)
}

/// A profile by `id` or by `name`.
pub async fn by_column(
    store: &PgStore,
    column: &str,
    value: &str,
) -> StoreResult<Option<ProfileRecord>> {
    let sql = match column {
        "id" => "SELECT * FROM profiles WHERE id = $1",
        _ => "SELECT * FROM profiles WHERE name = $1",
    };
    let row = sqlx::query(sql)
        .bind(value)
        .fetch_optional(store.db()?)
        .await
        .map_err(db_error)?;
    row.as_ref().map(rows::profile).transpose()
}

pub async fn all(store: &PgStore) -> StoreResult<Vec<ProfileRecord>> {
    let rows = sqlx::query("SELECT * FROM profiles ORDER BY name")
        .fetch_all(store.db()?)
        .await
        .map_err(db_error)?;
    rows.iter().map(rows::profile).collect()
}

pub async fn delete(store: &PgStore, id: &ProfileId) -> StoreResult<Option<u64>> {
    let mut tx = store.db()?.begin().await.map_err(db_error)?;
    let connections: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM connections WHERE profile_id = $1")
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
    let deleted = sqlx::query("DELETE FROM profiles WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok((deleted.rows_affected() == 1).then_some(connections as u64))
}

pub async fn set_problem(
    store: &PgStore,
    id: &ProfileId,
    problem: Option<&str>,
    at: Timestamp,
) -> StoreResult<()> {
    sqlx::query("UPDATE profiles SET problem = $2, problem_at = $3 WHERE id = $1")
        .bind(id.as_str())
        .bind(problem)
        .bind(problem.map(|_| at))
        .execute(store.db()?)
        .await
        .map_err(db_error)?;
    Ok(())
}
