//! Credentials people create by hand rather than through OAuth: Atlassian API tokens (a user's,
//! Basic with the account's e-mail) and access tokens (a repository's, project's or workspace's
//! on Cloud; a project's or repository's "HTTP access token" on Data Center; Bearer).
//!
//! Each has an expiry and can be revoked through the control API; access tokens can be rotated
//! (a new secret and expiry; the old secret keeps working only if it had under 30 minutes left,
//! as Bitbucket allows). Cloud access tokens have their own hourly request budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bitbucket_facts::ScopeSet;
use bitbucket_facts::datacenter::Level;
use dashmap::DashMap;
use serde::Serialize;

use crate::tokens::Product;
use crate::util;

/// Longest an API token may live: one year (Atlassian's rule since December 2024).
pub const API_TOKEN_MAX_LIFE: i64 = 365 * 24 * 3600;

/// After a rotation, the old secret stays usable only if it had this little left to live.
pub const ROTATION_OVERLAP: i64 = 30 * 60;

/// Why a presented credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Expired,
    Revoked,
}

/// An Atlassian API token: a user's, with API token scopes.
#[derive(Debug)]
pub struct ApiToken {
    pub id: String,
    pub user: String,
    pub email: String,
    /// In [`bitbucket_facts::api_tokens::SCOPES`]; none implies another.
    pub scopes: ScopeSet,
    pub expires_at: i64,
    revoked: AtomicBool,
}

/// What an access token is tied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// Cloud: one repository.
    Repository { workspace: String, slug: String },
    /// Cloud: every repository of a project (by its key) in a workspace.
    Project { workspace: String, key: String },
    /// Cloud: every repository of a workspace.
    Workspace { workspace: String },
    /// Data Center: every repository of a project.
    DcProject { key: String },
    /// Data Center: one repository.
    DcRepository { project: String, slug: String },
}

impl Resource {
    pub fn product(&self) -> Product {
        match self {
            Resource::DcProject { .. } | Resource::DcRepository { .. } => Product::Dc,
            _ => Product::Cloud,
        }
    }

    /// `repo_access_token` and the like, Bitbucket's `x-credential-type`.
    pub fn credential_type(&self) -> &'static str {
        match self {
            Resource::Repository { .. } | Resource::DcRepository { .. } => "repo_access_token",
            Resource::Project { .. } | Resource::DcProject { .. } => "project_access_token",
            Resource::Workspace { .. } => "workspace_access_token",
        }
    }

    /// Whether a Cloud repository (of a project, perhaps) lies within.
    pub fn holds_cloud(&self, workspace: &str, slug: &str, project: Option<&str>) -> bool {
        match self {
            Resource::Repository {
                workspace: w,
                slug: s,
            } => w == workspace && s == slug,
            Resource::Project { workspace: w, key } => {
                w == workspace && project.is_some_and(|p| p.eq_ignore_ascii_case(key))
            }
            Resource::Workspace { workspace: w } => w == workspace,
            _ => false,
        }
    }

    /// Whether the resource lies in a Cloud workspace.
    pub fn in_workspace(&self, workspace: &str) -> bool {
        match self {
            Resource::Repository { workspace: w, .. }
            | Resource::Project { workspace: w, .. }
            | Resource::Workspace { workspace: w } => w == workspace,
            _ => false,
        }
    }

    /// Whether a Data Center repository lies within.
    pub fn holds_dc(&self, project: &str, slug: &str) -> bool {
        match self {
            Resource::DcProject { key } => key.eq_ignore_ascii_case(project),
            Resource::DcRepository {
                project: p,
                slug: s,
            } => p.eq_ignore_ascii_case(project) && s == slug,
            _ => false,
        }
    }
}

/// How an access token may act.
#[derive(Debug, Clone)]
pub enum Permission {
    /// Cloud: classic scopes (`repository:write`, `pullrequest`, …).
    Scopes(ScopeSet),
    /// Data Center: one level (`REPO_READ`, `REPO_WRITE`, `REPO_ADMIN`, `PROJECT_ADMIN`).
    Level(Level),
}

/// A repository, project or workspace access token.
#[derive(Debug)]
pub struct AccessToken {
    pub id: String,
    pub name: String,
    pub resource: Resource,
    pub permission: Permission,
    pub expires_at: i64,
    revoked: AtomicBool,
    /// Requests in the current hour: (hour started at, count).
    window: Mutex<(i64, u64)>,
}

/// An access token's hourly budget after one more request.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub limit: u64,
    pub used: u64,
}

impl Budget {
    pub fn exceeded(&self) -> bool {
        self.used > self.limit
    }

    /// Bitbucket's `X-RateLimit-NearLimit`: under a fifth of the budget left.
    pub fn near(&self) -> bool {
        self.used * 5 >= self.limit * 4
    }
}

impl AccessToken {
    fn window(&self) -> MutexGuard<'_, (i64, u64)> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request against the token's rolling hour and answers the budget.
    pub fn spend(&self, now: i64, limit: u64) -> Budget {
        let mut window = self.window();
        if now - window.0 >= 3600 {
            *window = (now, 0);
        }
        window.1 += 1;
        Budget {
            limit,
            used: window.1,
        }
    }

    /// The Cloud scopes it holds (none for a Data Center token).
    pub fn scopes(&self) -> Option<&ScopeSet> {
        match &self.permission {
            Permission::Scopes(scopes) => Some(scopes),
            Permission::Level(_) => None,
        }
    }
}

