//! The audit trail, newest first, and the webhook outbox it feeds.

use async_trait::async_trait;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{
    Announcement, EventFilter, EventRecord, EventStore, PageRequest, StoreResult,
};

use crate::rows;
use crate::{Access, Engine, SqlStore, Statement, Transaction};

/// `text` as a LIKE pattern matching `,text,` anywhere (`\` escapes LIKE's wildcards).
fn listed(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%,{escaped},%")
}

/// The statements that write an announcement: the audit event and, for a kind webhooks
/// carry, one outbox row per enabled endpoint that wants the kind and the profile.
pub(crate) fn announcing(a: &Announcement) -> Vec<Statement> {
    let e = &a.event;
    let mut statements = vec![
        Statement::new(
            "INSERT INTO events (id, at, kind, profile_id, connection_id, actor, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .text(e.id.as_str())
        .time(e.at)
        .text(e.kind.as_str())
        .text(e.profile_id.as_ref().map(ProfileId::as_str))
        .text(e.connection_id.as_ref().map(ConnectionId::as_str))
        .text(e.actor.as_str())
        .text(e.detail.as_str()),
    ];
    if let Some(message) = &a.message {
        let ordering_key = e
            .connection_id
            .as_ref()
            .map(ConnectionId::as_str)
            .or(e.profile_id.as_ref().map(ProfileId::as_str))
            .unwrap_or_default();
        let profile = e.profile_id.as_ref().map(|p| listed(p.as_str()));
        statements.push(
            Statement::new(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, kind, ordering_key, \
                 payload, created_at, state, attempts, next_attempt_at) \
                 SELECT id, $1, $2, $3, $4, $5, 'pending', 0, $5 FROM webhooks \
                 WHERE enabled = $6 AND (kinds = '' OR kinds LIKE $7 ESCAPE '\\') \
                 AND (profiles = '' OR profiles LIKE $8 ESCAPE '\\')",
            )
            .text(e.id.as_str())
            .text(e.kind.as_str())
            .text(ordering_key)
            .text(message.as_str())
            .time(e.at)
            .flag(true)
            .text(listed(&e.kind).as_str())
            .text(profile.as_deref()),
        );
    }
    statements
}

#[async_trait]
impl<E: Engine> EventStore for SqlStore<E> {
    async fn insert_event(&self, announce: &Announcement) -> StoreResult<()> {
        let mut statements = announcing(announce);
        if statements.len() == 1 {
            self.engine.execute(statements.remove(0)).await?;
            return Ok(());
        }
        let mut tx = self.engine.begin().await?;
        for statement in statements {
            tx.execute(statement).await?;
        }
        tx.commit().await
    }

    async fn events(&self, f: &EventFilter, page: &PageRequest) -> StoreResult<Vec<EventRecord>> {
        let (kind_exact, kind_prefix) = match f.kind.as_deref() {
            Some(kind) if kind.ends_with('.') => (None, Some(format!("{kind}%"))),
            Some(kind) => (Some(kind), None),
            None => (None, None),
        };
        let statement = Statement::new(
            "SELECT * FROM events \
             WHERE ($1 IS NULL OR profile_id = $1) AND ($2 IS NULL OR connection_id = $2) \
             AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR kind LIKE $4) \
             AND ($5 IS NULL OR id < $5) \
             ORDER BY id DESC LIMIT $6",
        )
        .text(f.profile_id.as_ref().map(ProfileId::as_str))
        .text(f.connection_id.as_ref().map(ConnectionId::as_str))
        .text(kind_exact)
        .text(kind_prefix.as_deref())
        .text(page.after.as_deref())
        .int(i64::from(page.limit));
        self.all(Access::Read, statement, rows::event).await
    }
}
