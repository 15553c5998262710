//! What stands between the console's sign-in form and anyone on the network:
//!
//! - **Password slots.** argon2id is slow and needs 19 MiB on purpose. At most `slots` checks run
//!   at once (one per core by default), each in memory allocated once and reused; a sign-in that
//!   finds every slot busy is refused at once ([`CoreError::Busy`], answered 503 with
//!   `Retry-After`) instead of queueing memory and threads.
//! - **Throttling.** Failures are counted per user name and per client address. After a few,
//!   each further failure locks the name or the address for twice as long as the last, and a
//!   locked one is refused before any hashing ([`CoreError::Throttled`], 429 with `Retry-After`).
//!   An address can be locked for up to 15 minutes; a user name for at most a minute, so someone
//!   failing on purpose from elsewhere can slow the real admin down but never lock them out.
//!   Counts are per node, kept in a bounded cache, and forgotten 15 minutes after the last
//!   failure; a success clears both.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use grantry_crypto::PasswordWork;
use quick_cache::sync::Cache;
use tokio::sync::Semaphore;

use crate::clock::Timestamp;
use crate::error::{CoreError, CoreResult};
use crate::store::StoreError;

/// Failures allowed before locking begins.
const FREE_FAILURES: u32 = 5;
/// The longest an address is locked, in seconds.
const MAX_ADDRESS_LOCK: i64 = 15 * 60;
/// The longest a user name is locked: short, so the real admin is never locked out for long.
const MAX_NAME_LOCK: i64 = 60;
/// Failures older than this are forgotten.
const FORGET_AFTER: i64 = 15 * 60;
/// How many names and addresses are remembered at most (the oldest go first).
const REMEMBERED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
    locked_until: Timestamp,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
enum Who {
    Name(String),
    Address(IpAddr),
}

pub(crate) struct SignInGuard {
    permits: Arc<Semaphore>,
    work: Mutex<Vec<PasswordWork>>,
    failures: Cache<Who, Failures>,
}

impl std::fmt::Debug for SignInGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInGuard")
            .field("free_slots", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// The lock (seconds) a count of failures earns: none for the first few, then doubling, capped.
/// It starts at two seconds, not one: times here are whole seconds, so a one-second lock taken
/// late in a second would be over at the next tick, after a few milliseconds.
fn lock_for(count: u32, cap: i64) -> i64 {
    if count < FREE_FAILURES {
        return 0;
    }
    let doublings = (count - FREE_FAILURES).min(20);
    (2i64 << doublings).min(cap)
}

impl SignInGuard {
    pub fn new(slots: usize) -> SignInGuard {
        SignInGuard {
            permits: Arc::new(Semaphore::new(slots.max(1))),
            work: Mutex::new(Vec::new()),
            failures: Cache::new(REMEMBERED),
        }
    }

    /// Runs an argon2 computation in a slot. `wait`: queue for a slot (an admin's own action)
    /// rather than be refused at once (an anonymous sign-in).
    pub async fn with_password_work<T: Send + 'static>(
        &self,
        wait: bool,
        work: impl FnOnce(&mut PasswordWork) -> T + Send + 'static,
    ) -> CoreResult<T> {
        let permit = if wait {
            self.permits.clone().acquire_owned().await.ok()
        } else {
            self.permits.clone().try_acquire_owned().ok()
        };
        let Some(permit) = permit else {
            return Err(CoreError::Busy { retry_after: 1 });
        };
        let mut memory = self.take_memory();
        let (answer, memory) = tokio::task::spawn_blocking(move || {
            let answer = work(&mut memory);
            (answer, memory)
        })
        .await
        .map_err(|e| {
            CoreError::Store(StoreError::Other(format!("password hashing stopped: {e}")))
        })?;
        self.give_back(memory);
        drop(permit);
        Ok(answer)
    }

    fn take_memory(&self) -> PasswordWork {
        let kept = self.work.lock().map(|mut kept| kept.pop());
        kept.ok().flatten().unwrap_or_default()
    }

    fn give_back(&self, memory: PasswordWork) {
        if let Ok(mut kept) = self.work.lock() {
            kept.push(memory);
        }
    }

    /// Seconds to wait before `username` may try again from `address`; zero when they may now.
    pub fn locked(&self, username: &str, address: Option<IpAddr>, now: Timestamp) -> i64 {
        let left = |who: Who| {
            self.failures
                .get(&who)
                .map_or(0, |f| (f.locked_until - now).max(0))
        };
        let name = left(Who::Name(username.to_owned()));
        let address = address.map_or(0, |a| left(Who::Address(a)));
        name.max(address)
    }

    /// Counts a failure; answers whether it began a lock (worth a warning in the log).
    pub fn failed(&self, username: &str, address: Option<IpAddr>, now: Timestamp) -> bool {
        let mut began = self.count(Who::Name(username.to_owned()), MAX_NAME_LOCK, now);
        if let Some(address) = address {
            began |= self.count(Who::Address(address), MAX_ADDRESS_LOCK, now);
        }
        began
    }

    fn count(&self, who: Who, cap: i64, now: Timestamp) -> bool {
        let previous = self
            .failures
            .get(&who)
            .filter(|f| now - f.last < FORGET_AFTER);
        let count = previous.map_or(0, |f| f.count) + 1;
        let lock = lock_for(count, cap);
        self.failures.insert(
            who,
            Failures {
                count,
                last: now,
                locked_until: now.plus_seconds(lock),
            },
        );
        count == FREE_FAILURES
    }

    /// A successful sign-in clears the name's and the address's failures.
    pub fn succeeded(&self, username: &str, address: Option<IpAddr>) {
        self.failures.remove(&Who::Name(username.to_owned()));
        if let Some(address) = address {
            self.failures.remove(&Who::Address(address));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_unix(1000);

    #[test]
    fn locks_begin_after_a_few_failures_and_double_up_to_their_cap() {
        assert_eq!(lock_for(4, MAX_ADDRESS_LOCK), 0);
        assert_eq!(lock_for(5, MAX_ADDRESS_LOCK), 2);
        assert_eq!(lock_for(8, MAX_ADDRESS_LOCK), 16);
        assert_eq!(lock_for(40, MAX_ADDRESS_LOCK), MAX_ADDRESS_LOCK);
        assert_eq!(lock_for(40, MAX_NAME_LOCK), MAX_NAME_LOCK);
    }

    #[test]
    fn a_name_is_locked_from_everywhere_but_never_for_long() {
        let guard = SignInGuard::new(1);
        let attacker = Some("203.0.113.9".parse().unwrap());
        let admin = Some("198.51.100.7".parse().unwrap());
        for _ in 0..30 {
            guard.failed("admin", attacker, T0);
        }
        assert!(guard.locked("admin", attacker, T0) > 600);
        let from_elsewhere = guard.locked("admin", admin, T0);
        assert!(from_elsewhere > 0 && from_elsewhere <= MAX_NAME_LOCK);
        assert_eq!(guard.locked("someone", admin, T0), 0);
        assert_eq!(
            guard.locked("admin", admin, T0.plus_seconds(MAX_NAME_LOCK)),
            0
        );
        guard.succeeded("admin", admin);
        assert!(
            guard.locked("admin", attacker, T0.plus_seconds(MAX_NAME_LOCK)) > 0,
            "the attacker's address stays locked"
        );
        assert_eq!(
            guard.locked(
                "admin",
                attacker,
                T0.plus_seconds(FORGET_AFTER + MAX_ADDRESS_LOCK)
            ),
            0,
            "and is forgiven in the end"
        );
    }
}
