//! Changes other nodes made, as the database announces them (PostgreSQL's LISTEN/NOTIFY), and
//! what this node does about its caches when it hears of them, or fears it missed some.

use std::sync::atomic::Ordering;

use crate::app::Grantry;
use crate::ids::{ConnectionId, ProfileId};
use crate::store::ConnectionStatus;

/// One announced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A connection's tokens, status or owner changed.
    Connection {
        id: ConnectionId,
        version: i64,
        status: ConnectionStatus,
    },
    ConnectionDeleted(ConnectionId),
    /// A profile was edited, flagged, fixed or deleted.
    Profile(ProfileId),
    /// An API key was revoked.
    ApiKey,
    /// The master keys were rotated: re-read the key file.
    Keys,
}

impl Change {
    /// Parses a notification payload: `connection:<id>:<version>:<status>`,
    /// `connection:<id>:deleted`, `profile:<id>`, `api_key:<id>`, `keys`.
    pub fn parse(payload: &str) -> Option<Change> {
        let mut parts = payload.split(':');
        match parts.next()? {
            "connection" => {
                let id = ConnectionId::parse(parts.next()?).ok()?;
                match (parts.next()?, parts.next()) {
                    ("deleted", None) => Some(Change::ConnectionDeleted(id)),
                    (version, Some(status)) => Some(Change::Connection {
                        id,
                        version: version.parse().ok()?,
                        status: ConnectionStatus::parse(status)?,
                    }),
                    _ => None,
                }
            }
            "profile" => Some(Change::Profile(ProfileId::parse(parts.next()?).ok()?)),
            "api_key" => Some(Change::ApiKey),
            "keys" => Some(Change::Keys),
            _ => None,
        }
    }
}

impl Grantry {
    /// Drops what this node cached that a change made stale.
    pub fn apply_change(&self, change: &Change) {
        self.metrics.change_heard();
        match change {
            Change::Connection {
                id,
                version,
                status,
            } => {
                let current = self.cache.peek(id);
                if current.is_some_and(|c| c.version != *version || c.status != *status) {
                    self.cache.forget(id);
                }
            }
            Change::ConnectionDeleted(id) => {
                self.cache.forget(id);
                self.flights.forget(id);
            }
            Change::Profile(id) => self.profiles.forget(id),
            Change::ApiKey => self.api_keys.clear(),
            Change::Keys => {
                if let Err(error) = self.keys.reload() {
                    tracing::error!(%error, "master keys were rotated but the key file could not be read");
                }
            }
        }
    }

    /// While on, nothing is answered from (or kept in) the token and API key caches: this node
    /// may have missed changes.
    pub fn set_cache_bypass(&self, on: bool) {
        let was = self.cache_bypass.swap(on, Ordering::SeqCst);
        if on != was {
            tracing::warn!(
                bypass = on,
                "token and API key caches {}",
                if on { "bypassed" } else { "back in use" }
            );
        }
        if on {
            self.forget_everything();
        }
    }

    pub fn cache_bypassed(&self) -> bool {
        self.cache_bypass.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        let id = ConnectionId::generate();
        assert_eq!(
            Change::parse(&format!("connection:{id}:7:needs_reauth")),
            Some(Change::Connection {
                id: id.clone(),
                version: 7,
                status: ConnectionStatus::NeedsReauth
            })
        );
        assert_eq!(
            Change::parse(&format!("connection:{id}:deleted")),
            Some(Change::ConnectionDeleted(id))
        );
        assert_eq!(Change::parse("api_key:key_x"), Some(Change::ApiKey));
        let profile = ProfileId::generate();
        assert_eq!(
            Change::parse(&format!("profile:{profile}")),
            Some(Change::Profile(profile))
        );
        assert_eq!(Change::parse("connection:nonsense:1:active"), None);
        assert_eq!(Change::parse("ping:node-1"), None);
    }
}
