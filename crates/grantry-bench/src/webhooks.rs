//! `grantry-bench webhooks`: how fast changes reach a receiver, and what delivering costs token
//! reads. Grantry and the simulator each run in a process of their own; the receiver runs in this
//! one (it answers 204 and notes when each message arrived; verifying signatures is the tests'
//! job). Changes are access-token connections made through the API, each announced as
//! `connection.created`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::load::{clock_ticks_per_second, ensure_programs, wrk};
use crate::processes::{Options, Stack, cpu_ticks};

/// When each connection's message arrived.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let message: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(connection) = message["data"]["connection_id"].as_str()
        && let Ok(mut arrivals) = arrivals.lock()
    {
        arrivals.insert(connection.to_owned(), at);
    }
    StatusCode::NO_CONTENT
}

async fn receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(arrivals);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

struct Changes<'a> {
    stack: &'a Stack,
    profile: String,
    made: Mutex<HashMap<String, Instant>>,
}

impl Changes<'_> {
    /// Makes connection `n`; notes when the API answered (the change is committed then).
    async fn make(&self, n: usize) -> anyhow::Result<()> {
        let body = json!({"profile": self.profile,
            "credential": {"type": "access_token", "token": format!("bench-token-{n}")}});
        let answer: Value = self
            .stack
            .http
            .post(format!("{}/v1/connections", self.stack.base))
            .bearer_auth(&self.stack.key)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = answer["id"].as_str().context("a connection id")?.to_owned();
        self.made
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(id, Instant::now());
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Waits until `count` messages arrived (or a minute passed without progress).
async fn wait_for(arrivals: &Arrivals, count: usize) -> usize {
    let mut last = (0, Instant::now());
    loop {
        let got = arrivals.lock().map_or(0, |a| a.len());
        if got >= count || last.1.elapsed() > Duration::from_secs(60) {
            return got;
        }
        if got > last.0 {
            last = (got, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Token reads of the stack's connection under wrk for `seconds`.
async fn token_reads(stack: &Stack, seconds: u64) -> anyhow::Result<crate::load::Load> {
    let url = format!("{}/v1/connections/{}/token", stack.base, stack.connection);
    let header = format!("Authorization: Bearer {}", stack.key);
    wrk(&url, Some(&header), 64, seconds).await
}

/// Restarts Grantry with webhook delivery off, queues `events` messages, and restarts it with
/// delivery on; answers when it started delivering.
async fn backlog(
    stack: &mut Stack,
    arrivals: &Arrivals,
    profile: &str,
    first: usize,
    events: usize,
) -> anyhow::Result<(Instant, Duration)> {
    stack
        .restart_grantry(&[("--no-webhooks", String::new())])
        .await?;
    let changes = Changes {
        stack,
        profile: profile.to_owned(),
        made: Mutex::default(),
    };
    let started = Instant::now();
    let made: Vec<anyhow::Result<()>> =
        futures_util::stream::iter((first..first + events).map(|n| changes.make(n)))
            .buffer_unordered(32)
            .collect()
            .await;
    made.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let made_in = started.elapsed();
    arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clear();
    stack.restart_grantry(&[]).await?;
    Ok((Instant::now(), made_in))
}

/// How long after `from` the last of `events` messages arrived.
async fn drained(arrivals: &Arrivals, events: usize, from: Instant) -> anyhow::Result<Duration> {
    let arrived = wait_for(arrivals, events).await;
    ensure!(arrived == events, "{arrived} of {events} messages arrived");
    let last = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .values()
        .max()
        .copied()
        .unwrap_or(from);
    Ok(last.duration_since(from))
}

pub async fn run(
    events: usize,
    backlog_size: usize,
    rate: usize,
    seconds: u64,
    per_second: Option<u32>,
) -> anyhow::Result<()> {
    ensure_programs(&[("wrk", "wrk")])?;
    let grantry_flags = per_second
        .map(|limit| vec![("--webhooks-per-second", limit.to_string())])
        .unwrap_or_default();
    let mut stack = Stack::start(Options {
        grantry_flags,
        ..Options::default()
    })
    .await?;
    let arrivals: Arrivals = Arc::default();
    let url = receiver(arrivals.clone()).await?;
    let profiles: Value = stack
        .http
        .get(format!("{}/v1/profiles", stack.base))
        .bearer_auth(&stack.key)
        .send()
        .await?
        .json()
        .await?;
    let profile = profiles["items"][0]["id"]
        .as_str()
        .context("a profile")?
        .to_owned();

    // Token reads with no webhook at all.
    token_reads(&stack, 3).await?;
    let alone = token_reads(&stack, seconds).await?;

    let hook = json!({"url": url, "kinds": ["connection.created"]});
    stack
        .http
        .post(format!("{}/v1/webhooks", stack.base))
        .bearer_auth(&stack.key)
        .json(&hook)
        .send()
        .await?
        .error_for_status()?;

    // Delivery alone: a backlog of `events` messages drained by a fresh process.
    let (from, made_in) = backlog(&mut stack, &arrivals, &profile, 0, events).await?;
    let pid = [stack.grantry.pid()];
    let before = cpu_ticks(&pid);
    let drain = drained(&arrivals, events, from).await?;
    let cpu_us =
        (cpu_ticks(&pid) - before) as f64 * 1_000_000.0 / clock_ticks_per_second() / events as f64;

    // The same while wrk reads tokens, with a backlog large enough to outlast the reads (the
    // reads are measured only while deliveries run).
    let (from, _) = backlog(&mut stack, &arrivals, &profile, events, backlog_size).await?;
    token_reads(&stack, 1).await?;
    let during = token_reads(&stack, seconds).await?;
    let left = backlog_size - arrivals.lock().map_or(0, |a| a.len());
    let drain_with_reads = drained(&arrivals, backlog_size, from).await?;

    // A steady rate of changes: time from each change to its delivery.
    arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clear();
    let changes = Changes {
        stack: &stack,
        profile,
        made: Mutex::default(),
    };
    let steady = rate * seconds as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let pid = [stack.grantry.pid()];
    let own = [std::process::id()];
    let (grantry_before, own_before) = (cpu_ticks(&pid), cpu_ticks(&own));
    let started = Instant::now();
    for n in 0..steady {
        tick.tick().await;
        in_flight.push(changes.make(events + backlog_size + n));
        while let Some(Some(done)) = futures_util::FutureExt::now_or_never(in_flight.next()) {
            done?;
        }
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    let generated_in = started.elapsed();
    drained(&arrivals, steady, started).await?;
    let busy = |ticks: u64| {
        ticks as f64 / clock_ticks_per_second() / started.elapsed().as_secs_f64() * 100.0
    };
    let grantry_cpu = busy(cpu_ticks(&pid) - grantry_before);
    let own_cpu = busy(cpu_ticks(&own) - own_before);
    let latency = {
        let made = changes
            .made
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let mut ms: Vec<f64> = made
            .iter()
            .filter_map(|(id, at)| {
                let got = arrivals.get(id)?;
                Some(got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        ms
    };

    let limit = per_second.map_or("Grantry's default".to_owned(), |l| l.to_string());
    println!(
        "webhooks: Grantry (SQLite) and the simulator each in a process of their own; the receiver (answers 204) in this one; wrk in its own; deliveries per second per node at most: {limit}"
    );
    println!(
        "  delivery: {events} queued messages (made through the API in {:.1} s) delivered in {:.2} s: {:.0} events/s, {cpu_us:.0} µs of Grantry's CPU each",
        made_in.as_secs_f64(),
        drain.as_secs_f64(),
        events as f64 / drain.as_secs_f64()
    );
    println!(
        "  delivery while wrk reads tokens: {backlog_size} in {:.2} s: {:.0} events/s ({left} still queued when the reads ended)",
        drain_with_reads.as_secs_f64(),
        backlog_size as f64 / drain_with_reads.as_secs_f64()
    );
    ensure!(
        left > 0,
        "the backlog ran out before the reads ended: give a larger --backlog"
    );
    println!(
        "  token reads (wrk -t2 -c64 -d{seconds}s): {:.0}/s with no webhook, {:.0}/s while the backlog is delivered = {:.0}% (p99 {:.2} -> {:.2} ms)",
        alone.requests_per_second,
        during.requests_per_second,
        during.requests_per_second / alone.requests_per_second * 100.0,
        alone.p99_ms,
        during.p99_ms
    );
    println!(
        "  steady changes: {steady} made at {:.0}/s (asked {rate}/s); change (API answered) to delivery p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        steady as f64 / generated_in.as_secs_f64(),
        percentile(&latency, 0.5),
        percentile(&latency, 0.99),
        latency.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "    meanwhile Grantry used {grantry_cpu:.0}% of a core, this process (the changes' client and the receiver) {own_cpu:.0}%, of the machine's {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()) * 100
    );
    Ok(())
}
