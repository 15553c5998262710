//! API keys, stored as digests.

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::ApiKeyId;
use grantry_core::store::{ApiKeyRecord, ApiKeyStore, StoreResult};

use crate::rows;
use crate::{Access, Engine, SqlStore, Statement};

#[async_trait]
impl<E: Engine> ApiKeyStore for SqlStore<E> {
    async fn insert_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO api_keys (id, name, role, digest, hint, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .text(k.id.as_str())
        .text(k.name.as_str())
        .text(k.role.as_str())
        .text(k.digest.as_str())
        .text(k.hint.as_str())
        .time(k.created_at)
        .time(k.revoked_at);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn api_key_by_digest(&self, digest: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let statement = Statement::new("SELECT * FROM api_keys WHERE digest = $1").text(digest);
        self.one(Access::Read, statement, rows::api_key).await
    }

    async fn api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        let statement = Statement::new("SELECT * FROM api_keys ORDER BY id");
        self.all(Access::Read, statement, rows::api_key).await
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .text(id.as_str())
        .time(at);
        Ok(self.engine.execute(statement).await? == 1)
    }
}
