//! `bitbucket-sim`: an offline Bitbucket Cloud and Data Center.
//!
//! It speaks OAuth 2 the way Bitbucket does (authorize pages, token endpoints, byte-for-byte error
//! bodies, rotating refresh tokens), checks every REST call against the scopes of Bitbucket's
//! OpenAPI document, serves git over HTTPS, injects faults on demand and counts what it saw, so
//! that Grantry, its tests and its users' CI never need the network.
//!
//! Start one in-process with [`SimBuilder`], or run the `bitbucket-sim` binary.

pub mod bench;
pub mod clock;
pub mod control;
pub mod control_credentials;
pub mod control_reply;
pub mod credentials;
pub mod faults;
pub mod git;
pub mod git_read;
pub mod oauth;
pub mod rest;
pub mod settings;
pub mod stats;
pub mod tokens;
pub mod util;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{any, get, post};
use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use settings::{Mode, Settings};
pub use world::seed::Seed;

use clock::SimClock;
use faults::Faults;
use stats::Stats;
use tokens::{Product, TokenStore};
use world::World;

/// The largest REST request body the simulator reads.
pub const REST_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The simulator's whole state, shared by every handler.
#[derive(Debug)]
pub struct Sim {
    settings: RwLock<Settings>,
    pub clock: SimClock,
    pub world: World,
    pub tokens: TokenStore,
    /// API tokens and access tokens, made through the control API.
    pub credentials: credentials::CredentialStore,
    pub stats: Stats,
    pub faults: Faults,
    /// Browser sessions of the consent page: cookie value → (product, user).
    pub sessions: DashMap<String, (Product, String)>,
    /// `http://127.0.0.1:port`, used in links and clone URLs.
    pub base_url: String,
}

impl Sim {
    pub fn settings(&self) -> RwLockReadGuard<'_, Settings> {
        self.settings.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn replace_settings(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }
}

/// Every route of the simulator.
pub fn router(sim: Arc<Sim>) -> Router {
    use oauth::{cloud_authorize, cloud_token, dc_authorize, dc_token};
    Router::new()
        .route(
            "/site/oauth2/authorize",
            get(cloud_authorize::show).post(cloud_authorize::decide),
        )
        .route("/site/oauth2/access_token", post(cloud_token::exchange))
        .route("/2.0/{*path}", any(rest::cloud_api))
        .route(
            dc_authorize::PATH,
            get(dc_authorize::show).post(dc_authorize::decide),
        )
        .route(dc_token::PATH, post(dc_token::exchange))
        .route("/dc/rest/{*path}", any(rest::dc::api))
        .merge(control::routes())
        .fallback(git::serve)
        // axum's default (2 MB) is below what Bitbucket takes in a pull request description.
        .layer(axum::extract::DefaultBodyLimit::max(REST_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            faults::inject,
        ))
        .with_state(sim)
}

/// Configures and starts a simulator.
#[derive(Debug)]
pub struct SimBuilder {
    settings: Option<Settings>,
    mode: Option<Mode>,
    seed: Option<Seed>,
    data_dir: Option<PathBuf>,
    listen: SocketAddr,
}

impl Default for SimBuilder {
    fn default() -> Self {
        SimBuilder {
            settings: None,
            mode: None,
            seed: None,
            data_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl SimBuilder {
    pub fn new() -> SimBuilder {
        SimBuilder::default()
    }

    /// Settings to start with; a seed file's `[settings]` replace them, `mode` overrides both.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Where git repositories live; default: a temporary directory removed at stop.
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    pub async fn start(mut self) -> anyhow::Result<RunningSim> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        let addr = listener.local_addr()?;
        let seed = self.seed.take().unwrap_or_default();
        let mut settings = seed
            .settings
            .clone()
            .or(self.settings.take())
            .unwrap_or_default();
        if let Some(mode) = self.mode {
            settings.mode = mode;
        }
        settings.validate().map_err(anyhow::Error::msg)?;
        let git = match &self.data_dir {
            Some(dir) => git::GitStore::at(dir),
            None => git::GitStore::temporary(),
        }
        .context("cannot create the git repository directory")?;
        let sim = Arc::new(Sim {
            settings: RwLock::new(settings),
            clock: SimClock::default(),
            world: World::new(git),
            tokens: TokenStore::default(),
            credentials: credentials::CredentialStore::default(),
            stats: Stats::default(),
            faults: Faults::default(),
            sessions: DashMap::new(),
            base_url: format!("http://{addr}"),
        });
        let seeded = sim.clone();
        tokio::task::spawn_blocking(move || seed.apply(&seeded.world, seeded.clock.now()))
            .await?
            .map_err(anyhow::Error::msg)?;
        Ok(RunningSim::serve(sim, listener, addr))
    }
}

/// A simulator serving on a local port; stops when dropped.
#[derive(Debug)]
pub struct RunningSim {
    pub sim: Arc<Sim>,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    janitor: JoinHandle<()>,
}

impl RunningSim {
    fn serve(sim: Arc<Sim>, listener: tokio::net::TcpListener, addr: SocketAddr) -> RunningSim {
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(sim.clone());
        let server = tokio::spawn(async move {
            let graceful = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::error!(%error, "simulator server stopped");
            }
        });
        let swept = sim.clone();
        let janitor = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                every.tick().await;
                swept.tokens.purge(swept.clock.now());
            }
        });
        RunningSim {
            sim,
            addr,
            shutdown: Some(shutdown),
            server: Some(server),
            janitor,
        }
    }

    /// `http://127.0.0.1:port`
    pub fn url(&self) -> &str {
        &self.sim.base_url
    }

    /// The Data Center base URL (the simulator serves it under the `/dc` context path).
    pub fn dc_url(&self) -> String {
        format!("{}/dc", self.sim.base_url)
    }

    /// Stops accepting connections and waits for open ones to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Serves until the process is interrupted.
    pub async fn run_until_ctrl_c(self) -> anyhow::Result<()> {
        tokio::signal::ctrl_c().await?;
        self.stop().await;
        Ok(())
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.janitor.abort();
    }
}
