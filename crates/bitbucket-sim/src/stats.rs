//! Counters by endpoint group, request kind and outcome, read at `/_sim/stats`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use dashmap::DashMap;

type Key = (&'static str, &'static str, &'static str);

#[derive(Debug, Default)]
pub struct Stats {
    counters: DashMap<Key, AtomicU64>,
    /// Requests by the product in their `User-Agent` (`grantry`, `python-requests`, …), so a
    /// test can tell that only Grantry called Bitbucket.
    user_agents: DashMap<String, AtomicU64>,
}

/// `group → kind → outcome → count`, e.g. `token → refresh_token → ok → 12`.
pub type Snapshot = BTreeMap<&'static str, BTreeMap<&'static str, BTreeMap<&'static str, u64>>>;

impl Stats {
    pub fn count(&self, group: &'static str, kind: &'static str, outcome: &'static str) {
        let key = (group, kind, outcome);
        if let Some(counter) = self.counters.get(&key) {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counters
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, group: &'static str, kind: &'static str, outcome: &'static str) -> u64 {
        self.counters
            .get(&(group, kind, outcome))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::new();
        for entry in self.counters.iter() {
            let (group, kind, outcome) = *entry.key();
            let count = entry.value().load(Ordering::Relaxed);
            *out.entry(group)
                .or_default()
                .entry(kind)
                .or_default()
                .entry(outcome)
                .or_default() += count;
        }
        out
    }

    /// Counts a request by the product named first in its `User-Agent` (`-` when there is none).
    pub fn saw_user_agent(&self, user_agent: Option<&str>) {
        let product = user_agent
            .and_then(|ua| ua.split(['/', ' ']).next())
            .filter(|product| !product.is_empty())
            .unwrap_or("-");
        let product: String = product.chars().take(64).collect();
        self.user_agents
            .entry(product)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn user_agents(&self) -> BTreeMap<String, u64> {
        self.user_agents
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().load(Ordering::Relaxed)))
            .collect()
    }

    pub fn reset(&self) {
        self.counters.clear();
        self.user_agents.clear();
    }
}

/// An answer's status as the counters name it.
pub fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "ok",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        _ => "other",
    }
}
