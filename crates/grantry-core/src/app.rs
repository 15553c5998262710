//! `Grantry`: the services, over a store, a provider client, a clock and the key store. The HTTP
//! layer, the CLI and the refresher all call the same methods (defined per feature, in
//! `profiles/`, `connect/`, `connections/`, `tokens/`, …).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use grantry_crypto::{Binding, KeyStore};
use secrecy::SecretString;
use url::Url;
use zeroize::Zeroizing;

use crate::catalog::CloudHosts;
use crate::clock::Clock;
use crate::error::{CoreError, CoreResult};
use crate::ids::{ApiKeyId, ConnectionId};
use crate::metrics::Metrics;
use crate::provider::ProviderClient;
use crate::store::{Role, Store};
use crate::tokens::cache::TokenCache;
use crate::tokens::flight::Flights;

/// How refreshing behaves. Seconds unless named otherwise.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// A token read refreshes first when the token expires within this.
    pub margin: u64,
    /// The refresher renews this long before expiry (plus up to half as much jitter).
    pub lead: u64,
    /// How often the refresher looks for due connections, in milliseconds.
    pub interval_ms: u64,
    /// Refreshes in flight at once on this node.
    pub concurrency: usize,
    /// Refreshes per second per profile, at most (Bitbucket counts rate limits per consumer).
    pub per_profile_per_second: u32,
    /// How long a refresh lease lasts; must outlast a provider call's timeout.
    pub lease: u64,
    /// First retry delay after a transient failure; doubles up to `backoff_max`.
    pub backoff_base: u64,
    pub backoff_max: u64,
    /// A rotating refresh token unused this long is renewed (Bitbucket kills them at 90 days).
    pub keepalive: u64,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            margin: 300,
            lead: 600,
            interval_ms: 2000,
            concurrency: 16,
            per_profile_per_second: 50,
            lease: 30,
            backoff_base: 5,
            backoff_max: 600,
            keepalive: 30 * 86_400,
        }
    }
}

/// What the services need to know about their deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where browsers reach Grantry; the callback URL is `{public_url}/oauth/callback`.
    pub public_url: Url,
    pub cloud: CloudHosts,
    pub refresh: RefreshSettings,
    /// How long a connect session's link works.
    pub session_ttl: u64,
    /// Names this process in leases.
    pub node_id: String,
    /// Test-only crash points, e.g. `after-provider-refresh`.
    pub failpoints: Vec<String>,
    pub console: crate::admins::ConsoleSettings,
}

impl Settings {
    pub fn new(public_url: Url) -> Settings {
        Settings {
            public_url,
            cloud: CloudHosts::default(),
            refresh: RefreshSettings::default(),
            session_ttl: 600,
            node_id: format!("node-{}", grantry_crypto::random_token(6)),
            failpoints: Vec::new(),
            console: crate::admins::ConsoleSettings::default(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.as_str().trim_end_matches('/'))
    }

    /// The redirect URL to register at the provider.
    pub fn callback_url(&self) -> String {
        self.url("/oauth/callback")
    }

    /// Grantry's own landing page after a connect flow; always an allowed return URL.
    pub fn complete_url(&self) -> String {
        self.url("/connect/complete")
    }

    /// Where a connect flow started from the console ends; always an allowed return URL.
    pub fn console_return_url(&self) -> String {
        self.url("/ui/connected")
    }

    pub fn connect_url(&self, token: &str) -> String {
        self.url(&format!("/connect/{token}"))
    }

    /// Where a connection's REST API is reached through the proxy, in Bitbucket's own layout
    /// (`layout` is `2.0/` or `rest/`), ending in `/`.
    pub fn proxy_url(&self, connection: &ConnectionId, layout: &str) -> String {
        self.url(&format!("/v1/proxy/{connection}/{layout}"))
    }
}

/// Who asked for an action, for authorization and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    ApiKey { id: ApiKeyId, role: Role },
    Admin { username: String },
    Cli,
    System,
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::ApiKey { id, .. } => format!("api-key:{id}"),
            Actor::Admin { username } => format!("admin:{username}"),
            Actor::Cli => "cli".to_owned(),
            Actor::System => "system".to_owned(),
        }
    }

    /// May manage profiles and API keys.
    pub fn is_admin(&self) -> bool {
        !matches!(
            self,
            Actor::ApiKey {
                role: Role::App,
                ..
            }
        )
    }
}

pub struct Grantry {
    pub store: Arc<dyn Store>,
    pub provider: Arc<dyn ProviderClient>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyStore>,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub(crate) cache: TokenCache,
    pub(crate) profiles: crate::profiles::ProfileCache,
    pub(crate) flights: Flights,
    pub(crate) api_keys: crate::api_keys::ApiKeyCache,
    pub(crate) pending: crate::tokens::pending::PendingWrites,
    pub(crate) cache_bypass: std::sync::atomic::AtomicBool,
    pub(crate) sign_in_guard: crate::admins::guard::SignInGuard,
    lease_sequence: AtomicU64,
}

impl std::fmt::Debug for Grantry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grantry")
            .field("store", &self.store)
            .field("node", &self.settings.node_id)
            .finish_non_exhaustive()
    }
}

impl Grantry {
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn ProviderClient>,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyStore>,
        settings: Settings,
    ) -> Grantry {
        let sign_in_guard = crate::admins::guard::SignInGuard::new(settings.console.password_slots);
        Grantry {
            sign_in_guard,
            store,
            provider,
            clock,
            keys,
            settings: Arc::new(settings),
            metrics: Metrics::default(),
            cache: TokenCache::default(),
            profiles: crate::profiles::ProfileCache::default(),
            flights: Flights::default(),
            api_keys: crate::api_keys::ApiKeyCache::default(),
            pending: crate::tokens::pending::PendingWrites::default(),
            cache_bypass: std::sync::atomic::AtomicBool::new(false),
            lease_sequence: AtomicU64::new(0),
        }
    }

    /// A lease owner name unique to one refresh attempt of this process.
    pub(crate) fn lease_owner(&self, purpose: &str) -> String {
        let n = self.lease_sequence.fetch_add(1, Ordering::Relaxed);
        format!("{}/{purpose}-{n}", self.settings.node_id)
    }

    pub(crate) fn seal(
        &self,
        table: &str,
        column: &str,
        row: &str,
        plaintext: &str,
    ) -> CoreResult<Vec<u8>> {
        Ok(self
            .keys
            .seal(plaintext.as_bytes(), Binding::new(table, column, row))?)
    }

    pub(crate) fn open(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: &[u8],
    ) -> CoreResult<SecretString> {
        let plain: Zeroizing<Vec<u8>> = self.keys.open(sealed, Binding::new(table, column, row))?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| CoreError::Crypto(grantry_crypto::CryptoError::Malformed))?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Crashes the process at a named point, when a test asked for it (`GRANTRY_FAILPOINTS`).
    pub(crate) fn failpoint(&self, name: &str) {
        if self.settings.failpoints.iter().any(|f| f == name) {
            tracing::error!(failpoint = name, "failpoint reached: aborting as asked");
            std::process::abort();
        }
    }
}
