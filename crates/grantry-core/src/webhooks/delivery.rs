//! Delivering the outbox, on every node: claim due messages with a lease (one node attempts
//! each), sign them, post them, and record what the endpoint answered. A node that dies
//! mid-attempt leaves the lease to run out, and another node sends the message again with the
//! same `webhook-id`: delivery is at least once, and receivers dedupe by that id.
//!
//! Retries: network errors, timeouts, 5xx, 408 and 429 are retried with exponential backoff and
//! jitter (429 and 503 after the `Retry-After` they give) for `retry_for`; other 4xx a few times;
//! `410 Gone` disables the endpoint, as does failing for `disable_after` without a success.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::app::{Actor, Grantry};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::events::EventKind;
use crate::ids::WebhookId;
use crate::settings::WebhookSettings;
use crate::store::{AttemptWrite, DeliveryRecord, DeliveryState, WebhookRecord};

/// One signed POST to an endpoint.
#[derive(Debug)]
pub struct WebhookRequest<'a> {
    pub url: &'a str,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub headers: [(&'static str, String); 3],
    pub body: &'a str,
    pub timeout: Duration,
}

/// What became of a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed or the endpoint took longer than the timeout.
    NoAnswer(String),
}

/// Posts webhook requests (an HTTP client in production, a script in tests). It follows no
/// redirects: a receiver that moved must be given its new URL.
#[async_trait]
pub trait WebhookSender: Send + Sync + fmt::Debug {
    async fn send(&self, request: WebhookRequest<'_>) -> Sent;
}

/// What an attempt came to, and what follows for the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    state: DeliveryState,
    retry_in: Option<Duration>,
    /// The endpoint said `410 Gone`: disable it.
    gone: bool,
}

/// The delay before retry number `attempts + 1`: doubling from the base, capped, ±20 %.
fn backoff(attempts: i64, settings: &WebhookSettings) -> Duration {
    let doublings = (attempts - 1).clamp(0, 20) as u32;
    let delay = settings
        .backoff_base
        .saturating_mul(1 << doublings)
        .min(settings.backoff_max);
    delay.mul_f64(rand::random_range(0.8..1.2))
}

/// Judges an answer. `attempts` counts this one; `age` is how long ago the message was written.
fn judge(sent: &Sent, attempts: i64, age: Duration, settings: &WebhookSettings) -> Verdict {
    let retry = |retry_after: Option<Duration>| {
        if age >= settings.retry_for {
            return Verdict {
                state: DeliveryState::Failed,
                retry_in: None,
                gone: false,
            };
        }
        let delay = retry_after
            .map(|d| d.min(settings.retry_for))
            .unwrap_or_else(|| backoff(attempts, settings));
        Verdict {
            state: DeliveryState::Pending,
            retry_in: Some(delay),
            gone: false,
        }
    };
    match sent {
        Sent::Answered { status, .. } if (200..300).contains(status) => Verdict {
            state: DeliveryState::Delivered,
            retry_in: None,
            gone: false,
        },
        Sent::Answered { status: 410, .. } => Verdict {
            state: DeliveryState::Failed,
            retry_in: None,
            gone: true,
        },
        Sent::Answered {
            status,
            retry_after,
        } if *status == 408 || *status == 429 || *status >= 500 => retry(*retry_after),
        Sent::Answered { .. } if attempts < settings.client_error_attempts => retry(None),
        Sent::Answered { .. } => Verdict {
            state: DeliveryState::Failed,
            retry_in: None,
            gone: false,
        },
        Sent::NoAnswer(_) => retry(None),
    }
}

/// What an attempt came to, to be recorded with others in one transaction.
struct Attempted {
    webhook: Arc<WebhookRecord>,
    write: AttemptWrite,
    /// The endpoint said `410 Gone`.
    gone: bool,
}

/// Deliveries started per second: a bucket refilled continuously, holding at most a quarter of
/// a second's worth (more than an idle poll's), so a backlog drains at the rate rather than in
/// bursts.
struct Budget {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new(per_second: u32) -> Budget {
        Budget {
            per_second: f64::from(per_second),
            tokens: 0.0,
            at: Instant::now(),
        }
    }