/// What the control API answers for a new or rotated credential; the secret is shown once.
#[derive(Debug, Serialize)]
pub struct Issued {
    pub id: String,
    pub token: String,
    pub expires_at: i64,
}

/// Every API token and access token, by secret, plus their ids.
#[derive(Debug, Default)]
pub struct CredentialStore {
    api_tokens: DashMap<String, Arc<ApiToken>>,
    access_tokens: DashMap<String, Arc<AccessToken>>,
    /// Credential id → its current secret.
    secrets: DashMap<String, String>,
}

fn check<T>(
    found: Option<Arc<T>>,
    expires_at: impl Fn(&T) -> i64,
    revoked: impl Fn(&T) -> bool,
    now: i64,
) -> Result<Arc<T>, Refusal> {
    let found = found.ok_or(Refusal::Unknown)?;
    if revoked(&found) {
        Err(Refusal::Revoked)
    } else if expires_at(&found) < now {
        Err(Refusal::Expired)
    } else {
        Ok(found)
    }
}

impl CredentialStore {
    pub fn issue_api_token(
        &self,
        user: &str,
        email: &str,
        scopes: ScopeSet,
        expires_at: i64,
    ) -> Issued {
        let id = format!("apitoken-{}", util::alnum(10));
        // Atlassian's API tokens start with `ATATT`; the rest is random.
        let secret = format!("ATATT{}", util::alnum(187));
        let token = ApiToken {
            id: id.clone(),
            user: user.to_owned(),
            email: email.to_owned(),
            scopes,
            expires_at,
            revoked: AtomicBool::new(false),
        };
        self.api_tokens.insert(secret.clone(), Arc::new(token));
        self.secrets.insert(id.clone(), secret.clone());
        Issued {
            id,
            token: secret,
            expires_at,
        }
    }

    pub fn issue_access_token(
        &self,
        name: &str,
        resource: Resource,
        permission: Permission,
        expires_at: i64,
    ) -> Issued {
        let id = format!("accesstoken-{}", util::alnum(10));
        let token = AccessToken {
            id: id.clone(),
            name: name.to_owned(),
            resource,
            permission,
            expires_at,
            revoked: AtomicBool::new(false),
            window: Mutex::new((0, 0)),
        };
        self.store_access(&id, Arc::new(token))
    }

    fn store_access(&self, id: &str, token: Arc<AccessToken>) -> Issued {
        let secret = match token.resource.product() {
            Product::Cloud => format!("ATCTT3xFfGN0{}", util::alnum(180)),
            Product::Dc => format!("BBDC-{}", util::alnum(44)),
        };
        let expires_at = token.expires_at;
        self.access_tokens.insert(secret.clone(), token);
        self.secrets.insert(id.to_owned(), secret.clone());
        Issued {
            id: id.to_owned(),
            token: secret,
            expires_at,
        }
    }

    /// An API token presented with an e-mail (REST) or a user name (git).
    pub fn check_api_token(
        &self,
        who: &str,
        secret: &str,
        now: i64,
    ) -> Result<Arc<ApiToken>, Refusal> {
        let found = self.api_tokens.get(secret).map(|t| t.clone());
        let token = check(
            found,
            |t| t.expires_at,
            |t| t.revoked.load(Ordering::Relaxed),
            now,
        )?;
        let matches = who.eq_ignore_ascii_case(&token.email)
            || who == token.user
            || who == "x-bitbucket-api-token-auth";
        if matches {
            Ok(token)
        } else {
            Err(Refusal::Unknown)
        }
    }

    pub fn check_access_token(&self, secret: &str, now: i64) -> Result<Arc<AccessToken>, Refusal> {
        let found = self.access_tokens.get(secret).map(|t| t.clone());
        check(
            found,
            |t| t.expires_at,
            |t| t.revoked.load(Ordering::Relaxed),
            now,
        )
    }

    /// Revokes a credential by id; answers whether it existed.
    pub fn revoke(&self, id: &str) -> bool {
        let Some(secret) = self.secrets.get(id).map(|s| s.clone()) else {
            return false;
        };
        if let Some(token) = self.api_tokens.get(&secret) {
            token.revoked.store(true, Ordering::Relaxed);
        }
        if let Some(token) = self.access_tokens.get(&secret) {
            token.revoked.store(true, Ordering::Relaxed);
        }
        true
    }

    /// Gives an access token a new secret and expiry. The old secret stops working at once
    /// unless it had under [`ROTATION_OVERLAP`] left, in which case it lives out its time.
    pub fn rotate(&self, id: &str, expires_at: i64, now: i64) -> Option<Issued> {
        let old_secret = self.secrets.get(id).map(|s| s.clone())?;
        let old = self.access_tokens.get(&old_secret).map(|t| t.clone())?;
        if old.revoked.load(Ordering::Relaxed) {
            return None;
        }
        let fresh = AccessToken {
            id: old.id.clone(),
            name: old.name.clone(),
            resource: old.resource.clone(),
            permission: old.permission.clone(),
            expires_at,
            revoked: AtomicBool::new(false),
            window: Mutex::new(*old.window()),
        };
        if old.expires_at - now >= ROTATION_OVERLAP {
            old.revoked.store(true, Ordering::Relaxed);
        }
        Some(self.store_access(id, Arc::new(fresh)))
    }

    pub fn counts(&self) -> (usize, usize) {
        (self.api_tokens.len(), self.access_tokens.len())
    }
}
