//! Connections as a whole: made, replaced on a reconnect, listed, deleted.

use async_trait::async_trait;
use grantry_core::clock::Timestamp;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{
    Announcement, ConnectionFilter, ConnectionRecord, ConnectionStatus, ConnectionStore,
    PageRequest, StoreError, StoreResult,
};

use crate::rows::{self, Columns, scopes_text};
use crate::{Access, Engine, SqlStore, Statement};

/// The columns a (re)connect sets, in the order of the placeholders after `$1` (the id).
fn bind_fields(statement: Statement, c: &ConnectionRecord) -> Statement {
    statement
        .text(c.end_user_id.as_deref())
        .text(c.credential.as_str())
        .text(c.account_key.as_str())
        .text(c.account_id.as_deref())
        .text(c.account_username.as_deref())
        .text(c.account_display_name.as_deref())
        .text(c.login.as_deref())
        .text(c.status.as_str())
        .text(c.status_reason.as_deref())
        .text(scopes_text(&c.granted_scopes).as_str())
        .bytes(c.access_token.as_slice())
        .bytes(c.refresh_token.as_deref())
        .time(c.expires_at)
        .time(c.refreshed_at)
        .time(c.refresh_token_at)
        .time(c.next_refresh_at)
        .time(c.updated_at)
}

#[async_trait]
impl<E: Engine> ConnectionStore for SqlStore<E> {
    async fn insert_connection(
        &self,
        c: &ConnectionRecord,
        announce: &[Announcement],
    ) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO connections (id, end_user_id, credential, account_key, account_id, \
             account_username, account_display_name, login, status, status_reason, granted_scopes, \
             access_token, refresh_token, expires_at, refreshed_at, refresh_token_at, next_refresh_at, \
             updated_at, profile_id, failures, last_error, version, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23)",
        )
        .text(c.id.as_str());
        let statement = bind_fields(statement, c)
            .text(c.profile_id.as_str())
            .int(c.failures)
            .text(c.last_error.as_deref())
            .int(c.version)
            .time(c.created_at);
        self.change(statement, announce).await?;
        Ok(())
    }

    async fn replace_connection(
        &self,
        c: &ConnectionRecord,
        announce: &[Announcement],
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE connections SET end_user_id = $2, credential = $3, account_key = $4, \
             account_id = $5, account_username = $6, account_display_name = $7, login = $8, \
             status = $9, status_reason = $10, granted_scopes = $11, access_token = $12, \
             refresh_token = $13, expires_at = $14, refreshed_at = $15, refresh_token_at = $16, \
             next_refresh_at = $17, updated_at = $18, failures = 0, last_error = NULL, \
             version = version + 1, lease_owner = NULL, lease_until = NULL, \
             expiry_warned_at = NULL WHERE id = $1",
        )
        .text(c.id.as_str());
        Ok(self.change(bind_fields(statement, c), announce).await? == 1)
    }

    async fn connection(&self, id: &ConnectionId) -> StoreResult<Option<ConnectionRecord>> {
        let statement = Statement::new("SELECT * FROM connections WHERE id = $1").text(id.as_str());
        self.one(Access::Read, statement, rows::connection).await
    }

    async fn connection_by_account(
        &self,
        profile: &ProfileId,
        end_user_id: Option<&str>,
        account_key: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let statement = Statement::new(
            "SELECT * FROM connections WHERE profile_id = $1 \
             AND COALESCE(end_user_id, '') = COALESCE($2, '') AND account_key = $3",
        )
        .text(profile.as_str())
        .text(end_user_id)
        .text(account_key);
        self.one(Access::Read, statement, rows::connection).await
    }

    async fn connections(
        &self,
        filter: &ConnectionFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let statement = Statement::new(
            "SELECT * FROM connections \
             WHERE ($1 IS NULL OR profile_id = $1) AND ($2 IS NULL OR end_user_id = $2) \
             AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id > $4) \
             ORDER BY id LIMIT $5",
        )
        .text(filter.profile_id.as_ref().map(ProfileId::as_str))
        .text(filter.end_user_id.as_deref())
        .text(filter.status.map(ConnectionStatus::as_str))
        .text(page.after.as_deref())
        .int(i64::from(page.limit));
        self.all(Access::Read, statement, rows::connection).await
    }

    async fn delete_connection(
        &self,
        id: &ConnectionId,
        announce: &[Announcement],
    ) -> StoreResult<bool> {
        let statement = Statement::new("DELETE FROM connections WHERE id = $1").text(id.as_str());
        Ok(self.change(statement, announce).await? == 1)
    }

    async fn expiring(
        &self,
        now: Timestamp,
        warn_until: Timestamp,
        refresh_token_lifetime: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let statement = Statement::new(
            "SELECT * FROM connections WHERE expiry_warned_at IS NULL \
             AND credential IN ('api_token', 'access_token') \
             AND expires_at > $1 AND expires_at <= $2 \
             UNION ALL \
             SELECT * FROM connections WHERE expiry_warned_at IS NULL AND status = 'failing' \
             AND credential = 'oauth2' AND refresh_token IS NOT NULL \
             AND refresh_token_at + $3 > $1 AND refresh_token_at + $3 <= $2 \
             LIMIT $4",
        )
        .time(now)
        .time(warn_until)
        .int(grantry_core::clock::seconds(refresh_token_lifetime))
        .int(i64::from(limit));
        self.all(Access::Read, statement, rows::connection).await
    }

    async fn mark_expiry_warned(
        &self,
        id: &ConnectionId,
        version: i64,
        now: Timestamp,
        announce: &[Announcement],
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            "UPDATE connections SET expiry_warned_at = $3 \
             WHERE id = $1 AND version = $2 AND expiry_warned_at IS NULL",
        )
        .text(id.as_str())
        .int(version)
        .time(now);
        Ok(self.change(statement, announce).await? == 1)
    }

    async fn connection_counts(&self) -> StoreResult<Vec<(ProfileId, ConnectionStatus, u64)>> {
        let statement = Statement::new(
            "SELECT profile_id, status, COUNT(*) AS n FROM connections GROUP BY profile_id, status",
        );
        self.all(Access::Read, statement, count_row).await
    }

    async fn credentials_ending(&self, now: Timestamp, until: Timestamp) -> StoreResult<u64> {
        let statement = Statement::new(
            "SELECT COUNT(*) AS n FROM connections \
             WHERE credential IN ('api_token', 'access_token') AND status <> 'needs_reauth' \
             AND expires_at > $1 AND expires_at <= $2",
        )
        .time(now)
        .time(until);
        let n = self.one(Access::Read, statement, rows::count).await?;
        Ok(n.unwrap_or(0))
    }
}

fn count_row(row: &impl Columns) -> StoreResult<(ProfileId, ConnectionStatus, u64)> {
    let status = row.text("status")?.unwrap_or_default();
    let status = ConnectionStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status `{status}`")))?;
    let profile = row.text("profile_id")?.unwrap_or_default();
    Ok((ProfileId::from_stored(profile), status, rows::count(row)?))
}
