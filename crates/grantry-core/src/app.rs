//! `Grantry`: the services, over a store, a provider client, a clock and the key store. The HTTP
//! layer, the CLI and the refresher all call the same methods (defined per feature, in
//! `profiles/`, `connect/`, `connections/`, `tokens/`, …).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use grantry_crypto::KeyStore;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::error::{CoreError, CoreResult};
use crate::ids::ApiKeyId;
use crate::metrics::Metrics;
use crate::provider::ProviderClient;
use crate::settings::Settings;
use crate::store::{Role, SealedColumn, Store};
use crate::tokens::cache::TokenCache;
use crate::tokens::flight::Flights;

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
}

pub struct Grantry {
    pub store: Arc<dyn Store>,
    pub provider: Arc<dyn ProviderClient>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyStore>,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub(crate) cache: TokenCache,
    pub(crate) profiles: crate::profiles::cache::ProfileCache,
    pub(crate) flights: Flights,
    pub(crate) api_keys: crate::api_keys::cache::ApiKeyCache,
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
        let cache = TokenCache::new(settings.token_cache_bytes);
        Grantry {
            sign_in_guard,
            store,
            provider,
            clock,
            keys,
            settings: Arc::new(settings),
            metrics: Metrics::default(),
            cache,
            profiles: crate::profiles::cache::ProfileCache::default(),
            flights: Flights::default(),
            api_keys: crate::api_keys::cache::ApiKeyCache::default(),
            pending: crate::tokens::pending::PendingWrites::default(),
            cache_bypass: std::sync::atomic::AtomicBool::new(false),
            lease_sequence: AtomicU64::new(0),
        }
    }

    /// A lease owner name unique to one refresh attempt of this process.
    /// Whether the database answers (`/readyz`).
    pub async fn database_answers(&self) -> CoreResult<()> {
        Ok(self.store.ping().await?)
    }

    pub(crate) fn lease_owner(&self, purpose: &str) -> String {
        let n = self.lease_sequence.fetch_add(1, Ordering::Relaxed);
        format!("{}/{purpose}-{n}", self.settings.node_id)
    }

    /// Seals a value for one cell: the column and row are bound into the ciphertext, so it
    /// opens nowhere else.
    pub(crate) fn seal(
        &self,
        column: SealedColumn,
        row: &str,
        plaintext: &str,
    ) -> CoreResult<Vec<u8>> {
        Ok(self.keys.seal(plaintext.as_bytes(), column.binding(row))?)
    }

    pub(crate) fn open(
        &self,
        column: SealedColumn,
        row: &str,
        sealed: &[u8],
    ) -> CoreResult<SecretString> {
        let plain: Zeroizing<Vec<u8>> = self.keys.open(sealed, column.binding(row))?;
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
