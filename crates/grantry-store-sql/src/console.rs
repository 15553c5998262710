//! The web console: admins, their sessions, and small settings (the one-time setup link).

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::AdminId;
use grantry_core::store::{
    AdminRecord, AdminRemoval, ConsoleSessionRecord, ConsoleStore, StoreResult,
};

use crate::rows;
use crate::{Access, Engine, SqlStore, Statement, Transaction};

fn end_console_sessions(id: &AdminId) -> Statement {
    Statement::new("DELETE FROM console_sessions WHERE admin_id = $1").text(id.as_str())
}

#[async_trait]
impl<E: Engine> ConsoleStore for SqlStore<E> {
    async fn insert_admin(&self, a: &AdminRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO admins (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .text(a.id.as_str())
        .text(a.username.as_str())
        .text(a.password_hash.as_str())
        .time(a.created_at);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn admin_by_username(&self, username: &str) -> StoreResult<Option<AdminRecord>> {
        let statement = Statement::new("SELECT * FROM admins WHERE username = $1").text(username);
        self.one(Access::Read, statement, rows::admin).await
    }

    async fn admins(&self) -> StoreResult<Vec<AdminRecord>> {
        let statement = Statement::new("SELECT * FROM admins ORDER BY username");
        self.all(Access::Read, statement, rows::admin).await
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        let statement = Statement::new("SELECT COUNT(*) AS n FROM admins");
        let counted = self.one(Access::Read, statement, rows::count).await?;
        Ok(counted.unwrap_or(0))
    }

    async fn set_admin_password(&self, id: &AdminId, password_hash: &str) -> StoreResult<bool> {
        let mut tx = self.engine.begin().await?;
        let update = Statement::new("UPDATE admins SET password_hash = $2 WHERE id = $1")
            .text(id.as_str())
            .text(password_hash);
        let updated = tx.execute(update).await?;
        tx.execute(end_console_sessions(id)).await?;
        tx.commit().await?;
        Ok(updated == 1)
    }

    async fn delete_admin(&self, id: &AdminId) -> StoreResult<AdminRemoval> {
        let mut tx = self.engine.begin().await?;
        // Locks (or, on SQLite's single writer, simply reads) every admin, so a concurrent
        // removal waits and then counts again: two admins removing each other cannot leave none.
        let lock = Statement::new(self.engine.dialect().lock_admins);
        let admins = tx
            .fetch_all(lock)
            .await?
            .iter()
            .map(rows::id)
            .collect::<StoreResult<Vec<String>>>()?;
        if !admins.iter().any(|a| a == id.as_str()) {
            return Ok(AdminRemoval::NotFound);
        }
        if admins.len() == 1 {
            return Ok(AdminRemoval::LastAdmin);
        }
        // The schema cascades too; ending the sessions here does not depend on it.
        tx.execute(end_console_sessions(id)).await?;
        tx.execute(Statement::new("DELETE FROM admins WHERE id = $1").text(id.as_str()))
            .await?;
        tx.commit().await?;
        Ok(AdminRemoval::Removed)
    }

    async fn insert_console_session(&self, c: &ConsoleSessionRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO console_sessions (digest, admin_id, username, created_at, last_seen_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .text(c.digest.as_str())
        .text(c.admin_id.as_str())
        .text(c.username.as_str())
        .time(c.created_at)
        .time(c.last_seen_at)
        .time(c.expires_at);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn console_session(&self, digest: &str) -> StoreResult<Option<ConsoleSessionRecord>> {
        let statement =
            Statement::new("SELECT * FROM console_sessions WHERE digest = $1").text(digest);
        // From the writer: the first page after signing in follows the sign-in at once.
        self.one(Access::Write, statement, rows::console_session)
            .await
    }

    async fn touch_console_session(&self, digest: &str, at: Timestamp) -> StoreResult<()> {
        let statement =
            Statement::new("UPDATE console_sessions SET last_seen_at = $2 WHERE digest = $1")
                .text(digest)
                .time(at);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn delete_console_session(&self, digest: &str) -> StoreResult<()> {
        let statement =
            Statement::new("DELETE FROM console_sessions WHERE digest = $1").text(digest);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn put_meta(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let statement = match value {
            Some(value) => Statement::new(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .text(key)
            .text(value),
            None => Statement::new("DELETE FROM meta WHERE key = $1").text(key),
        };
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let statement = Statement::new("SELECT value FROM meta WHERE key = $1").text(key);
        self.one(Access::Write, statement, rows::value).await
    }
}
