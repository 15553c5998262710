//! One typed configuration, loaded defaults → `grantry.toml` → `GRANTRY_*` environment variables
//! (nested with `__`, e.g. `GRANTRY_REFRESH__MARGIN_SECS`) → command-line flags. Unknown keys are
//! refused. Secrets may also come from files: `GRANTRY_MASTER_KEY_FILE`, `GRANTRY_DATABASE_URL_FILE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `grantry=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub body_limit_kib: usize,
    pub request_timeout_secs: u64,
    /// Mark cookies `Secure` even when `public_url` is http (it is automatic for https).
    pub secure_cookies: bool,
    /// A client must send a request's headers within this; idle keep-alive connections close
    /// after it too (keep it above a load balancer's idle timeout).
    pub header_timeout_secs: u64,
    /// Open connections at most (also kept below the open-file limit).
    pub max_connections: usize,
    /// Take clients' addresses from `X-Forwarded-For`: only behind a reverse proxy that sets it.
    pub trust_forwarded_for: bool,
    /// Largest request body `/v1/proxy` forwards (streamed), in MiB.
    pub proxy_body_limit_mib: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let serve = grantry_http::server::ServeOptions::default();
        HttpConfig {
            body_limit_kib: 64,
            request_timeout_secs: 30,
            secure_cookies: false,
            header_timeout_secs: serve.header_timeout.as_secs(),
            max_connections: serve.max_connections,
            trust_forwarded_for: false,
            proxy_body_limit_mib: 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    pub connect_timeout_secs: u64,
    /// Token calls and identity lookups, whole.
    pub timeout_secs: u64,
    /// Proxied calls: the longest wait for the next bytes of an answer.
    pub idle_timeout_secs: u64,
    /// PEM bundle of extra trusted roots (a Data Center instance behind a private CA).
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            connect_timeout_secs: 5,
            timeout_secs: 20,
            idle_timeout_secs: 30,
            extra_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudConfig {
    pub web_url: Url,
    pub api_url: Url,
}

impl Default for CloudConfig {
    fn default() -> Self {
        let hosts = grantry_core::catalog::CloudHosts::default();
        CloudConfig {
            web_url: hosts.web,
            api_url: hosts.api,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where browsers reach Grantry; the callback URL is `{public_url}/oauth/callback`.
    pub public_url: Url,
    pub data_dir: PathBuf,
    /// `sqlite:///path/grantry.db` (default: `grantry.db` in the data directory).
    pub database_url: Option<SecretString>,
    pub database_url_file: Option<PathBuf>,
    /// Base64 master keys, comma-separated, primary first. Prefer `master_key_file`.
    pub master_key: Option<SecretString>,
    /// Default: `master.key` in the data directory, created on first start.
    pub master_key_file: Option<PathBuf>,
    /// How long a connect session's link works.
    #[serde(rename = "session_ttl_secs", with = "grantry_core::settings::seconds")]
    pub session_ttl: Duration,
    /// Memory the token cache may use, in MiB; the least used tokens go beyond it (a read of
    /// one costs a database read and a decryption).
    pub token_cache_mib: u64,
    /// Connections each node keeps to PostgreSQL.
    pub database_max_connections: u32,
    pub log: LogConfig,
    pub refresh: grantry_core::RefreshSettings,
    pub webhooks: grantry_core::settings::WebhookSettings,
    pub http: HttpConfig,
    pub outbound: OutboundConfig,
    pub bitbucket_cloud: CloudConfig,
    pub console: grantry_core::settings::ConsoleSettings,
    /// Test-only crash points, comma-separated.
    pub failpoints: String,
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("grantry");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/grantry"),
        None => PathBuf::from("grantry-data"),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://127.0.0.1:8080").expect("valid URL"),
            data_dir: default_data_dir(),
            database_url: None,
            database_url_file: None,
            master_key: None,
            master_key_file: None,
            session_ttl: Duration::from_secs(600),
            database_max_connections: 10,
            token_cache_mib: grantry_core::settings::DEFAULT_TOKEN_CACHE_BYTES / (1024 * 1024),
            log: LogConfig::default(),
            refresh: grantry_core::RefreshSettings::default(),
            webhooks: grantry_core::settings::WebhookSettings::default(),
            http: HttpConfig::default(),
            outbound: OutboundConfig::default(),
            bitbucket_cloud: CloudConfig::default(),
            console: grantry_core::settings::ConsoleSettings::default(),
            failpoints: String::new(),
        }
    }
}

/// Where the store lives.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    /// `postgres://…`; kept secret (it may carry a password).
    Postgres(SecretString),
}

impl Database {
    /// `sqlite://path/to/file.db` (or `sqlite:path`) or `postgres://…` (`postgresql://…`).
    pub fn parse(url: &str) -> anyhow::Result<Database> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("`{url}` names no file; write sqlite://path/to/grantry.db");
            }
            Ok(Database::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(SecretString::from(url.to_owned())))
        } else {
            bail!(
                "must start with sqlite:// or postgres:// (got `{}`)",
                redact_url(url)
            )
        }
    }

    /// For messages: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres(url) => redact_url(url.expose_secret()),
        }
    }
}

