//! Sealed values, read and replaced (compare-and-swap) for master key rotation.

use async_trait::async_trait;
use grantry_core::store::{SealedCell, SealedColumn, SealedStore, StoreResult};

use crate::rows;
use crate::{Access, Engine, SqlStore, Statement};

/// `SELECT id, <column> AS value` from where the column lives, after a cursor.
fn cells_sql(column: SealedColumn) -> &'static str {
    match column {
        SealedColumn::ProfileSecret => {
            "SELECT id, client_secret AS value FROM profiles \
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::AccessToken => {
            "SELECT id, access_token AS value FROM connections \
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::RefreshToken => {
            "SELECT id, refresh_token AS value FROM connections \
             WHERE refresh_token IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::PkceVerifier => {
            "SELECT id, pkce_verifier AS value FROM connect_sessions \
             WHERE pkce_verifier IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::PendingGrant => {
            "SELECT id, pending_grant AS value FROM connect_sessions \
             WHERE pending_grant IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::WebhookSecret => {
            "SELECT id, secret AS value FROM webhooks \
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
        SealedColumn::WebhookPreviousSecret => {
            "SELECT id, previous_secret AS value FROM webhooks \
             WHERE previous_secret IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        }
    }
}

/// Replaces `$3` for `$2` in row `$1`.
fn reseal_sql(column: SealedColumn) -> &'static str {
    match column {
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
        SealedColumn::PendingGrant => {
            "UPDATE connect_sessions SET pending_grant = $3 WHERE id = $1 AND pending_grant = $2"
        }
        SealedColumn::WebhookSecret => {
            "UPDATE webhooks SET secret = $3 WHERE id = $1 AND secret = $2"
        }
        SealedColumn::WebhookPreviousSecret => {
            "UPDATE webhooks SET previous_secret = $3 WHERE id = $1 AND previous_secret = $2"
        }
    }
}

#[async_trait]
impl<E: Engine> SealedStore for SqlStore<E> {
    async fn sealed_key_ids(&self) -> StoreResult<Vec<[u8; 4]>> {
        // A sealed value is `version (1) | key id (4) | …`; SQL counts from 1.
        let statement = Statement::new(
            "SELECT DISTINCT substr(client_secret, 2, 4) AS id FROM profiles \
             UNION SELECT DISTINCT substr(access_token, 2, 4) FROM connections \
             UNION SELECT DISTINCT substr(refresh_token, 2, 4) FROM connections \
               WHERE refresh_token IS NOT NULL \
             UNION SELECT DISTINCT substr(pkce_verifier, 2, 4) FROM connect_sessions \
               WHERE pkce_verifier IS NOT NULL \
             UNION SELECT DISTINCT substr(pending_grant, 2, 4) FROM connect_sessions \
               WHERE pending_grant IS NOT NULL \
             UNION SELECT DISTINCT substr(secret, 2, 4) FROM webhooks \
             UNION SELECT DISTINCT substr(previous_secret, 2, 4) FROM webhooks \
               WHERE previous_secret IS NOT NULL",
        );
        self.all(Access::Read, statement, rows::key_id).await
    }

    async fn sealed_cells(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SealedCell>> {
        let statement = Statement::new(cells_sql(column))
            .text(after)
            .int(i64::from(limit));
        self.all(Access::Read, statement, rows::sealed_cell).await
    }

    async fn reseal(
        &self,
        column: SealedColumn,
        row_id: &str,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        let statement = Statement::new(reseal_sql(column))
            .text(row_id)
            .bytes(old)
            .bytes(new);
        Ok(self.engine.execute(statement).await? == 1)
    }
}
