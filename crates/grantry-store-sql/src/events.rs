//! The audit trail, newest first.

use async_trait::async_trait;
use grantry_core::ids::{ConnectionId, ProfileId};
use grantry_core::store::{EventFilter, EventRecord, EventStore, PageRequest, StoreResult};

use crate::rows;
use crate::{Access, Engine, SqlStore, Statement};

#[async_trait]
impl<E: Engine> EventStore for SqlStore<E> {
    async fn insert_event(&self, e: &EventRecord) -> StoreResult<()> {
        let statement = Statement::new(
            "INSERT INTO events (id, at, kind, profile_id, connection_id, actor, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .text(e.id.as_str())
        .int(e.at)
        .text(e.kind.as_str())
        .text(e.profile_id.as_ref().map(ProfileId::as_str))
        .text(e.connection_id.as_ref().map(ConnectionId::as_str))
        .text(e.actor.as_str())
        .text(e.detail.as_str());
        self.engine.execute(statement).await?;
        Ok(())
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
