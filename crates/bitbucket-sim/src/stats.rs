//! Counters by endpoint group, request kind and outcome, read at `/_sim/stats`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

type Key = (&'static str, &'static str, &'static str);

#[derive(Debug, Default)]
pub struct Stats {
    counters: DashMap<Key, AtomicU64>,
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

    pub fn reset(&self) {
        self.counters.clear();
    }
}
