//! `grantry-bench scale`: one Grantry on SQLite with many connections, the simulator and Grantry
//! each in a process of their own, the load from this one.
//!
//! 1. Memory: N connections created through the API with tokens of Bitbucket's 2026 length, each
//!    read once (cold: from the store), then the last ones read again (warm: from memory); RSS,
//!    bytes per connection in memory and on disk, read latency.
//! 2. Restart: Grantry killed and started again on the same data (without its refresher); time
//!    until it answers a token read.
//! 3. Refresh wave: `wave` connections made through the consent flow with short-lived tokens,
//!    left until every one is due, then Grantry restarted with its refresher and the per-profile
//!    limit raised; refreshes per second and Grantry's CPU time per refresh.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::load::clock_ticks_per_second;
use crate::processes::{Options, Stack, cpu_ticks, resident_kib};

/// Bitbucket Cloud's access tokens in 2026 run past 2,500 characters (FACTS.md).
const TOKEN_LENGTH: usize = 2_600;
/// Requests in flight at once from this process.
const IN_FLIGHT: usize = 32;
/// The simulator's access token lifetime for the wave's connections, in seconds: short, so the
/// wave falls due within the benchmark (Grantry renews a quarter of a lifetime ahead, plus
/// jitter).
const WAVE_TOKEN_TTL: u64 = 40;

