//! `grantry serve`: the API, the connect flow, the background refresher and webhook delivery in
//! one process.
//! Shutdown (SIGINT or SIGTERM) stops accepting requests, lets requests in flight finish, then
//! lets refreshes in flight write their tokens before the store closes.

use std::fs::File;
use std::future::Future;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use grantry_crypto::{KeySource, KeyStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, Database};
use crate::runtime::{self, Backend, Runtime, Schema};

/// How often refresh results the database could not take are retried.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Keeps a second `grantry serve` off the same SQLite file while held. PostgreSQL needs no lock:
/// any number of nodes may share it.
fn single_server_lock(database: &Database) -> anyhow::Result<Option<File>> {
    let Database::Sqlite(database) = database else {
        return Ok(None);
    };
    match runtime::lock_sqlite(database)? {
        Some(lock) => Ok(Some(lock)),
        None => anyhow::bail!(
            "another `grantry serve` (or `grantry migrate-store`) is already using the SQLite database {}. \
             SQLite serves one node; to run several, use PostgreSQL.",
            database.display()
        ),
    }
}

pub async fn serve(config: Config, migrate: bool) -> anyhow::Result<()> {
    let schema = if migrate {
        Schema::Migrate
    } else {
        Schema::Expect
    };
    // Taken before the schema is touched: a second node must not migrate under the first.
    crate::data_dir::prepare(&config)?;
    let _lock = single_server_lock(&config.database()?)?;
    let runtime = runtime::open(&config, schema).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    run(runtime, listener, &config, shutdown_signal()).await
}

/// Serves until `shutdown` completes.
pub async fn run(
    runtime: Runtime,
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grantry = runtime.grantry.clone();
    let (stop, stopped) = watch::channel(false);
    let refresher = config.refresh.enabled.then(|| {
        tokio::spawn(grantry_core::tokens::refresher::run(
            grantry.clone(),
            stopped.clone(),
        ))
    });
    let deliverer = if config.webhooks.enabled {
        let sender = std::sync::Arc::new(runtime::webhook_sender(config)?);
        Some(tokio::spawn(grantry_core::webhooks::delivery::run(
            grantry.clone(),
            sender,
            stopped.clone(),
        )))
    } else {
        None
    };
    let key_watch = tokio::spawn(watch_key_file(runtime.keys.clone(), stopped.clone()));
    let flusher = tokio::spawn(flush_pending_writes(grantry.clone(), stopped.clone()));
    let follower = match &runtime.backend {
        Backend::Postgres(store) => Some(tokio::spawn(
            grantry_store_postgres::listen::follow_changes(
                store.engine().clone(),
                grantry.clone(),
                stopped.clone(),
            ),
        )),
        Backend::Sqlite(_) => None,
    };
    let app = grantry_http::router(grantry.clone(), config.http_settings());
    let address = listener.local_addr()?;
    tracing::info!(%address, public_url = %config.public_url, node = %grantry.settings.node_id, "grantry listening");
    eprintln!(
        "grantry listening on http://{address} (public URL {})",
        config.base_url()
    );
    eprintln!("console: {}/ui/", config.base_url());
    match grantry.setup_link().await {
        Ok(Some(link)) => eprintln!(
            "No console admin exists yet. Open this one-time link to create the first (valid 24 h):\n  {link}\n\
             (or run `grantry admin create --username NAME`)"
        ),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not make a console setup link"),
    }
    let options = config.serve_options();
    tracing::info!(
        max_connections = options.max_connections,
        header_timeout_secs = options.header_timeout.as_secs(),
        "serving"
    );
    grantry_http::server::serve(listener, app, options, shutdown).await?;
    tracing::info!("stopping: waiting for refreshes in flight");
    let _ = stop.send(true);
    if let Some(refresher) = refresher {
        let _ = refresher.await;
    }
    if let Some(deliverer) = deliverer {
        let _ = deliverer.await;
    }
    key_watch.abort();
    let _ = flusher.await;
    if let Some(follower) = follower {
        let _ = follower.await;
    }
    let waiting = grantry.flush_pending_writes().await;
    if waiting > 0 {
        tracing::error!(
            waiting,
            "stopping with refresh results the database never took: these connections will need \
             their users to reconnect if Bitbucket has already retired the old refresh tokens"
        );
    }
    runtime.backend.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Writes refresh results the database could not take when they were made, once it answers again.
async fn flush_pending_writes(
    grantry: std::sync::Arc<grantry_core::Grantry>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => {}
            _ = stopped.changed() => return,
        }
        if grantry.pending_write_count() > 0 {
            let waiting = grantry.flush_pending_writes().await;
            if waiting == 0 {
                tracing::info!("the database took every refresh result it had missed");
            }
        }
    }
}

/// Notices a rotated key file within seconds, so this node seals with the new primary key.
async fn watch_key_file(keys: std::sync::Arc<KeyStore>, mut stopped: watch::Receiver<bool>) {
    let KeySource::File(path) = keys.source().clone() else {
        return;
    };
    let modified = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = modified(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stopped.changed() => return,
        }
        let now = modified(&path);
        if now != seen {
            seen = now;
            match keys.reload() {
                Ok(()) => {
                    tracing::info!(primary = %keys.primary_id(), "master key file changed: reloaded")
                }
                Err(error) => {
                    tracing::error!(%error, "master key file changed but could not be read")
                }
            }
        }
    }
}

pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