impl Config {
    /// Loads `file` (if given, else `grantry.toml` when present) and the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::new();
        match file {
            Some(path) if !path.exists() => bail!("config file {} does not exist", path.display()),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("grantry.toml")),
        }
        // GRANTRY_CONFIG_FILE names the file itself and is read by the command line, not here;
        // GRANTRY_SERVER and GRANTRY_API_KEY are a client's (`grantry git-credential`), so a
        // shell that exports them can still run every other command.
        figment = figment.merge(Env::prefixed("GRANTRY_").split("__").ignore(&[
            "config_file",
            "server",
            "api_key",
        ]));
        let config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !matches!(self.public_url.scheme(), "http" | "https") {
            bail!("public_url must be http(s), got {}", self.public_url);
        }
        if self.refresh.lease.as_secs() <= self.outbound.timeout_secs {
            bail!(
                "refresh.lease_secs ({}) must exceed outbound.timeout_secs ({}): a lease must outlast a provider call",
                self.refresh.lease.as_secs(),
                self.outbound.timeout_secs
            );
        }
        if self.console.password_slots == 0 {
            bail!("console.password_checks must be at least 1");
        }
        if self.webhooks.concurrency == 0 {
            bail!("webhooks.concurrency must be at least 1");
        }
        if self.webhooks.timeout.is_zero() {
            bail!("webhooks.timeout_secs must be at least 1");
        }
        if self.webhooks.lease <= self.webhooks.timeout {
            bail!(
                "webhooks.lease_secs ({}) must exceed webhooks.timeout_secs ({}): a claim must outlast an attempt",
                self.webhooks.lease.as_secs(),
                self.webhooks.timeout.as_secs()
            );
        }
        if self.refresh.concurrency == 0 {
            bail!("refresh.concurrency must be at least 1");
        }
        Ok(())
    }

    /// A Grantry in front of the simulator (the demo, tests): data in `data_dir`, a fresh master
    /// key held in memory, Bitbucket Cloud's hosts pointed at `simulator`.
    pub fn against_simulator(
        listen: SocketAddr,
        data_dir: PathBuf,
        simulator: &Url,
    ) -> anyhow::Result<Config> {
        let key = grantry_crypto::MasterKey::generate()?;
        Ok(Config {
            listen,
            public_url: Url::parse(&format!("http://{listen}"))?,
            data_dir,
            master_key: Some(SecretString::from(key.to_base64().as_str().to_owned())),
            bitbucket_cloud: CloudConfig {
                web_url: simulator.clone(),
                api_url: simulator.clone(),
            },
            ..Config::default()
        })
    }

    /// The public URL without a trailing slash, for building links.
    pub fn base_url(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    pub fn database(&self) -> anyhow::Result<Database> {
        let url = match (&self.database_url, &self.database_url_file) {
            (Some(url), _) => Some(url.expose_secret().to_owned()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("database_url_file {}", file.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        match url {
            None => Ok(Database::Sqlite(self.data_dir.join("grantry.db"))),
            Some(url) => Database::parse(&url).context("database_url"),
        }
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    pub fn http_settings(&self) -> grantry_http::HttpSettings {
        grantry_http::HttpSettings {
            body_limit: self.http.body_limit_kib * 1024,
            request_timeout: Duration::from_secs(self.http.request_timeout_secs),
            secure_cookies: self.http.secure_cookies || self.public_url.scheme() == "https",
            trust_forwarded_for: self.http.trust_forwarded_for,
            proxy_body_limit: self.http.proxy_body_limit_mib.saturating_mul(1024 * 1024),
        }
    }

    /// How the server treats connections; the cap is kept below the open-file limit (which
    /// this raises to the hard limit).
    pub fn serve_options(&self) -> grantry_http::server::ServeOptions {
        grantry_http::server::ServeOptions {
            header_timeout: Duration::from_secs(self.http.header_timeout_secs.max(1)),
            max_connections: grantry_http::server::connection_cap(self.http.max_connections),
            ..grantry_http::server::ServeOptions::default()
        }
    }
}

/// Query parameters of a database URL that carry secrets (libpq's names).
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// A URL with any password, in its user part or in its query, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "(unparsable URL)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let secret = |name: &str| SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str());
    if parsed.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_print_redacted() {
        assert_eq!(
            redact_url("postgres://grantry:hunter2@db:5432/g"),
            "postgres://grantry:***@db:5432/g"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        let query =
            redact_url("postgres://g@db/g?sslmode=verify-full&password=hunter2&SSLPassword=pw2");
        assert!(
            !query.contains("hunter2") && !query.contains("pw2"),
            "{query}"
        );
        assert!(
            query.contains("sslmode=verify-full") && query.contains("password=***"),
            "{query}"
        );
    }

    #[test]
    fn database_urls_choose_the_backend() {
        assert!(matches!(
            Database::parse("sqlite:///var/lib/grantry/grantry.db"),
            Ok(Database::Sqlite(path)) if path == Path::new("/var/lib/grantry/grantry.db")
        ));
        assert!(matches!(
            Database::parse("sqlite:data/g.db"),
            Ok(Database::Sqlite(_))
        ));
        for url in [
            "postgres://g@db/g",
            "postgresql://g:pw@db:5432/g?sslmode=verify-full",
        ] {
            assert!(
                matches!(Database::parse(url), Ok(Database::Postgres(_))),
                "{url}"
            );
        }
        let refused = Database::parse("mysql://root:pw@db/g")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("must start with sqlite:// or postgres://"),
            "{refused}"
        );
        assert!(
            !refused.contains("pw@"),
            "the password is not repeated: {refused}"
        );
        let empty = Database::parse("sqlite://").unwrap_err().to_string();
        assert!(empty.contains("names no file"), "{empty}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grantry.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlisten_port = 1\n").unwrap();
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("listen_port"), "{error}");
    }

    #[test]
    fn a_lease_must_outlast_a_provider_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grantry.toml");
        std::fs::write(&path, "[refresh]\nlease_secs = 10\n").unwrap();
        let error = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("lease_secs"), "{error}");
    }
}