    /// How many of `wanted` may start now: none until a batch's worth (what the rate allows in
    /// `BUDGET_PAUSE`) has come back, so that claims are few and large.
    fn allows(&mut self, wanted: usize) -> usize {
        if self.per_second <= 0.0 {
            return wanted;
        }
        let now = Instant::now();
        let most = (self.per_second / 4.0).max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_second).min(most);
        self.at = now;
        if self.tokens < self.batch().min(wanted as f64) {
            return 0;
        }
        wanted.min(self.tokens as usize)
    }

    fn batch(&self) -> f64 {
        (self.per_second * BUDGET_PAUSE.as_secs_f64()).max(1.0)
    }

    fn spend(&mut self, started: usize) {
        if self.per_second > 0.0 {
            self.tokens -= started as f64;
        }
    }

    /// Whether the budget is used up (the next claim must wait for it).
    fn spent(&self) -> bool {
        self.per_second > 0.0 && self.tokens < self.batch()
    }
}

/// How long a claim held back by the rate waits for budget: long enough that each claim takes a
/// batch worth its two statements.
const BUDGET_PAUSE: Duration = Duration::from_millis(40);

/// Finished attempts are recorded together: those finishing within this of the first, or this
/// many, whichever comes first (or when none is left in flight).
const GATHER: Duration = Duration::from_millis(20);
const RECORD_BATCH: usize = 64;

/// Runs until `shutdown` turns true, then lets attempts in flight record their outcome.
pub async fn run(
    grantry: Arc<Grantry>,
    sender: Arc<dyn WebhookSender>,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = grantry.settings.webhooks.clone();
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks: JoinSet<Option<Attempted>> = JoinSet::new();
    let mut last_scan: Option<Instant> = None;
    let mut budget = Budget::new(settings.per_second);
    let mut last_claim_full = false;
    let mut endpoints = Endpoints::default();
    let mut unrecorded: Vec<Attempted> = Vec::new();
    let mut gathering_since = Instant::now();
    loop {
        if last_scan.is_none_or(|at| at.elapsed() >= settings.expiry_scan) {
            last_scan = Some(Instant::now());
            match grantry.warn_expiring_credentials().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(credentials = n, "warned of expiring credentials"),
                Err(error) => tracing::warn!(%error, "could not look for expiring credentials"),
            }
            let before = grantry.clock.now() - settings.keep_finished;
            if let Err(error) = grantry.store.purge_deliveries(before).await {
                tracing::warn!(%error, "could not purge finished webhook messages");
            }
        }
        let free = budget.allows(permits.available_permits());
        let mut claimed = 0;
        // Whether the last claim found work: more is probably due.
        let backlog = last_claim_full;
        if free > 0 && !*shutdown.borrow() {
            let owner = grantry.lease_owner("webhooks");
            let now = grantry.clock.now();
            let until = now + settings.lease;
            match grantry
                .store
                .claim_deliveries(now, &owner, until, free as u32)
                .await
            {
                Ok(due) if !due.is_empty() => {
                    claimed = due.len();
                    last_claim_full = claimed == free;
                    budget.spend(claimed);
                    let endpoints = endpoints.get(&grantry).await;
                    for delivery in due {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            break;
                        };
                        let webhook = endpoints.get(delivery.webhook_id.as_str()).cloned();
                        let job = attempt(
                            grantry.clone(),
                            sender.clone(),
                            webhook,
                            delivery,
                            owner.clone(),
                        );
                        tasks.spawn(async move {
                            let attempted = job.await;
                            drop(permit);
                            attempted
                        });
                    }
                }
                Ok(_) => last_claim_full = false,
                Err(error) => tracing::warn!(%error, "could not claim webhook deliveries"),
            }
        }
        // A full claim means more are due: claim again as soon as attempts finish (which may
        // also let the next message of their connection go).
        let busy = claimed > 0 && claimed == free && !budget.spent();
        // There was work: more is probably due; look again as soon as a batch's worth of budget
        // is back, rather than after the idle interval.
        let pause = if claimed > 0 || backlog {
            BUDGET_PAUSE
        } else {
            settings.interval
        };
        // Finished attempts wait (a little) to be recorded together.
        let pause = match unrecorded.first() {
            Some(_) => pause.min(GATHER.saturating_sub(gathering_since.elapsed())),
            None => pause,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause), if !busy || tasks.is_empty() || !unrecorded.is_empty() => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if unrecorded.is_empty() {
                    gathering_since = Instant::now();
                }
                unrecorded.extend(done.ok().flatten());
                while let Some(done) = tasks.try_join_next() {
                    unrecorded.extend(done.ok().flatten());
                }
            }
            _ = shutdown.changed() => break,
        }
        let due = unrecorded.len() >= RECORD_BATCH
            || tasks.is_empty()
            || gathering_since.elapsed() >= GATHER;
        if !unrecorded.is_empty() && due {
            record(&grantry, std::mem::take(&mut unrecorded)).await;
        }
    }
    let mut finished = unrecorded;
    while let Some(done) = tasks.join_next().await {
        finished.extend(done.ok().flatten());
    }
    record(&grantry, finished).await;
}

