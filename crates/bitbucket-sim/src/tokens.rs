//! Authorization codes, grants, access tokens and refresh tokens, for Cloud and Data Center.
//!
//! Every map is sharded (`DashMap`), so concurrent token requests do not queue behind one lock.
//! A guard on one map is never held while another entry of the same map is touched.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bitbucket_facts::ScopeSet;
use dashmap::DashMap;
use serde::Serialize;

use crate::util;

/// Which product issued a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Cloud,
    Dc,
}

/// What a user (or a private consumer's owner) agreed to: one client, one account, some scopes.
#[derive(Debug)]
pub struct Grant {
    pub product: Product,
    pub client_id: String,
    pub user: String,
    pub scopes: ScopeSet,
    /// Data Center checks it again on the refresh grant.
    pub redirect_uri: Option<String>,
    revoked: AtomicBool,
}

impl Grant {
    pub fn new(
        product: Product,
        client_id: &str,
        user: &str,
        scopes: ScopeSet,
        redirect_uri: Option<String>,
    ) -> Grant {
        Grant {
            product,
            client_id: client_id.to_owned(),
            user: user.to_owned(),
            scopes,
            redirect_uri,
            revoked: AtomicBool::new(false),
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }
}

/// PKCE as sent on the authorize request (Data Center).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub challenge: String,
    /// `S256` or `plain`.
    pub method: String,
}

#[derive(Debug)]
pub struct Code {
    pub grant: Arc<Grant>,
    /// The `redirect_uri` of the authorize request, if it had one.
    pub redirect_uri: Option<String>,
    pub expires_at: i64,
    pub pkce: Option<Pkce>,
}

#[derive(Debug)]
struct Access {
    grant: Arc<Grant>,
    expires_at: i64,
}

/// How a product treats refresh tokens.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Each refresh answers a new refresh token; the used one works for `grace` seconds more.
    pub rotating: bool,
    pub grace: i64,
    /// An unused token dies this long after it was issued (`None`: never).
    pub idle_expiry: Option<i64>,
}

#[derive(Debug)]
struct Refresh {
    grant: Arc<Grant>,
    policy: RefreshPolicy,
    issued_at: i64,
    first_used: Option<i64>,
}

/// The outcome of looking up an access token.
#[derive(Debug)]
pub enum AccessCheck {
    Valid(Arc<Grant>),
    Expired,
    Invalid,
}

/// One presentation of a refresh token after its first.
#[derive(Debug, Clone, Serialize)]
pub struct Use {
    pub at: i64,
    pub accepted: bool,
}

/// A rotating refresh token presented more than once.
#[derive(Debug, Clone, Serialize)]
pub struct Reuse {
    /// `sha256:` and 16 hex digits of the token; the token itself is never shown.
    pub token: String,
    pub product: Product,
    pub client_id: String,
    pub user: String,
    pub first_used: i64,
    pub later_uses: Vec<Use>,
}

#[derive(Debug)]
struct Retired {
    grant: Arc<Grant>,
    first_used: i64,
}

#[derive(Debug, Default)]
pub struct TokenStore {
    codes: DashMap<String, Code>,
    access: DashMap<String, Access>,
    refresh: DashMap<String, Refresh>,
    reuse: DashMap<String, Reuse>,
    /// Rotating refresh tokens purged after their grace period, by fingerprint, so that a late
    /// presentation is still recorded as a reuse.
    retired: DashMap<String, Retired>,
    grants: DashMap<u64, Arc<Grant>>,
    next_grant: AtomicU64,
}

impl TokenStore {
    pub fn remember(&self, grant: Grant) -> Arc<Grant> {
        let grant = Arc::new(grant);
        let id = self.next_grant.fetch_add(1, Ordering::Relaxed);
        self.grants.insert(id, grant.clone());
        grant
    }

    pub fn issue_code(&self, code: Code) -> String {
        let value = util::alnum(18);
        self.codes.insert(value.clone(), code);
        value
    }

    /// Takes a code out: a code works once, even when the attempt fails.
    pub fn take_code(&self, code: &str, client_id: &str, now: i64) -> Option<Code> {
        let (_, code) = self.codes.remove(code)?;
        let usable =
            code.expires_at >= now && code.grant.client_id == client_id && !code.grant.is_revoked();
        usable.then_some(code)
    }

    pub fn issue_access(&self, grant: &Arc<Grant>, ttl: u64, length: usize, now: i64) -> String {
        let token = util::token(length);
        let access = Access {
            grant: grant.clone(),
            expires_at: now + ttl as i64,
        };
        self.access.insert(token.clone(), access);
        token
    }

    pub fn issue_refresh(&self, grant: &Arc<Grant>, policy: RefreshPolicy, now: i64) -> String {
        let token = util::token(match grant.product {
            Product::Cloud => 64,
            Product::Dc => 44,
        });
        let refresh = Refresh {
            grant: grant.clone(),
            policy,
            issued_at: now,
            first_used: None,
        };
        self.refresh.insert(token.clone(), refresh);
        token
    }

