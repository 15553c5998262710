//! The audit trail: what happened to profiles, connections, API keys and master keys, and who
//! did it. Services record events, so the API, the CLI and the console all leave the same trail.
//! The events about connections' and profiles' lives are also webhook messages
//! ([`EventKind::for_webhooks`]): they are written as [`Announcement`]s, in the transaction of
//! the change they report.

use serde_json::json;

use crate::app::{Actor, Grantry};
use crate::clock::Rfc3339;
use crate::error::CoreResult;
use crate::ids::{ConnectionId, EventId, ProfileId};
use crate::store::{
    Announcement, ConnectionRecord, ConnectionStatus, EventFilter, EventRecord, PageRequest,
    ProfileRecord,
};

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
    ConnectionFailing,
    /// Back to active after failing or needing reauthorization.
    ConnectionRecovered,
    ConnectionNeedsReauth,
    /// Connected (or refreshed) without some of the profile's required scopes.
    ConnectionInsufficientScopes,
    /// A credential Grantry cannot renew nears its end.
    ConnectionCredentialExpiring,
    ConnectionDeleted,
    /// The provider accepts the profile's OAuth client again.
    ProfileRecovered,
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
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    /// Grantry disabled an endpoint: it answered 410 Gone, or failed for days.
    WebhookDisabled,
    /// Sent to one endpoint on request; never in the audit trail.
    WebhookTest,
}

impl EventKind {
    pub const ALL: [EventKind; 27] = [
        EventKind::ProfileCreated,
        EventKind::ProfileUpdated,
        EventKind::ProfileDeleted,
        EventKind::ProfileMisconfigured,
        EventKind::ConnectionCreated,
        EventKind::ConnectionReconnected,
        EventKind::ConnectionRefreshed,
        EventKind::ConnectionFailing,
        EventKind::ConnectionRecovered,
        EventKind::ConnectionNeedsReauth,
        EventKind::ConnectionInsufficientScopes,
        EventKind::ConnectionCredentialExpiring,
        EventKind::ConnectionDeleted,
        EventKind::ProfileRecovered,
        EventKind::ConnectRefused,
        EventKind::ApiKeyCreated,
        EventKind::ApiKeyRevoked,
        EventKind::KeysRotated,
        EventKind::AdminCreated,
        EventKind::AdminPasswordChanged,
        EventKind::AdminRemoved,
        EventKind::AdminSignInFailed,
        EventKind::WebhookCreated,
        EventKind::WebhookUpdated,
        EventKind::WebhookDeleted,
        EventKind::WebhookDisabled,
        EventKind::WebhookTest,
    ];

    /// The kinds webhooks carry, as endpoints subscribe to them.
    pub const FOR_WEBHOOKS: [EventKind; 11] = [
        EventKind::ConnectionCreated,
        EventKind::ConnectionReconnected,
        EventKind::ConnectionNeedsReauth,
        EventKind::ConnectionFailing,
        EventKind::ConnectionRecovered,
        EventKind::ConnectionInsufficientScopes,
        EventKind::ConnectionDeleted,
        EventKind::ConnectionCredentialExpiring,
        EventKind::ProfileMisconfigured,
        EventKind::ProfileRecovered,
        EventKind::WebhookTest,
    ];

    pub fn for_webhooks(self) -> bool {
        EventKind::FOR_WEBHOOKS.contains(&self)
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProfileCreated => "profile.created",
            EventKind::ProfileUpdated => "profile.updated",
            EventKind::ProfileDeleted => "profile.deleted",
            EventKind::ProfileMisconfigured => "profile.misconfigured",
            EventKind::ConnectionCreated => "connection.created",
            EventKind::ConnectionReconnected => "connection.reconnected",
            EventKind::ConnectionRefreshed => "connection.refreshed",
            EventKind::ConnectionFailing => "connection.failing",
            EventKind::ConnectionRecovered => "connection.recovered",
            EventKind::ConnectionNeedsReauth => "connection.needs_reauth",
            EventKind::ConnectionInsufficientScopes => "connection.insufficient_scopes",
            EventKind::ConnectionCredentialExpiring => "connection.credential_expiring",
            EventKind::ConnectionDeleted => "connection.deleted",
            EventKind::ProfileRecovered => "profile.recovered",
            EventKind::ConnectRefused => "connect.refused",
            EventKind::ApiKeyCreated => "api_key.created",
            EventKind::ApiKeyRevoked => "api_key.revoked",
            EventKind::KeysRotated => "keys.rotated",
            EventKind::AdminCreated => "admin.created",
            EventKind::AdminPasswordChanged => "admin.password_changed",
            EventKind::AdminRemoved => "admin.removed",
            EventKind::AdminSignInFailed => "admin.sign_in_failed",
            EventKind::WebhookCreated => "webhook.created",
            EventKind::WebhookUpdated => "webhook.updated",
            EventKind::WebhookDeleted => "webhook.deleted",
            EventKind::WebhookDisabled => "webhook.disabled",
            EventKind::WebhookTest => "webhook.test",
        }
    }
}

