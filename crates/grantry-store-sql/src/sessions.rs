//! Connect sessions: opened once (the browser's first visit), completed once (the callback).

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{ConnectionId, SessionId};
use grantry_core::store::{SessionRecord, SessionStore, StoreResult};

use crate::rows;
use crate::{Access, Engine, SqlStore, Statement, Transaction};

#[async_trait]
impl<E: Engine> SessionStore for SqlStore<E> {
    async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO connect_sessions (id, token_digest, profile_id, end_user_id, return_url, \
             connection_id, state_digest, pkce_verifier, created_at, expires_at, opened_at, \
             completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .text(s.id.as_str())
        .text(s.token_digest.as_str())
        .text(s.profile_id.as_str())
        .text(s.end_user_id.as_deref())
        .text(s.return_url.as_str())
        .text(s.connection_id.as_ref().map(ConnectionId::as_str))
        .text(s.state_digest.as_deref())
        .bytes(s.pkce_verifier.as_deref())
        .time(s.created_at)
        .time(s.expires_at)
        .time(s.opened_at)
        .time(s.completed_at);
        self.engine.execute(statement).await?;
        Ok(())
    }

    async fn session_by_token(&self, digest: &str) -> StoreResult<Option<SessionRecord>> {
        let statement =
            Statement::new("SELECT * FROM connect_sessions WHERE token_digest = $1").text(digest);
        // From the writer: the browser arrives a moment after the application made the session.
        self.one(Access::Write, statement, rows::session).await
    }

    async fn session_by_state(&self, digest: &str) -> StoreResult<Option<SessionRecord>> {
        let statement =
            Statement::new("SELECT * FROM connect_sessions WHERE state_digest = $1").text(digest);
        // From the writer: a callback may arrive a moment after the session was opened.
        self.one(Access::Write, statement, rows::session).await
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Option<SessionRecord>> {
        let statement =
            Statement::new("SELECT * FROM connect_sessions WHERE id = $1").text(id.as_str());
        self.one(Access::Write, statement, rows::session).await
    }

    async fn open_session(
        &self,
        id: &SessionId,
        state_digest: &str,
        browser_digest: &str,
        pkce_verifier: Option<&[u8]>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE connect_sessions SET state_digest = $2, browser_digest = $3, \
             pkce_verifier = $4, opened_at = $5 WHERE id = $1 AND opened_at IS NULL",
        )
        .text(id.as_str())
        .text(state_digest)
        .text(browser_digest)
        .bytes(pkce_verifier)
        .time(now);
        Ok(self.engine.execute(statement).await? == 1)
    }

    async fn complete_session(&self, id: &SessionId, now: Timestamp) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE connect_sessions SET completed_at = $2 WHERE id = $1 AND completed_at IS NULL",
        )
        .text(id.as_str())
        .time(now);
        Ok(self.engine.execute(statement).await? == 1)
    }

    async fn hold_grant(
        &self,
        id: &SessionId,
        verification_digest: &str,
        grant: &[u8],
        confirm_by: Timestamp,
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE connect_sessions SET verification_digest = $2, pending_grant = $3, \
             confirm_by = $4 WHERE id = $1 AND confirmed_at IS NULL",
        )
        .text(id.as_str())
        .text(verification_digest)
        .bytes(grant)
        .time(confirm_by);
        Ok(self.engine.execute(statement).await? == 1)
    }

    async fn take_grant(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut tx = self.engine.begin().await?;
        let claim = Statement::new(
            "UPDATE connect_sessions SET confirmed_at = $2 \
             WHERE id = $1 AND confirmed_at IS NULL AND pending_grant IS NOT NULL \
             AND confirm_by >= $2 RETURNING *",
        )
        .text(id.as_str())
        .time(now);
        let Some(row) = tx.fetch_all(claim).await?.into_iter().next() else {
            return Ok(None);
        };
        let held = rows::session(&row)?;
        let forget = Statement::new(
            "UPDATE connect_sessions SET pending_grant = NULL, verification_digest = NULL \
             WHERE id = $1",
        )
        .text(id.as_str());
        tx.execute(forget).await?;
        tx.commit().await?;
        Ok(Some(held))
    }

    async fn drop_unconfirmed(&self, now: Timestamp) -> StoreResult<u64> {
        let statement = Statement::new(
            "UPDATE connect_sessions SET pending_grant = NULL, verification_digest = NULL \
             WHERE pending_grant IS NOT NULL AND confirm_by < $1",
        )
        .time(now);
        self.engine.execute(statement).await
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64> {
        let statement =
            Statement::new("DELETE FROM connect_sessions WHERE expires_at < $1").time(before);
        self.engine.execute(statement).await
    }
}
