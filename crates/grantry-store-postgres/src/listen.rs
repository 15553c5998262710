//! Following other nodes' changes: LISTEN on `grantry_changes`, where the schema's triggers
//! NOTIFY every change to a connection or API key.
//!
//! A node that may have missed notifications must not answer from its caches, because another
//! node may have deleted or reconnected a connection meanwhile. The listener sends itself a ping
//! four times a second over a connection of its own (so a busy pool cannot delay it); if nothing,
//! not even its own ping, arrives for a second, or the listening connection drops, the node
//! bypasses its caches until the listener is back (then forgets what it cached). So a feed that
//! stalls without an error costs at most a second of possibly stale answers, as the issue asks.
//! One exception: when the database itself is unreachable nothing can change, so fresh cached
//! tokens keep being served through the outage.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::Grantry;
use grantry_core::changes::Change;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnection, PgListener, PgPool};
use tokio::sync::watch;

use crate::PgEngine;

pub const CHANNEL: &str = "grantry_changes";
const PING_EVERY: Duration = Duration::from_millis(250);
const SILENCE: Duration = Duration::from_secs(1);
/// How long to wait before trying again after the database refused a connection.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Announces a master key rotation to every node (they re-read the key file at once).
pub async fn announce_key_rotation(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, 'keys')")
        .bind(CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs until `shutdown` turns true.
pub async fn follow_changes(
    store: PgEngine,
    grantry: Arc<Grantry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let pool = store.pool().clone();
    let ping = format!("ping:{}", grantry.settings.node_id);
    let pinger = tokio::spawn(send_pings(pool.clone(), ping.clone()));
    loop {
        let listener = tokio::select! {
            listener = subscribe(&pool) => listener,
            _ = shutdown.changed() => break,
        };
        let Some(mut listener) = listener else {
            lost(&pool, &grantry).await;
            tokio::select! {
                _ = tokio::time::sleep(RETRY_EVERY) => continue,
                _ = shutdown.changed() => break,
            }
        };
        // Listening again: whatever happened while deaf is unknown, so start from the database,
        // which has just answered (the health probe may not have seen it yet: tell it, or the
        // reads that follow would be refused as if it were still down).
        store.mark_answering();
        grantry.forget_everything();
        grantry.set_cache_bypass(false);
        tracing::info!("following changes from other nodes");
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(SILENCE, listener.try_recv()) => next,
                _ = shutdown.changed() => {
                    pinger.abort();
                    return;
                }
            };
            match next {
                Ok(Ok(Some(notification))) if notification.payload() == ping => {}
                Ok(Ok(Some(notification))) => {
                    if let Some(change) = Change::parse(notification.payload()) {
                        grantry.apply_change(&change);
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    tracing::warn!("lost the change feed from the database");
                    lost(&pool, &grantry).await;
                    break;
                }
            }
        }
    }
    pinger.abort();
}

async fn subscribe(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await.ok()?;
    Some(listener)
}

/// Bypasses the caches, unless the database is down altogether (then nothing can change).
async fn lost(pool: &PgPool, grantry: &Grantry) {
    let reachable = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(pool),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if reachable {
        grantry.set_cache_bypass(true);
    }
}

/// Pings over a connection of its own, opened again whenever it breaks.
async fn send_pings(pool: PgPool, ping: String) {
    let options = pool.connect_options();
    let mut every = tokio::time::interval(PING_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connection: Option<PgConnection> = None;
    loop {
        every.tick().await;
        if connection.is_none() {
            connection = options.connect().await.ok();
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&ping)
            .execute(&mut *open)
            .await;
        if sent.is_err() {
            connection = None;
        }
    }
}
