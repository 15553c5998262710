//! Decrypted tokens kept in memory so a read of a fresh token touches neither the database nor
//! the decryption path. Entries go on delete, status change, reconnect and token write (and, with
//! several nodes, on the database's change notifications).

use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use secrecy::SecretString;

use crate::clock::Timestamp;
use crate::ids::{ConnectionId, ProfileId};
use crate::store::{ConnectionStatus, CredentialKind};

/// What a token read answers.
#[derive(Debug)]
pub struct CachedToken {
    pub connection_id: ConnectionId,
    pub profile_id: ProfileId,
    pub credential: CredentialKind,
    pub access_token: SecretString,
    /// HTTP Basic user for API tokens.
    pub login: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// When the token was issued; with `expires_at`, its lifetime.
    pub issued_at: Option<Timestamp>,
    pub scopes: Vec<String>,
    pub account_id: Option<String>,
    pub account_username: Option<String>,
    pub account_display_name: Option<String>,
    pub status: ConnectionStatus,
    pub version: i64,
    /// The HTTP layer's serialized answer for this token, made on first use and reused by every
    /// read of this version (only `expires_in` changes between reads).
    pub rendered: OnceLock<Rendered>,
}

/// A serialized token answer split around its one time-dependent value.
#[derive(Debug)]
pub struct Rendered {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

/// How close to expiry a token may be and still be handed out without a refresh: the configured
/// margin, but never more than a quarter of the token's lifetime (short-lived tokens would
/// otherwise always look expiring).
pub fn effective_margin(margin: i64, issued_at: Option<Timestamp>, expires_at: Timestamp) -> i64 {
    let lifetime = issued_at.map_or(i64::MAX, |issued| (expires_at - issued).max(0));
    margin.min(lifetime / 4)
}

impl CachedToken {
    /// Good to hand out now without a refresh.
    pub fn is_fresh(&self, now: Timestamp, margin: i64) -> bool {
        match self.expires_at {
            None => true,
            Some(expires_at) => {
                !self.credential.renewable()
                    || expires_at - now > effective_margin(margin, self.issued_at, expires_at)
            }
        }
    }

    /// Still accepted by the provider (perhaps about to expire).
    pub fn is_valid(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

#[derive(Debug, Default)]
pub struct TokenCache {
    entries: DashMap<ConnectionId, Arc<CachedToken>>,
}

impl TokenCache {
    pub fn fresh(
        &self,
        id: &ConnectionId,
        now: Timestamp,
        margin: i64,
    ) -> Option<Arc<CachedToken>> {
        let entry = self.entries.get(id)?;
        entry.is_fresh(now, margin).then(|| entry.clone())
    }

    pub fn peek(&self, id: &ConnectionId) -> Option<Arc<CachedToken>> {
        self.entries.get(id).map(|e| e.clone())
    }

    pub fn put(&self, token: Arc<CachedToken>) {
        self.entries.insert(token.connection_id.clone(), token);
    }

    pub fn forget(&self, id: &ConnectionId) {
        self.entries.remove(id);
    }

    pub fn forget_profile(&self, profile: &ProfileId) {
        self.entries.retain(|_, token| token.profile_id != *profile);
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_shrinks_for_short_lived_tokens() {
        assert_eq!(effective_margin(300, Some(0), 7200), 300);
        assert_eq!(effective_margin(300, Some(0), 60), 15);
        assert_eq!(effective_margin(300, None, 60), 300);
    }
}