/// A connection as webhooks describe it: no token, no secret.
fn connection_data(
    profile: &ProfileRecord,
    c: &ConnectionRecord,
    status: ConnectionStatus,
    reason: Option<&str>,
) -> serde_json::Value {
    json!({
        "connection_id": c.id,
        "profile": { "id": profile.id, "name": profile.name },
        "end_user_id": c.end_user_id,
        "credential": c.credential,
        "account": {
            "id": c.account_id,
            "username": c.account_username,
            "display_name": c.account_display_name,
        },
        "status": status,
        "reason": reason,
    })
}

/// A webhook message: `{"type", "timestamp", "data"}`.
pub(crate) fn message(
    kind: EventKind,
    at: crate::clock::Timestamp,
    data: serde_json::Value,
) -> String {
    json!({ "type": kind.as_str(), "timestamp": Rfc3339(at).to_string(), "data": data }).to_string()
}

/// An event and the webhook message made of it and `data`.
fn announcing(event: EventRecord, kind: EventKind, data: serde_json::Value) -> Announcement {
    let message = message(kind, event.at, data);
    Announcement {
        event,
        message: Some(message),
    }
}

impl Grantry {
    fn event(
        &self,
        kind: EventKind,
        profile: Option<&ProfileId>,
        connection: Option<&ConnectionId>,
        actor: &Actor,
        detail: String,
    ) -> EventRecord {
        EventRecord {
            id: EventId::generate(),
            at: self.clock.now(),
            kind: kind.as_str().to_owned(),
            profile_id: profile.cloned(),
            connection_id: connection.cloned(),
            actor: actor.label(),
            detail,
        }
    }

    /// What to write with a change to a connection: the audit event and its webhook message.
    /// `status` and `reason` are the connection's after the change.
    pub(crate) fn about_connection(
        &self,
        kind: EventKind,
        profile: &ProfileRecord,
        c: &ConnectionRecord,
        (status, reason): (ConnectionStatus, Option<&str>),
        actor: &Actor,
        detail: String,
    ) -> Announcement {
        let event = self.event(kind, Some(&profile.id), Some(&c.id), actor, detail);
        announcing(event, kind, connection_data(profile, c, status, reason))
    }

    /// What to write with a change to a profile's health (`profile.misconfigured`,
    /// `profile.recovered`).
    pub(crate) fn about_profile(
        &self,
        kind: EventKind,
        profile: &ProfileRecord,
        problem: Option<&str>,
    ) -> Announcement {
        let detail = problem
            .unwrap_or("The provider accepts the OAuth client again")
            .to_owned();
        let event = self.event(kind, Some(&profile.id), None, &Actor::System, detail);
        let data = json!({
            "profile": { "id": profile.id, "name": profile.name },
            "problem": problem,
        });
        announcing(event, kind, data)
    }

    /// Records an event that goes with no other write. A failure to record is logged, never
    /// allowed to undo the action.
    pub async fn record(
        &self,
        kind: EventKind,
        profile: Option<&ProfileId>,
        connection: Option<&ConnectionId>,
        actor: &Actor,
        detail: String,
    ) {
        let announce = Announcement {
            event: self.event(kind, profile, connection, actor, detail),
            message: None,
        };
        if let Err(error) = self.store.insert_event(&announce).await {
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
