//! The audit trail: what happened to profiles, connections, API keys and master keys, and who
//! did it. Services record events, so the API, the CLI and the console all leave the same trail.

use crate::app::{Actor, Grantry};
use crate::error::CoreResult;
use crate::ids::{ConnectionId, EventId, ProfileId};
use crate::store::{EventFilter, EventRecord, PageRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ProfileCreated,
    ProfileUpdated,
    ProfileDeleted,
    /// The provider refused the profile's OAuth client.
    ProfileMisconfigured,
    ConnectionCreated,
    ConnectionReconnected,
    /// A refresh someone asked for (background renewals are counted in metrics instead).
    ConnectionRefreshed,
    /// Transient failures began.
    ConnectionFailed,
    ConnectionRecovered,
    ConnectionNeedsReauth,
    ConnectionDeleted,
    /// A connect flow refused: finished in another browser, or not confirmed by the application.
    ConnectRefused,
    ApiKeyCreated,
    ApiKeyRevoked,
    KeysRotated,
    AdminCreated,
    AdminPasswordChanged,
    AdminRemoved,
    /// A console sign-in with a wrong user name or password.
    AdminSignInFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 19] = [
        EventKind::ProfileCreated,
        EventKind::ProfileUpdated,
        EventKind::ProfileDeleted,
        EventKind::ProfileMisconfigured,
        EventKind::ConnectionCreated,
        EventKind::ConnectionReconnected,
        EventKind::ConnectionRefreshed,
        EventKind::ConnectionFailed,
        EventKind::ConnectionRecovered,
        EventKind::ConnectionNeedsReauth,
        EventKind::ConnectionDeleted,
        EventKind::ConnectRefused,
        EventKind::ApiKeyCreated,
        EventKind::ApiKeyRevoked,
        EventKind::KeysRotated,
        EventKind::AdminCreated,
        EventKind::AdminPasswordChanged,
        EventKind::AdminRemoved,
        EventKind::AdminSignInFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProfileCreated => "profile.created",
            EventKind::ProfileUpdated => "profile.updated",
            EventKind::ProfileDeleted => "profile.deleted",
            EventKind::ProfileMisconfigured => "profile.misconfigured",
            EventKind::ConnectionCreated => "connection.created",
            EventKind::ConnectionReconnected => "connection.reconnected",
            EventKind::ConnectionRefreshed => "connection.refreshed",
            EventKind::ConnectionFailed => "connection.failed",
            EventKind::ConnectionRecovered => "connection.recovered",
            EventKind::ConnectionNeedsReauth => "connection.needs_reauth",
            EventKind::ConnectionDeleted => "connection.deleted",
            EventKind::ConnectRefused => "connect.refused",
            EventKind::ApiKeyCreated => "api_key.created",
            EventKind::ApiKeyRevoked => "api_key.revoked",
            EventKind::KeysRotated => "keys.rotated",
            EventKind::AdminCreated => "admin.created",
            EventKind::AdminPasswordChanged => "admin.password_changed",
            EventKind::AdminRemoved => "admin.removed",
            EventKind::AdminSignInFailed => "admin.sign_in_failed",
        }
    }
}

impl Grantry {
    /// Records an event. A failure to record is logged, never allowed to undo the action.
    pub async fn record(
        &self,
        kind: EventKind,
        profile: Option<&ProfileId>,
        connection: Option<&ConnectionId>,
        actor: &Actor,
        detail: String,
    ) {
        let event = EventRecord {
            id: EventId::generate(),
            at: self.clock.now(),
            kind: kind.as_str().to_owned(),
            profile_id: profile.cloned(),
            connection_id: connection.cloned(),
            actor: actor.label(),
            detail,
        };
        if let Err(error) = self.store.insert_event(&event).await {
            tracing::error!(%error, event.kind = kind.as_str(), "could not record an audit event");
        }
    }

    pub async fn list_events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> CoreResult<Vec<EventRecord>> {
        Ok(self.store.events(filter, page).await?)
    }
}
