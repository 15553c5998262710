//! The background refresher: on every node, claims connections that are due (tokens nearing
//! expiry, idle rotating refresh tokens nearing their limit, retries after backoff) and renews
//! them with bounded concurrency and a per-profile rate limit. Claiming leases the rows, so nodes
//! share the work without doing any of it twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::refresh::Trigger;
use crate::app::Grantry;
use crate::ids::ProfileId;
use crate::store::ConnectionRecord;

/// A token bucket per profile: Bitbucket counts rate limits per OAuth consumer.
#[derive(Debug)]
pub struct ProfileRateLimiter {
    per_second: f64,
    buckets: DashMap<ProfileId, (f64, Instant)>,
}

impl ProfileRateLimiter {
    pub fn new(per_second: u32) -> ProfileRateLimiter {
        ProfileRateLimiter {
            per_second: f64::from(per_second.max(1)),
            buckets: DashMap::new(),
        }
    }

    /// Takes one slot if it comes free within `at_most`, and answers how long to wait before
    /// using it; `None` (and nothing taken) when the queue is longer than that, so that a row
    /// handed back does not push every later one further out.
    pub fn reserve(&self, profile: &ProfileId, at_most: Duration) -> Option<Duration> {
        let now = Instant::now();
        let mut bucket = self
            .buckets
            .entry(profile.clone())
            .or_insert((self.per_second, now));
        let (tokens, last) = *bucket;
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.per_second)
            .min(self.per_second);
        let after = refilled - 1.0;
        let wait = if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / self.per_second)
        };
        if wait > at_most {
            *bucket = (refilled, now);
            return None;
        }
        *bucket = (after, now);
        Some(wait)
    }
}

/// Runs until `shutdown` turns true, then waits for refreshes in flight to finish their writes.
pub async fn run(grantry: Arc<Grantry>, mut shutdown: watch::Receiver<bool>) {
    let settings = grantry.settings.refresh.clone();
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let limiter = Arc::new(ProfileRateLimiter::new(settings.per_profile_per_second));
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(settings.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge = Instant::now();
    // Whether the last claim took as many rows as it could: more are probably due, so a slot
    // coming free is worth a claim at once rather than at the next tick.
    let mut backlog = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(finished) = tasks.join_next(), if backlog => {
                // A row handed back means the rate limit, not the slots, is what holds the
                // rest: claiming again at once would only hand them back too.
                if finished.is_ok_and(|outcome| outcome == Outcome::HandedBack) {
                    backlog = false;
                    continue;
                }
            }
            _ = shutdown.changed() => break,
        }
        while let Some(finished) = tasks.try_join_next() {
            if finished.is_ok_and(|outcome| outcome == Outcome::HandedBack) {
                backlog = false;
            }
        }
        if last_purge.elapsed() > Duration::from_secs(60) {
            purge_sessions(&grantry).await;
            last_purge = Instant::now();
        }
        let free = permits.available_permits();
        if free == 0 || *shutdown.borrow() {
            continue;
        }
        let owner = grantry.lease_owner("refresher");
        let now = grantry.clock.now();
        let until = now + settings.lease;
        let due = match grantry
            .store
            .claim_due(now, &owner, until, free as u32)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "the refresher could not claim due connections");
                continue;
            }
        };
        backlog = due.len() == free;
        for row in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let job = refresh_one(grantry.clone(), row, owner.clone(), limiter.clone());
            tasks.spawn(async move {
                let outcome = job.await;
                drop(permit);
                outcome
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// How a claimed row's turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Refreshed, or tried and recorded, or no longer ours.
    Done,
    /// Given back unrefreshed: its profile's rate limit queue is full.
    HandedBack,
}

/// Refreshes a row the claim leased to `owner` (as the claim returned it, so without reading it
/// again), once its profile's rate limit allows.
async fn refresh_one(
    grantry: Arc<Grantry>,
    row: ConnectionRecord,
    owner: String,
    limiter: Arc<ProfileRateLimiter>,
) -> Outcome {
    let id = row.id.clone();
    let Some(wait) = limiter.reserve(&row.profile_id, grantry.settings.refresh.lease / 3) else {
        // Too long a queue for this profile: hand the row back; it stays due (an abandoned
        // row, whose next refresh may be an hour away, becomes due).
        let _ = grantry
            .store
            .hand_back(&id, &owner, grantry.clock.now())
            .await;
        return Outcome::HandedBack;
    };
    tokio::time::sleep(wait).await;
    if let Err(error) = grantry
        .refresh_leased(row, &owner, Trigger::Background)
        .await
    {
        tracing::debug!(%error, connection.id = %id, "background refresh did not succeed");
    }
    Outcome::Done
}

async fn purge_sessions(grantry: &Grantry) {
    match grantry.store.drop_unconfirmed(grantry.clock.now()).await {
        Ok(0) => {}
        Ok(dropped) => tracing::info!(dropped, "dropped credentials nobody confirmed in time"),
        Err(error) => tracing::warn!(%error, "could not drop unconfirmed credentials"),
    }
    let before = grantry.clock.now() - Duration::from_secs(86_400);
    match grantry.store.purge_sessions(before).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "purged old connect sessions"),
        Err(error) => tracing::warn!(%error, "could not purge old connect sessions"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limiter_spaces_out_a_burst() {
        let limiter = ProfileRateLimiter::new(10);
        let profile = ProfileId::generate();
        let long = Duration::from_secs(60);
        let waits: Vec<Duration> = (0..12)
            .map(|_| limiter.reserve(&profile, long).unwrap())
            .collect();
        assert!(
            waits[..10].iter().all(|w| w.is_zero()),
            "a full bucket passes at once"
        );
        assert!(waits[10] > Duration::from_millis(50) && waits[11] > waits[10]);
        assert!(
            limiter
                .reserve(&ProfileId::generate(), long)
                .unwrap()
                .is_zero(),
            "profiles do not share"
        );
    }

    /// A row handed back because the queue is too long must not lengthen the queue: otherwise a
    /// wave larger than the limit allows starves itself, every later row handed back for ever.
    #[test]
    fn a_refused_reservation_takes_no_slot() {
        let limiter = ProfileRateLimiter::new(10);
        let profile = ProfileId::generate();
        let half_second = Duration::from_millis(500);
        let taken = (0..100)
            .filter(|_| limiter.reserve(&profile, half_second).is_some())
            .count();
        // Ten at once, then one each tenth of a second up to half a second.
        assert_eq!(taken, 15);
        let next = limiter.reserve(&profile, Duration::from_millis(700));
        assert!(
            next.is_some_and(|wait| wait <= Duration::from_millis(700)),
            "the 85 refusals did not push the next slot out: {next:?}"
        );
    }
}
