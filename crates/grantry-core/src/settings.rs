//! What the services need to know about their deployment, and how refreshing behaves. The
//! durations are `Duration`s, read from the configuration file as it names them (`margin_secs`,
//! `interval_ms`, `keepalive_days`), so there is one definition of each setting and its default.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::catalog::CloudHosts;
use crate::ids::ConnectionId;

/// How refreshing behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshSettings {
    /// A token read refreshes first when the token expires within this.
    #[serde(rename = "margin_secs", with = "seconds")]
    pub margin: Duration,
    /// The refresher renews this long before expiry (plus up to half as much jitter).
    #[serde(rename = "lead_secs", with = "seconds")]
    pub lead: Duration,
    /// How often the refresher looks for due connections.
    #[serde(rename = "interval_ms", with = "milliseconds")]
    pub interval: Duration,
    /// Refreshes in flight at once on this node.
    pub concurrency: usize,
    /// Refreshes per second per profile, at most (Bitbucket counts rate limits per consumer).
    pub per_profile_per_second: u32,
    /// How long a refresh lease lasts; must outlast a provider call's timeout.
    #[serde(rename = "lease_secs", with = "seconds")]
    pub lease: Duration,
    /// First retry delay after a transient failure; doubles up to `backoff_max`.
    #[serde(rename = "backoff_base_secs", with = "seconds")]
    pub backoff_base: Duration,
    #[serde(rename = "backoff_max_secs", with = "seconds")]
    pub backoff_max: Duration,
    /// A rotating refresh token unused this long is renewed (Bitbucket kills them at 90 days).
    #[serde(rename = "keepalive_days", with = "days")]
    pub keepalive: Duration,
    /// How often an API token or access token, which Grantry cannot renew, is checked with
    /// Bitbucket, so that a revoked one is noticed even when only token reads use it.
    #[serde(rename = "verify_static_secs", with = "seconds")]
    pub verify_static: Duration,
    /// Whether this process runs the background refresher.
    pub enabled: bool,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            margin: Duration::from_secs(300),
            lead: Duration::from_secs(600),
            interval: Duration::from_millis(2000),
            concurrency: 16,
            per_profile_per_second: 50,
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(600),
            keepalive: Duration::from_secs(30 * 86_400),
            verify_static: Duration::from_secs(6 * 3600),
            enabled: true,
        }
    }
}

/// How webhooks are delivered (the configuration's `[webhooks]` section).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Whether this process delivers webhooks (every node may; each attempt is made by one).
    pub enabled: bool,
    /// How often the outbox is looked at when it had nothing due.
    #[serde(rename = "interval_ms", with = "milliseconds")]
    pub interval: Duration,
    /// Deliveries in flight at once on this node.
    pub concurrency: usize,
    /// Deliveries started per second on this node, at most, so that draining a backlog never
    /// takes the cores token reads need (0: no limit).
    pub per_second: u32,
    /// How long an endpoint has to answer.
    #[serde(rename = "timeout_secs", with = "seconds")]
    pub timeout: Duration,
    /// How long an attempt's claim lasts; must outlast `timeout`. A node that dies mid-attempt
    /// leaves the message to another node after this.
    #[serde(rename = "lease_secs", with = "seconds")]
    pub lease: Duration,
    /// First retry delay; doubles (with jitter) up to `backoff_max`.
    #[serde(rename = "backoff_base_secs", with = "seconds")]
    pub backoff_base: Duration,
    #[serde(rename = "backoff_max_secs", with = "seconds")]
    pub backoff_max: Duration,
    /// Retryable failures (network, timeout, 5xx, 408, 429) are retried this long.
    #[serde(rename = "retry_for_hours", with = "hours")]
    pub retry_for: Duration,
    /// Other 4xx answers are attempts too, up to this many in all.
    pub client_error_attempts: i64,
    /// An endpoint failing this long without a success is disabled.
    #[serde(rename = "disable_after_days", with = "days")]
    pub disable_after: Duration,
    /// `connection.credential_expiring` is sent this long before a credential Grantry cannot
    /// renew runs out.
    #[serde(rename = "expiry_warning_days", with = "days")]
    pub expiry_warning: Duration,
    /// Delivered and failed messages are kept this long (for the deliveries listing and
    /// redelivery), then purged.
    #[serde(rename = "keep_finished_days", with = "days")]
    pub keep_finished: Duration,
    /// How often credentials are looked at for that warning (and finished messages purged).
    #[serde(rename = "expiry_scan_secs", with = "seconds")]
    pub expiry_scan: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            enabled: true,
            interval: Duration::from_millis(200),
            concurrency: 128,
            per_second: 2000,
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(40),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
            retry_for: Duration::from_secs(26 * 3600),
            client_error_attempts: 3,
            disable_after: Duration::from_secs(3 * 86_400),
            expiry_warning: Duration::from_secs(7 * 86_400),
            expiry_scan: Duration::from_secs(60),
            keep_finished: Duration::from_secs(7 * 86_400),
        }
    }
}

