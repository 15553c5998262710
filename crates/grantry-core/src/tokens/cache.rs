//! Decrypted tokens kept in memory so a read of a fresh token touches neither the database nor
//! the decryption path. The cache holds one compact copy of each token and stays within a byte
//! budget (`Settings::token_cache_bytes`), evicting what is least used (quick_cache's
//! CLOCK-Pro); a read of an evicted connection costs one store read and one decryption, in the
//! read's single flight. Entries go on delete, status change, reconnect and token write (and,
//! with several nodes, on the database's change notifications).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::Timestamp;
use crate::ids::{ConnectionId, ProfileId};
use crate::store::{ConnectionRecord, ConnectionStatus, CredentialKind};

/// What a token read answers. The HTTP layer renders its JSON from this on each read: a copy
/// of the answer kept here would double the memory every cached token takes.
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
}

/// What may change between a connection row and the token a refresh just obtained.
#[derive(Debug)]
pub struct TokenState {
    pub expires_at: Option<Timestamp>,
    pub issued_at: Option<Timestamp>,
    pub scopes: Vec<String>,
    pub status: ConnectionStatus,
    pub version: i64,
}

impl TokenState {
    /// The state a row holds.
    pub fn of(row: &ConnectionRecord) -> TokenState {
        TokenState {
            expires_at: row.expires_at,
            issued_at: row.refreshed_at,
            scopes: row.granted_scopes.clone(),
            status: row.status,
            version: row.version,
        }
    }
}

/// How close to expiry a token may be and still be handed out without a refresh: the configured
/// margin, but never more than a quarter of the token's lifetime (short-lived tokens would
/// otherwise always look expiring).
pub fn effective_margin(margin: i64, issued_at: Option<Timestamp>, expires_at: Timestamp) -> i64 {
    let lifetime = issued_at.map_or(i64::MAX, |issued| (expires_at - issued).max(0));
    margin.min(lifetime / 4)
}

impl CachedToken {
    /// The one way a cached token is made: a connection's identity from its row, the opened
    /// access token, and the state it is in (the row's, or what a refresh just wrote).
    pub fn new(
        row: &ConnectionRecord,
        access_token: SecretString,
        state: TokenState,
    ) -> CachedToken {
        CachedToken {
            connection_id: row.id.clone(),
            profile_id: row.profile_id.clone(),
            credential: row.credential,
            access_token,
            login: row.login.clone(),
            expires_at: state.expires_at,
            issued_at: state.issued_at,
            scopes: state.scopes,
            account_id: row.account_id.clone(),
            account_username: row.account_username.clone(),
            account_display_name: row.account_display_name.clone(),
            status: state.status,
            version: state.version,
        }
    }

    /// Roughly the bytes this token holds in memory, for the cache's budget.
    pub fn weight(&self) -> u64 {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let bytes = std::mem::size_of::<CachedToken>()
            + self.connection_id.as_str().len()
            + self.profile_id.as_str().len()
            + self.access_token.expose_secret().len()
            + text(&self.login)
            + self.scopes.iter().map(|s| s.len() + 24).sum::<usize>()
            + text(&self.account_id)
            + text(&self.account_username)
            + text(&self.account_display_name)
            // The map's own entry: key, pointer, the Arc's counts.
            + 96;
        bytes as u64
    }

    /// Good to hand out now without a refresh.
    pub fn is_fresh(&self, now: Timestamp, margin: i64) -> bool {
        match self.expires_at {
            None => true,
            // Nothing can renew it: served up to its expiry, never after.
            Some(expires_at) if !self.credential.renewable() => expires_at > now,
            Some(expires_at) => {
                expires_at - now > effective_margin(margin, self.issued_at, expires_at)
            }
        }
    }

    /// Still accepted by the provider (perhaps about to expire).
    pub fn is_valid(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<ConnectionId, Arc<CachedToken>> for ByBytes {
    fn weight(&self, _key: &ConnectionId, token: &Arc<CachedToken>) -> u64 {
        token.weight().max(1)
    }
}

/// The cached tokens, within a byte budget.
pub struct TokenCache {
    entries: quick_cache::sync::Cache<ConnectionId, Arc<CachedToken>, ByBytes>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.len())
            .field("bytes", &self.entries.weight())
            .finish()
    }
}

/// A token's usual weight (2,600-character access tokens, Bitbucket's 2026 length), to size
/// the cache's tables.
const TYPICAL_WEIGHT: u64 = 3 * 1024;

impl TokenCache {
    /// A cache holding at most `budget` bytes of tokens.
    pub fn new(budget: u64) -> TokenCache {
        let budget = budget.max(TYPICAL_WEIGHT);
        let items = usize::try_from(budget / TYPICAL_WEIGHT).unwrap_or(usize::MAX);
        TokenCache {
            entries: quick_cache::sync::Cache::with_weighter(items, budget, ByBytes),
        }
    }

    pub fn fresh(
        &self,
        id: &ConnectionId,
        now: Timestamp,
        margin: i64,
    ) -> Option<Arc<CachedToken>> {
        let entry = self.entries.get(id)?;
        entry.is_fresh(now, margin).then_some(entry)
    }

    /// The cached token whatever its age, without counting it as used.
    pub fn peek(&self, id: &ConnectionId) -> Option<Arc<CachedToken>> {
        self.entries.peek(id)
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

    /// Bytes of tokens held.
    pub fn bytes(&self) -> u64 {
        self.entries.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(n: usize) -> Arc<CachedToken> {
        Arc::new(CachedToken {
            connection_id: ConnectionId::parse(&format!("con_{n:026}")).unwrap(),
            profile_id: ProfileId::parse("prf_00000000000000000000000000").unwrap(),
            credential: CredentialKind::Oauth2,
            access_token: SecretString::from("t".repeat(2600)),
            login: None,
            expires_at: None,
            issued_at: None,
            scopes: vec!["repository".into()],
            account_id: None,
            account_username: None,
            account_display_name: None,
            status: ConnectionStatus::Active,
            version: 1,
        })
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let cache = TokenCache::new(1024 * 1024);
        for n in 0..2000 {
            cache.put(token(n));
        }
        assert!(cache.bytes() <= 1024 * 1024, "{} bytes held", cache.bytes());
        assert!(
            (250..=400).contains(&cache.len()),
            "{} tokens of ~3 KiB in 1 MiB",
            cache.len()
        );
        let kept = token(1999);
        assert!(
            cache.peek(&kept.connection_id).is_some(),
            "the newest stays"
        );
    }

    #[test]
    fn margin_shrinks_for_short_lived_tokens() {
        let at = Timestamp::from_unix;
        assert_eq!(effective_margin(300, Some(at(0)), at(7200)), 300);
        assert_eq!(effective_margin(300, Some(at(0)), at(60)), 15);
        assert_eq!(effective_margin(300, None, at(60)), 300);
    }
}
