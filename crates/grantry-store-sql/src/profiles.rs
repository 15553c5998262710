//! Profiles. Deleting one cascades to its connections and connect sessions.

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::ProfileId;
use grantry_core::store::{Announcement, ProfileRecord, ProfileStore, StoreResult};

use crate::rows::{self, scopes_text, urls_text};
use crate::{Access, Engine, SqlStore, Statement, Transaction};

/// The columns every write sets, in the order of the placeholders after `$1` (the id).
fn bind_fields(statement: Statement, p: &ProfileRecord) -> Statement {
    statement
        .text(p.name.as_str())
        .text(p.description.as_str())
        .text(p.client_id.as_str())
        .bytes(p.client_secret.as_slice())
        .text(p.base_url.as_deref())
        .text(scopes_text(&p.required_scopes).as_str())
        .text(urls_text(&p.allowed_return_urls).as_str())
        .flag(p.private)
        .text(p.problem.as_deref())
        .time(p.problem_at)
        .time(p.updated_at)
        .flag(p.confirm_connections)
}

#[async_trait]
impl<E: Engine> ProfileStore for SqlStore<E> {
    async fn insert_profile(&self, p: &ProfileRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO profiles (id, name, description, client_id, client_secret, base_url, \
             required_scopes, allowed_return_urls, private, problem, problem_at, updated_at, \
             confirm_connections, provider, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .text(p.id.as_str());
        let statement = bind_fields(statement, p)
            .text(p.provider.as_str())
            .time(p.created_at);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn update_profile(
        &self,
        p: &ProfileRecord,
        announce: &[Announcement],
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE profiles SET name = $2, description = $3, client_id = $4, client_secret = $5, \
             base_url = $6, required_scopes = $7, allowed_return_urls = $8, private = $9, \
             problem = $10, problem_at = $11, updated_at = $12, confirm_connections = $13 \
             WHERE id = $1",
        )
        .text(p.id.as_str());
        Ok(self.change(bind_fields(statement, p), announce).await? == 1)
    }

    async fn profile(&self, id: &ProfileId) -> StoreResult<Option<ProfileRecord>> {
        let statement = Statement::new("SELECT * FROM profiles WHERE id = $1").text(id.as_str());
        self.one(Access::Read, statement, rows::profile).await
    }

    async fn profile_by_name(&self, name: &str) -> StoreResult<Option<ProfileRecord>> {
        let statement = Statement::new("SELECT * FROM profiles WHERE name = $1").text(name);
        self.one(Access::Read, statement, rows::profile).await
    }

    async fn profiles(&self) -> StoreResult<Vec<ProfileRecord>> {
        let statement = Statement::new("SELECT * FROM profiles ORDER BY name");
        self.all(Access::Read, statement, rows::profile).await
    }

    async fn delete_profile(&self, id: &ProfileId) -> StoreResult<Option<u64>> {
        let mut tx = self.engine.begin().await?;
        // The connections the deletion cascades to, locked in the order token writes lock them.
        let lock = Statement::new(self.engine.dialect().lock_profile_connections)
            .text(id.as_str())
            .text(None);
        let connections = tx.fetch_all(lock).await?.len() as u64;
        let delete = Statement::new("DELETE FROM profiles WHERE id = $1").text(id.as_str());
        let deleted = tx.execute(delete).await?;
        tx.commit().await?;
        Ok((deleted == 1).then_some(connections))
    }

    async fn set_profile_problem(
        &self,
        id: &ProfileId,
        problem: Option<&str>,
        at: Timestamp,
        announce: &[Announcement],
    ) -> StoreResult<()> {
        let set = |sql| {
            Statement::new(sql)
                .text(id.as_str())
                .text(problem)
                .time(problem.map(|_| at))
        };
        // Announced only when the profile turns misconfigured or recovers, not on every
        // refusal while it stays misconfigured.
        let turned = set("UPDATE profiles SET problem = $2, problem_at = $3 \
             WHERE id = $1 AND (problem IS NULL) <> ($2 IS NULL)");
        if self.change(turned, announce).await? == 0 && problem.is_some() {
            let unchanged = set("UPDATE profiles SET problem = $2, problem_at = $3 WHERE id = $1");
            self.engine.execute(unchanged).await?;
        }
        Ok(())
    }
}