/// How long console sessions and the setup link live, and how many password checks may run at
/// once (the configuration's `[console]` section).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// A console session ends after this long without a request.
    #[serde(rename = "idle_timeout_secs", with = "seconds")]
    pub idle_timeout: Duration,
    /// …and after this long in any case.
    #[serde(rename = "max_age_secs", with = "seconds")]
    pub max_age: Duration,
    #[serde(skip)]
    pub setup_link_ttl: Duration,
    /// Password checks (argon2id, 19 MiB each) at once; sign-ins beyond get 503 at once.
    /// Default: one per core.
    #[serde(rename = "password_checks")]
    pub password_slots: usize,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_timeout: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 3600),
            setup_link_ttl: Duration::from_secs(24 * 3600),
            password_slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
    pub session_ttl: Duration,
    /// Names this process in leases.
    pub node_id: String,
    /// Test-only crash points, e.g. `after-provider-refresh`.
    pub failpoints: Vec<String>,
    pub console: ConsoleSettings,
    pub webhooks: WebhookSettings,
    /// Memory the token cache may use; the least used tokens go beyond it.
    pub token_cache_bytes: u64,
}

/// The token cache's default budget: about 20,000 Bitbucket Cloud tokens of the 2026 length.
pub const DEFAULT_TOKEN_CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl Settings {
    pub fn new(public_url: Url) -> Settings {
        Settings {
            public_url,
            cloud: CloudHosts::default(),
            refresh: RefreshSettings::default(),
            session_ttl: Duration::from_secs(600),
            node_id: format!("node-{}", grantry_crypto::random_token(6)),
            failpoints: Vec::new(),
            console: ConsoleSettings::default(),
            webhooks: WebhookSettings::default(),
            token_cache_bytes: DEFAULT_TOKEN_CACHE_BYTES,
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
        // Pushed piece by piece rather than formatted: every proxied call makes one.
        let root = self.public_url.as_str().trim_end_matches('/');
        let connection = connection.as_str();
        let mut url = String::with_capacity(root.len() + connection.len() + layout.len() + 11);
        for piece in [root, "/v1/proxy/", connection, "/", layout] {
            url.push_str(piece);
        }
        url
    }
}

/// Serde for a `Duration` written in whole units: `with = "seconds"`, `"milliseconds"`, `"days"`.
macro_rules! whole_units {
    ($name:ident, $from:expr, $to:expr) => {
        pub mod $name {
            use std::time::Duration;

            pub fn deserialize<'de, D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Duration, D::Error> {
                let units = <u64 as serde::Deserialize>::deserialize(deserializer)?;
                Ok($from(units))
            }

            pub fn serialize<S: serde::Serializer>(
                duration: &Duration,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                serializer.serialize_u64($to(duration))
            }
        }
    };
}

whole_units!(seconds, Duration::from_secs, |d: &Duration| d.as_secs());
whole_units!(
    milliseconds,
    Duration::from_millis,
    |d: &Duration| d.as_millis() as u64
);
whole_units!(
    hours,
    |n: u64| Duration::from_secs(n.saturating_mul(3600)),
    |d: &Duration| d.as_secs() / 3600
);
whole_units!(
    days,
    |n: u64| Duration::from_secs(n.saturating_mul(86_400)),
    |d: &Duration| d.as_secs() / 86_400
);
