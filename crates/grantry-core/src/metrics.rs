//! Counters the services keep; `grantry-http` renders them for Prometheus at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a token read was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// From memory, no database, no decryption.
    Cache,
    /// From the database (after a restart or an invalidation).
    Store,
    /// After a refresh.
    Refreshed,
    /// A still-valid token served while the provider is failing.
    Stale,
    Error,
}

impl ReadOutcome {
    pub const ALL: [ReadOutcome; 5] = [
        ReadOutcome::Cache,
        ReadOutcome::Store,
        ReadOutcome::Refreshed,
        ReadOutcome::Stale,
        ReadOutcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ReadOutcome::Cache => "cache",
            ReadOutcome::Store => "store",
            ReadOutcome::Refreshed => "refreshed",
            ReadOutcome::Stale => "stale",
            ReadOutcome::Error => "error",
        }
    }
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    Ok,
    NeedsReauth,
    Misconfigured,
    Transient,
    Unexpected,
    /// Another writer got there first; its tokens were kept.
    Superseded,
}

impl RefreshOutcome {
    pub const ALL: [RefreshOutcome; 6] = [
        RefreshOutcome::Ok,
        RefreshOutcome::NeedsReauth,
        RefreshOutcome::Misconfigured,
        RefreshOutcome::Transient,
        RefreshOutcome::Unexpected,
        RefreshOutcome::Superseded,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RefreshOutcome::Ok => "ok",
            RefreshOutcome::NeedsReauth => "needs_reauth",
            RefreshOutcome::Misconfigured => "misconfigured",
            RefreshOutcome::Transient => "transient",
            RefreshOutcome::Unexpected => "unexpected",
            RefreshOutcome::Superseded => "superseded",
        }
    }
}

/// Upper bounds of the provider latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default)]
pub struct Metrics {
    reads: [AtomicU64; 5],
    refreshes: [AtomicU64; 6],
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    token_write_failures: AtomicU64,
    changes_heard: AtomicU64,
    /// Webhook attempts by what they came to: delivered, retrying (pending), failed.
    webhook_attempts: [AtomicU64; 3],
}

impl Metrics {
    pub fn read(&self, outcome: ReadOutcome) {
        let index = ReadOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.reads[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refresh(&self, outcome: RefreshOutcome) {
        let index = RefreshOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.refreshes[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn provider_call(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// A refresh result the database did not take (kept in memory meanwhile).
    pub fn token_write_failed(&self) {
        self.token_write_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_write_failures(&self) -> u64 {
        self.token_write_failures.load(Ordering::Relaxed)
    }

    /// A change another node announced (PostgreSQL's change feed) reached this node.
    pub fn change_heard(&self) {
        self.changes_heard.fetch_add(1, Ordering::Relaxed);
    }

    pub fn changes_heard(&self) -> u64 {
        self.changes_heard.load(Ordering::Relaxed)
    }

    pub fn reads(&self) -> Vec<(&'static str, u64)> {
        ReadOutcome::ALL
            .iter()
            .zip(&self.reads)
            .map(|(o, c)| (o.label(), c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn refreshes(&self) -> Vec<(&'static str, u64)> {
        RefreshOutcome::ALL
            .iter()
            .zip(&self.refreshes)
            .map(|(o, c)| (o.label(), c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn webhook_attempt(&self, state: crate::store::DeliveryState) {
        let index = match state {
            crate::store::DeliveryState::Delivered => 0,
            crate::store::DeliveryState::Pending => 1,
            crate::store::DeliveryState::Failed => 2,
        };
        self.webhook_attempts[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Webhook attempts by outcome: `delivered`, `retrying`, `failed`.
    pub fn webhook_attempts(&self) -> Vec<(&'static str, u64)> {
        ["delivered", "retrying", "failed"]
            .into_iter()
            .zip(&self.webhook_attempts)
            .map(|(label, c)| (label, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Cumulative bucket counts, total count and sum in seconds.
    pub fn latency(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.latency_buckets)
            .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
            .collect();
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, count, sum)
    }
}
