//! Building the services from the configuration: master keys, the store, the provider client.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use grantry_core::clock::{Clock, SystemClock};
use grantry_core::store::{Store, StoreError};
use grantry_core::{Grantry, Settings};
use grantry_crypto::{KeySource, KeyStore, Opened};
use grantry_provider::{HttpProvider, HttpWebhooks, Outbound};
use grantry_store_postgres::PgStore;
use grantry_store_sqlite::SqliteStore;
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;

use crate::config::{Config, Database, redact_url};

/// The store in use, with what only its backend can do.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Backend {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(store) => store.clone(),
            Backend::Postgres(store) => store.clone(),
        }
    }

    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        match self {
            Backend::Sqlite(store) => store.engine().schema_version().await,
            Backend::Postgres(store) => store.engine().schema_version().await,
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(store) => store.engine().migrate().await,
            Backend::Postgres(store) => store.engine().migrate().await,
        }
    }

    pub fn latest_schema(&self) -> i64 {
        match self {
            Backend::Sqlite(_) => grantry_store_sqlite::SCHEMA_VERSION,
            Backend::Postgres(_) => grantry_store_postgres::SCHEMA_VERSION,
        }
    }

    pub async fn close(&self) {
        match self {
            Backend::Sqlite(store) => store.engine().close().await,
            Backend::Postgres(store) => store.engine().close().await,
        }
    }

    /// Tells every node the master keys changed (PostgreSQL; a single SQLite node watches its file).
    pub async fn announce_key_rotation(&self) -> anyhow::Result<()> {
        if let Backend::Postgres(store) = self {
            grantry_store_postgres::listen::announce_key_rotation(store.engine().pool()).await?;
        }
        Ok(())
    }
}

/// Everything a command needs.
pub struct Runtime {
    pub grantry: Arc<Grantry>,
    pub backend: Backend,
    pub keys: Arc<KeyStore>,
    pub database: Database,
}

/// How a command wants the schema handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply missing migrations.
    Migrate,
    /// Create the schema of a new database, but refuse to upgrade an existing one.
    Expect,
}

/// Opens the master keys. A missing key file is created only for a database that holds no
/// sealed values yet (`may_create`): otherwise a new key would open nothing.
pub fn open_keys(config: &Config, may_create: bool) -> anyhow::Result<KeyStore> {
    let source = match &config.master_key {
        Some(keys) => KeySource::Env(keys.expose_secret().to_owned().into()),
        None => KeySource::File(config.master_key_file()),
    };
    let (keys, opened) = KeyStore::load_with(source.clone(), may_create)?;
    if opened == Opened::CreatedKeyFile
        && let KeySource::File(path) = &source
    {
        eprintln!(
            "\n*** Created a new master key at {} (mode 0600).\n*** Back it up and keep it apart from \
             the database's backups: without it, nothing sealed in the database can be opened.\n",
            path.display()
        );
        tracing::warn!(path = %path.display(), "created a new master key file");
    }
    Ok(keys)
}

/// Connects to the database (without touching its schema). A SQLite file's directory must
/// exist (see `data_dir::prepare`).
pub async fn connect(database: &Database, max_connections: u32) -> anyhow::Result<Backend> {
    match database {
        Database::Sqlite(path) => {
            let store = grantry_store_sqlite::open(path)
                .await
                .with_context(|| format!("cannot open the database {}", path.display()))?;
            Ok(Backend::Sqlite(Arc::new(store)))
        }
        Database::Postgres(url) => {
            let shown = redact_url(url.expose_secret());
            // sqlx does not take it, and would log its value as an unknown parameter.
            if url
                .expose_secret()
                .to_ascii_lowercase()
                .contains("sslpassword=")
            {
                bail!(
                    "database_url {shown}: sslpassword (a password for an encrypted client key) \
                     is not supported; give an unencrypted key file in sslkey"
                );
            }
            let options = PgConnectOptions::from_str(url.expose_secret())
                .with_context(|| format!("database_url {shown} is not a PostgreSQL URL"))?;
            let store = grantry_store_postgres::connect(options, max_connections)
                .await
                .with_context(|| format!("cannot connect to {shown}"))?;
            Ok(Backend::Postgres(Arc::new(store)))
        }
    }
}