    pub fn check_access(&self, token: &str, now: i64) -> AccessCheck {
        match self.access.get(token) {
            None => AccessCheck::Invalid,
            Some(access) if access.grant.is_revoked() => AccessCheck::Invalid,
            Some(access) if access.expires_at < now => AccessCheck::Expired,
            Some(access) => AccessCheck::Valid(access.grant.clone()),
        }
    }

    /// Accepts a refresh token for `client_id` if it still works. A rotating token presented
    /// again after its first use is recorded, accepted or not, so tests can prove single use.
    pub fn use_refresh(&self, token: &str, client_id: &str, now: i64) -> Option<Arc<Grant>> {
        let (grant, rotating, previous_use, accepted) = {
            let Some(mut entry) = self.refresh.get_mut(token) else {
                self.note_retired_use(token, now);
                return None;
            };
            if entry.grant.client_id != client_id || entry.grant.is_revoked() {
                return None;
            }
            let policy = entry.policy;
            let previous_use = entry.first_used;
            let accepted = match previous_use {
                None => policy
                    .idle_expiry
                    .is_none_or(|idle| now - entry.issued_at <= idle),
                Some(first) => !policy.rotating || now - first <= policy.grace,
            };
            if previous_use.is_none() && accepted {
                entry.first_used = Some(now);
            }
            (entry.grant.clone(), policy.rotating, previous_use, accepted)
        };
        if let (true, Some(first_used)) = (rotating, previous_use) {
            self.record_reuse(token, &grant, first_used, Use { at: now, accepted });
        }
        accepted.then_some(grant)
    }

    fn note_retired_use(&self, token: &str, now: i64) {
        let fingerprint = util::fingerprint(token);
        if let Some(retired) = self.retired.get(&fingerprint) {
            let later = Use {
                at: now,
                accepted: false,
            };
            self.record_reuse(token, &retired.grant, retired.first_used, later);
        }
    }

    fn record_reuse(&self, token: &str, grant: &Grant, first_used: i64, later: Use) {
        let fingerprint = util::fingerprint(token);
        self.reuse
            .entry(fingerprint.clone())
            .or_insert_with(|| Reuse {
                token: fingerprint,
                product: grant.product,
                client_id: grant.client_id.clone(),
                user: grant.user.clone(),
                first_used,
                later_uses: Vec::new(),
            })
            .later_uses
            .push(later);
    }

    /// Every rotating refresh token presented more than once, oldest first.
    pub fn reuses(&self) -> Vec<Reuse> {
        let mut all: Vec<Reuse> = self.reuse.iter().map(|r| r.clone()).collect();
        all.sort_by_key(|r| (r.first_used, r.token.clone()));
        all
    }

    pub fn forget_reuses(&self) {
        self.reuse.clear();
    }

    /// Revokes every grant of `user` to `client_id` ("App authorizations" → Revoke); their
    /// access and refresh tokens stop working at once. Returns how many grants were revoked.
    pub fn revoke(&self, product: Product, user: &str, client_id: &str) -> usize {
        let mut revoked = 0;
        for grant in self.grants.iter() {
            let matches =
                grant.product == product && grant.user == user && grant.client_id == client_id;
            if matches && !grant.revoked.swap(true, Ordering::Relaxed) {
                revoked += 1;
            }
        }
        self.grants.retain(|_, grant| !grant.is_revoked());
        revoked
    }

    /// Drops what can no longer be used, so long runs keep a flat memory profile.
    pub fn purge(&self, now: i64) {
        self.codes.retain(|_, code| code.expires_at >= now);
        self.access
            .retain(|_, access| access.expires_at + 3600 >= now && !access.grant.is_revoked());
        self.refresh.retain(|token, refresh| {
            let dead_after_use = refresh.policy.rotating
                && refresh
                    .first_used
                    .is_some_and(|first| now - first > refresh.policy.grace);
            let idle_expired = refresh.first_used.is_none()
                && refresh
                    .policy
                    .idle_expiry
                    .is_some_and(|idle| now - refresh.issued_at > idle);
            if let (true, Some(first_used)) = (dead_after_use, refresh.first_used) {
                let retired = Retired {
                    grant: refresh.grant.clone(),
                    first_used,
                };
                self.retired.insert(util::fingerprint(token), retired);
            }
            !(dead_after_use || idle_expired || refresh.grant.is_revoked())
        });
        const RETIRED_KEPT: i64 = 7 * 24 * 3600;
        self.retired
            .retain(|_, retired| now - retired.first_used <= RETIRED_KEPT);
        self.grants.retain(|_, grant| Arc::strong_count(grant) > 1);
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.codes.len(), self.access.len(), self.refresh.len())
    }
}