/// The endpoints, read again at most once a second (an edited URL or a rotated secret applies
/// within a second; the previous secret signs for a day anyway).
#[derive(Default)]
struct Endpoints {
    read: Option<(Instant, Arc<ById>)>,
}

/// The endpoints by id.
type ById = HashMap<String, Arc<WebhookRecord>>;

impl Endpoints {
    async fn get(&mut self, grantry: &Grantry) -> Arc<ById> {
        if let Some((at, all)) = &self.read
            && at.elapsed() < Duration::from_secs(1)
        {
            return all.clone();
        }
        let all: ById = match grantry.store.webhooks().await {
            Ok(all) => all
                .into_iter()
                .map(|w| (w.id.as_str().to_owned(), Arc::new(w)))
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "could not read the webhook endpoints");
                return Arc::default();
            }
        };
        let all = Arc::new(all);
        self.read = Some((Instant::now(), all.clone()));
        all
    }
}

/// Signs and posts one message; answers what came of it (nothing when its endpoint is gone).
async fn attempt(
    grantry: Arc<Grantry>,
    sender: Arc<dyn WebhookSender>,
    webhook: Option<Arc<WebhookRecord>>,
    delivery: DeliveryRecord,
    owner: String,
) -> Option<Attempted> {
    let settings = &grantry.settings.webhooks;
    // Deleted since the claim: its deliveries went with it.
    let webhook = webhook?;
    let now = grantry.clock.now();
    let started = Instant::now();
    let sent = match sign(&grantry, &webhook, &delivery, now) {
        Ok(headers) => {
            let request = WebhookRequest {
                url: &webhook.url,
                headers,
                body: &delivery.payload,
                timeout: settings.timeout,
            };
            sender.send(request).await
        }
        Err(error) => Sent::NoAnswer(format!("could not sign: {error}")),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let age = Duration::from_secs((now - delivery.created_at).max(0) as u64);
    let verdict = judge(&sent, delivery.attempts + 1, age, settings);
    let now = grantry.clock.now();
    let (status, error) = match &sent {
        Sent::Answered { status, .. } => (Some(i64::from(*status)), None),
        Sent::NoAnswer(why) => (None, Some(why.clone())),
    };
    grantry.metrics.webhook_attempt(verdict.state);
    let write = AttemptWrite {
        webhook_id: webhook.id.clone(),
        seq: delivery.seq,
        owner,
        state: verdict.state,
        next_attempt_at: now.plus_seconds(
            verdict
                .retry_in
                .map_or(0, |d| d.as_secs_f64().ceil() as i64),
        ),
        status,
        error,
        latency_ms,
        at: now,
    };
    Some(Attempted {
        webhook,
        write,
        gone: verdict.gone,
    })
}

/// Records finished attempts in one transaction, then disables endpoints that said `410 Gone`
/// or have failed for too long.
async fn record(grantry: &Grantry, finished: Vec<Attempted>) {
    if finished.is_empty() {
        return;
    }
    let writes: Vec<AttemptWrite> = finished.iter().map(|a| a.write.clone()).collect();
    match grantry.store.record_attempts(&writes).await {
        Ok(recorded) => {
            let lost = recorded.iter().filter(|r| !**r).count();
            if lost > 0 {
                tracing::warn!(
                    lost,
                    "webhook attempts outlived their lease; another node may send them again"
                );
            }
        }
        Err(error) => {
            tracing::warn!(%error, attempts = writes.len(), "could not record webhook attempts; they will be sent again");
        }
    }
    let disable_after = grantry.settings.webhooks.disable_after.as_secs() as i64;
    let mut checked: Vec<&WebhookId> = Vec::new();
    for attempted in &finished {
        let (webhook, at) = (&attempted.webhook, attempted.write.at);
        if attempted.gone {
            disable(grantry, webhook, "the endpoint answered 410 Gone", at).await;
            continue;
        }
        if attempted.write.state == DeliveryState::Delivered || checked.contains(&&webhook.id) {
            continue;
        }
        checked.push(&webhook.id);
        // Since when it has been failing, as just recorded (not as read at the claim).
        let since = match grantry.store.webhook(&webhook.id).await {
            Ok(Some(now)) => now.failing_since,
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, webhook.id = %webhook.id, "could not read a failing endpoint");
                None
            }
        };
        if let Some(since) = since
            && at - since >= disable_after
        {
            let days = (at - since) / 86_400;
            let reason = format!("every delivery failed for {days} days");
            disable(grantry, webhook, &reason, at).await;
        }
    }
}