pub async fn open_store(
    database: &Database,
    max_connections: u32,
    schema: Schema,
) -> anyhow::Result<Backend> {
    let backend = connect(database, max_connections).await?;
    let found = backend.schema_version().await?;
    if found > backend.latest_schema() {
        bail!(
            "the database {} has schema version {found}, newer than this Grantry knows ({}): a newer \
             Grantry has used it. Run that version, or restore a backup taken before the upgrade.",
            database.describe(),
            backend.latest_schema()
        );
    }
    match schema {
        Schema::Migrate => backend.migrate().await?,
        // A brand-new database: there is nothing to upgrade, so create the schema.
        Schema::Expect if found == 0 => backend.migrate().await?,
        Schema::Expect if found != backend.latest_schema() => bail!(
            "the database schema is version {found}, this Grantry expects {}; run `grantry migrate`",
            backend.latest_schema()
        ),
        Schema::Expect => {}
    }
    Ok(backend)
}

/// Outbound HTTP settings, for calls to Bitbucket and webhook deliveries alike.
fn outbound(config: &Config) -> anyhow::Result<Outbound> {
    let extra_root_pem = match &config.outbound.extra_ca_file {
        Some(file) => {
            Some(std::fs::read(file).with_context(|| format!("extra_ca_file {}", file.display()))?)
        }
        None => None,
    };
    let outbound = Outbound {
        connect_timeout: Duration::from_secs(config.outbound.connect_timeout_secs),
        timeout: Duration::from_secs(config.outbound.timeout_secs),
        idle_timeout: Duration::from_secs(config.outbound.idle_timeout_secs.max(1)),
        extra_root_pem,
    };
    Ok(outbound)
}

fn provider(config: &Config) -> anyhow::Result<HttpProvider> {
    HttpProvider::new(&outbound(config)?).map_err(anyhow::Error::msg)
}

/// What posts webhook messages.
pub fn webhook_sender(config: &Config) -> anyhow::Result<HttpWebhooks> {
    HttpWebhooks::new(&outbound(config)?).map_err(anyhow::Error::msg)
}

pub fn settings(config: &Config) -> Settings {
    let mut settings = Settings::new(config.public_url.clone());
    settings.cloud = grantry_core::catalog::CloudHosts {
        web: config.bitbucket_cloud.web_url.clone(),
        api: config.bitbucket_cloud.api_url.clone(),
    };
    settings.refresh = config.refresh.clone();
    settings.session_ttl = config.session_ttl;
    settings.console = config.console.clone();
    settings.webhooks = config.webhooks.clone();
    settings.token_cache_bytes = config.token_cache_mib.saturating_mul(1024 * 1024);
    settings.failpoints = config
        .failpoints
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    settings
}

pub async fn open(config: &Config, schema: Schema) -> anyhow::Result<Runtime> {
    open_with_clock(config, schema, Arc::new(SystemClock)).await
}

/// As [`open`], with a clock of the caller's (tests move it forward instead of sleeping).
pub async fn open_with_clock(
    config: &Config,
    schema: Schema,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Runtime> {
    crate::data_dir::prepare(config)?;
    let database = config.database()?;
    let backend = open_store(&database, config.database_max_connections, schema).await?;
    let needed = backend.store().sealed_key_ids().await?;
    let keys = Arc::new(open_keys(config, needed.is_empty())?);
    refuse_missing_keys(&keys, &needed)?;
    let grantry = Grantry::new(
        backend.store(),
        Arc::new(provider(config)?),
        clock,
        keys.clone(),
        settings(config),
    );
    Ok(Runtime {
        grantry: Arc::new(grantry),
        backend,
        keys,
        database,
    })
}

/// Refuses to start when the database holds values sealed under master keys this process does
/// not have: every token read would fail, and new values would be sealed under a key that must
/// be thrown away.
fn refuse_missing_keys(keys: &KeyStore, needed: &[[u8; 4]]) -> anyhow::Result<()> {
    let keyring = keys.keyring();
    let missing: Vec<String> = needed
        .iter()
        .filter(|id| !keyring.keys().iter().any(|k| k.id().as_bytes() == **id))
        .map(hex_id)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let held: Vec<String> = keyring.keys().iter().map(|k| k.id().to_string()).collect();
    bail!(
        "the database holds values sealed under master key(s) {} that this Grantry does not \
         have (it has {}). Give it the right keys: restore the key file from its backup, or set \
         GRANTRY_MASTER_KEY to the keys the other nodes use (`grantry keys status` there lists \
         them). Starting anyway would fail every token read and seal new values under the wrong key.",
        missing.join(", "),
        held.join(", ")
    )
}

fn hex_id(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the lock that keeps a second `grantry serve` (or a `migrate-store` copying it) off a
/// SQLite database, held until the file is dropped; `None` when someone else holds it.
pub fn lock_sqlite(database: &Path) -> anyhow::Result<Option<File>> {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(file.try_lock().is_ok().then_some(file))
}