pub async fn run(connections: usize, wave: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start(Options {
        users: wave,
        token_ttl: Some(WAVE_TOKEN_TTL),
        ..Options::default()
    })
    .await?;
    let profile = profile_id(&stack).await?;
    println!(
        "scale: one Grantry on SQLite (default token cache budget), the simulator and Grantry each in a process of their own, load from this one ({IN_FLIGHT} requests in flight)"
    );

    // 1. Memory.
    let idle_kib = resident_kib(stack.grantry.pid());
    let started = Instant::now();
    let ids = create_connections(&stack, &profile, connections).await?;
    let created = started.elapsed().as_secs_f64();
    println!(
        "  created {connections} connections ({TOKEN_LENGTH}-character tokens) through POST /v1/connections in {created:.1} s ({:.0}/s)",
        connections as f64 / created
    );
    let cold = read_all(&stack, &ids).await?;
    let read_kib = resident_kib(stack.grantry.pid());
    // A working set read again and again. The cache resists scans: a token read once (as every
    // one just was) is the first to go, one read again is kept; so the set is read twice before
    // the pass that is measured.
    let warm_ids = &ids[ids.len().saturating_sub(10_000)..];
    for _ in 0..2 {
        read_all(&stack, warm_ids).await?;
    }
    let from_memory_before = stack.metric(CACHE_READS).await?;
    let warm = read_all(&stack, warm_ids).await?;
    let from_memory = stack.metric(CACHE_READS).await? - from_memory_before;
    let entries = stack.metric("grantry_token_cache_entries").await?;
    let cached = stack.metric("grantry_token_cache_bytes").await?;
    let disk = disk_bytes(&stack)?;
    println!(
        "  RSS: {:.0} MB idle, {:.0} MB after every connection was read once; {:.0} bytes per connection in memory",
        idle_kib as f64 / 1024.0,
        read_kib as f64 / 1024.0,
        (read_kib.saturating_sub(idle_kib) * 1024) as f64 / connections as f64
    );
    println!(
        "  token cache: {entries:.0} tokens in {:.1} MB; on disk: {:.0} MB, {:.0} bytes per connection",
        cached / 1e6,
        disk as f64 / 1e6,
        disk as f64 / connections as f64
    );
    println!(
        "  cold reads (each connection once): p50 {:.2} ms, p99 {:.2} ms",
        cold.p50, cold.p99
    );
    println!(
        "  warm reads (a working set of the last {}, read twice before; {from_memory:.0} of them answered from memory): p50 {:.2} ms, p99 {:.2} ms",
        warm_ids.len(),
        warm.p50,
        warm.p99
    );

    // 2. Restart on the same data, this time without the refresher, so the wave's connections
    // (made next) all fall due before anything renews them.
    let started = Instant::now();
    stack
        .restart_grantry(&[("--no-refresher", String::new())])
        .await?;
    let probe = ids.first().context("no connections")?;
    answered_after_restart(&stack, probe, started).await?;
    println!(
        "  restart (SIGKILL, start on the same data) to the first token answered: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // 3a. The wave's connections, through the consent flow, with tokens living WAVE_TOKEN_TTL.
    let started = Instant::now();
    let wave_ids: Vec<String> = futures_util::stream::iter(0..wave)
        .map(|n| connect_user(&stack, &profile, n))
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    println!(
        "  made {} connections through the consent flow in {:.1} s",
        wave_ids.len(),
        started.elapsed().as_secs_f64()
    );
    // Renewal falls due at most 3/4 of a token's lifetime after it was issued.
    tokio::time::sleep(Duration::from_secs(WAVE_TOKEN_TTL * 3 / 4 + 1)).await;
    let refreshed_before = refreshes(&stack).await?;
    stack
        .restart_grantry(&[
            ("--per-profile-per-second", "100000".into()),
            ("--refresh-concurrency", "64".into()),
            ("--refresh-interval-ms", "100".into()),
        ])
        .await?;
    let cpu_at_start = cpu_ticks(&[stack.grantry.pid()]);

    // 3b. The wave.
    let wave_started = Instant::now();
    let mut first: Option<Instant> = None;
    let done = loop {
        let done = refreshes(&stack).await? - refreshed_before;
        if done > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if done as usize >= wave {
            break done;
        }
        if wave_started.elapsed() > Duration::from_secs(600) {
            bail!("only {done} of {wave} refreshed in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = first.map_or(wave_started, |f| f).elapsed().as_secs_f64();
    let cpu = (cpu_ticks(&[stack.grantry.pid()]) - cpu_at_start) as f64
        * (1_000_000.0 / clock_ticks_per_second());
    let stats: Value = stack
        .http
        .get(format!("{}/_sim/stats", stack.sim_url))
        .send()
        .await?
        .json()
        .await?;
    let reused = stats["refresh_token_reuse"].as_array().map_or(0, Vec::len);
    println!(
        "  refresh wave: {done} connections due together (per-profile limit 100000/s, 64 at once): {took:.1} s from the first to the last, {:.0} refreshes/s, {:.0} µs of Grantry's CPU per refresh; refresh tokens presented twice: {reused}",
        done as f64 / took,
        cpu / done as f64
    );
    Ok(())
}

const CACHE_READS: &str = "grantry_token_reads_total{outcome=\"cache\"}";

/// Waits until Grantry, just restarted, answers a token read.
async fn answered_after_restart(stack: &Stack, id: &str, started: Instant) -> anyhow::Result<()> {
    loop {
        let answer = stack
            .http
            .get(format!("{}/v1/connections/{id}/token", stack.base))
            .bearer_auth(&stack.key)
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return Ok(());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "Grantry did not answer within 2 minutes of a restart"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn profile_id(stack: &Stack) -> anyhow::Result<String> {
    let profiles: Value = stack
        .http
        .get(format!("{}/v1/profiles", stack.base))
        .bearer_auth(&stack.key)
        .send()
        .await?
        .json()
        .await?;
    Ok(profiles["items"][0]["id"]
        .as_str()
        .context("the bench profile")?
        .to_owned())
}

/// Connections holding an access token each (2,600 characters, distinct), made through the API.
async fn create_connections(
    stack: &Stack,
    profile: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let filler = "x".repeat(TOKEN_LENGTH - 16);
    let mut made = futures_util::stream::iter(0..count)
        .map(|n| {
            let body = json!({
                "profile": profile,
                "end_user_id": format!("scale-{n}"),
                "credential": {"type": "access_token", "token": format!("{n:016}{filler}")},
            });
            async move {
                let answer = stack
                    .http
                    .post(format!("{}/v1/connections", stack.base))
                    .bearer_auth(&stack.key)
                    .json(&body)
                    .send()
                    .await?;
                let status = answer.status();
                let made: Value = answer.json().await?;
                ensure!(status.is_success(), "creating connection {n}: {made}");
                made["id"]
                    .as_str()
                    .map(str::to_owned)
                    .context("a connection id")
            }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut ids = Vec::with_capacity(count);
    while let Some(id) = made.next().await {
        ids.push(id?);
        if ids.len() % 20_000 == 0 {
            eprintln!("  … {} created", ids.len());
        }
    }
    Ok(ids)
}

struct Latency {
    p50: f64,
    p99: f64,
}

/// Reads each connection's token once; the latency of each read, as this process saw it.
async fn read_all(stack: &Stack, ids: &[String]) -> anyhow::Result<Latency> {
    let mut times: Vec<f64> = futures_util::stream::iter(ids)
        .map(|id| async move {
            let started = Instant::now();
            let answer = stack
                .http
                .get(format!("{}/v1/connections/{id}/token", stack.base))
                .bearer_auth(&stack.key)
                .send()
                .await?;
            let status = answer.status();
            answer.bytes().await?;
            ensure!(status.is_success(), "reading {id}: {status}");
            Ok(started.elapsed().as_secs_f64() * 1000.0)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<anyhow::Result<f64>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Ok(Latency {
        p50: at(0.50),
        p99: at(0.99),
    })
}

/// The SQLite database with its write-ahead log.
fn disk_bytes(stack: &Stack) -> anyhow::Result<u64> {
    let dir = stack.data.path().join("grantry");
    Ok(std::fs::read_dir(&dir)?
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("grantry.db")
        })
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum())
}

/// Refreshes the simulator has granted so far.
async fn refreshes(stack: &Stack) -> anyhow::Result<u64> {
    let stats: Value = stack
        .http
        .get(format!("{}/_sim/stats", stack.sim_url))
        .send()
        .await?
        .json()
        .await?;
    Ok(stats["counts"]["token"]["refresh_token"]["ok"]
        .as_u64()
        .unwrap_or(0))
}

/// `user{n}` connects through the consent form (a browser's redirects, followed by hand).
async fn connect_user(stack: &Stack, profile: &str, n: usize) -> anyhow::Result<String> {
    // A client of its own: the flow is bound to the browser by a cookie.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()?;
    let session: Value = http
        .post(format!("{}/v1/connect-sessions", stack.base))
        .bearer_auth(&stack.key)
        .json(&json!({"profile": profile, "end_user_id": format!("wave-{n}")}))
        .send()
        .await?
        .json()
        .await?;
    let link = session["url"].as_str().context("a connect link")?;
    let authorize = location(http.get(link).send().await?)?;
    let mut form: Vec<(String, String)> = url::Url::parse(&authorize)?
        .query_pairs()
        .into_owned()
        .collect();
    form.extend([
        ("username".into(), format!("user{n}")),
        ("password".into(), "pw".into()),
        ("decision".into(), "grant".into()),
    ]);
    let consent = http
        .post(format!("{}/site/oauth2/authorize", stack.sim_url))
        .form(&form)
        .send()
        .await?;
    let callback = location(consent)?;
    let landed = url::Url::parse(&location(http.get(callback).send().await?)?)?;
    landed
        .query_pairs()
        .find(|(name, _)| name == "connection_id")
        .map(|(_, id)| id.into_owned())
        .with_context(|| format!("user{n} did not connect: {landed}"))
}

fn location(response: reqwest::Response) -> anyhow::Result<String> {
    let status = response.status();
    Ok(response
        .headers()
        .get("location")
        .with_context(|| format!("expected a redirect, got {status}"))?
        .to_str()?
        .to_owned())
}