/// The Standard Webhooks headers. The timestamp is the wall clock's, not the services' clock:
/// receivers compare it with their own to refuse replays.
fn sign(
    grantry: &Grantry,
    webhook: &WebhookRecord,
    delivery: &DeliveryRecord,
    now: Timestamp,
) -> crate::error::CoreResult<[(&'static str, String); 3]> {
    let timestamp = SystemClock.now();
    let id = delivery.event_id.as_str();
    let mut signatures = Vec::with_capacity(2);
    for secret in grantry.signing_secrets(webhook, now)? {
        signatures.push(grantry_crypto::webhook_signature(
            secret.expose_secret(),
            id,
            timestamp.unix(),
            &delivery.payload,
        )?);
    }
    Ok([
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.unix().to_string()),
        ("webhook-signature", signatures.join(" ")),
    ])
}

async fn disable(grantry: &Grantry, webhook: &WebhookRecord, reason: &str, now: Timestamp) {
    match grantry
        .store
        .disable_webhook(&webhook.id, reason, now)
        .await
    {
        Ok(true) => {
            tracing::warn!(webhook.id = %webhook.id, url = %webhook.url, reason, "webhook endpoint disabled");
            let detail = format!(
                "Webhook {} ({}) disabled: {reason}",
                webhook.id, webhook.url
            );
            grantry
                .record(
                    EventKind::WebhookDisabled,
                    None,
                    None,
                    &Actor::System,
                    detail,
                )
                .await;
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(%error, webhook.id = %webhook.id, "could not disable a webhook endpoint")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Sent {
        Sent::Answered {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn answers_are_judged_as_the_issue_asks() {
        let s = WebhookSettings::default();
        let young = Duration::from_secs(60);
        assert_eq!(
            judge(&answered(204), 1, young, &s).state,
            DeliveryState::Delivered
        );
        assert!(judge(&answered(410), 1, young, &s).gone);
        for retried in [408, 429, 500, 503] {
            assert_eq!(
                judge(&answered(retried), 9, young, &s).state,
                DeliveryState::Pending
            );
        }
        assert_eq!(
            judge(&Sent::NoAnswer("refused".into()), 9, young, &s).state,
            DeliveryState::Pending
        );
        assert_eq!(
            judge(&answered(400), 1, young, &s).state,
            DeliveryState::Pending
        );
        assert_eq!(
            judge(&answered(400), s.client_error_attempts, young, &s).state,
            DeliveryState::Failed
        );
        let old = s.retry_for;
        assert_eq!(
            judge(&answered(503), 40, old, &s).state,
            DeliveryState::Failed
        );
        let told = Sent::Answered {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            judge(&told, 1, young, &s).retry_in,
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retries_back_off_to_their_cap_and_cover_a_day() {
        let s = WebhookSettings::default();
        let first = backoff(1, &s);
        assert!(first >= s.backoff_base.mul_f64(0.8) && first <= s.backoff_base.mul_f64(1.2));
        assert!(backoff(30, &s) <= s.backoff_max.mul_f64(1.2));
        let total: Duration = (1..=40).map(|n| backoff(n, &s)).sum();
        assert!(total >= s.retry_for, "40 retries span {total:?}");
    }
}
