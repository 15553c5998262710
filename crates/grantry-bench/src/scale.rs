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
use crate::processes::{Options, Stack, cpu_ticks, refreshes, resident_kib, sim_stats};

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
    let profile = stack.profile_id().await?;
    println!(
        "scale: one Grantry on SQLite (default token cache budget), the simulator and Grantry each in a process of their own, load from this one ({IN_FLIGHT} requests in flight)"
    );

    // 1. Memory.
    let idle_kib = resident_kib(stack.grantry.pid());
    let ids = create_connections(&stack, &profile, connections).await?;
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

    // 3. The wave.
    make_wave(&stack, &profile, wave).await?;
    let (http, sim) = (stack.http.clone(), stack.sim_url.clone());
    let before = refreshes(&http, &sim).await?;
    // Watched from before the restart: the new process starts renewing at once.
    let flags = WAVE_FLAGS.map(|(f, v)| (f, v.to_owned()));
    let (restarted, watched) = tokio::join!(
        stack.restart_grantry(&flags),
        watch_wave(&http, &sim, before, wave)
    );
    restarted?;
    // The process is new: all the CPU time it used is its start and the wave.
    watched?.print(cpu_ticks(&[stack.grantry.pid()]));
    Ok(())
}

/// Flags that let a wave run at the speed Grantry can manage: the per-profile limit (Bitbucket
/// counts per consumer; a real deployment keeps it low) raised, more refreshes at once, claims
/// every 100 ms.
const WAVE_FLAGS: [(&str, &str); 3] = [
    ("--per-profile-per-second", "100000"),
    ("--refresh-concurrency", "64"),
    ("--refresh-interval-ms", "100"),
];

/// `wave` connections through the consent flow, with tokens living `WAVE_TOKEN_TTL`; answers once
/// every one of them is due.
async fn make_wave(stack: &Stack, profile: &str, wave: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let made: Vec<String> = futures_util::stream::iter(0..wave)
        .map(|n| stack.connect_user(profile, n))
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    println!(
        "  made {} connections through the consent flow in {:.1} s",
        made.len(),
        started.elapsed().as_secs_f64()
    );
    // Renewal falls due at most 3/4 of a token's lifetime after it was issued.
    tokio::time::sleep(Duration::from_secs(WAVE_TOKEN_TTL * 3 / 4 + 1)).await;
    Ok(())
}

/// What a refresh wave came to.
struct Wave {
    done: u64,
    took: f64,
    reused: usize,
}

impl Wave {
    /// Prints it, with the CPU ticks the Grantry processes used meanwhile.
    fn print(&self, cpu_ticks: u64) {
        let cpu = cpu_ticks as f64 * (1_000_000.0 / clock_ticks_per_second());
        println!(
            "  refresh wave: {} connections due together (per-profile limit 100000/s, 64 at once per node): {:.1} s from the first to the last, {:.0} refreshes/s, {:.0} µs of Grantry's CPU per refresh; refresh tokens presented twice: {}",
            self.done,
            self.took,
            self.done as f64 / self.took,
            cpu / self.done as f64,
            self.reused
        );
    }
}

/// Waits until the simulator has granted `wave` more refreshes than `before`.
async fn watch_wave(
    http: &reqwest::Client,
    sim: &str,
    before: u64,
    wave: usize,
) -> anyhow::Result<Wave> {
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let done = loop {
        let done = refreshes(http, sim).await? - before;
        if done > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if done as usize >= wave {
            break done;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {done} of {wave} refreshed in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = first.unwrap_or(started).elapsed().as_secs_f64();
    let stats = sim_stats(http, sim).await?;
    let reused = stats["refresh_token_reuse"].as_array().map_or(0, Vec::len);
    Ok(Wave { done, took, reused })
}

/// The same on PostgreSQL with `nodes` Grantry processes behind one public address: RSS per node,
/// the database's size, and the change-feed messages the nodes heard during the wave.
pub async fn run_cluster(
    connections: usize,
    wave: usize,
    server: &str,
    nodes: usize,
) -> anyhow::Result<()> {
    let database = grantry_store_postgres::testing::TestDatabase::create_on(server).await;
    let url = database.url();
    let on_postgres = |more: &[(&'static str, &str)]| {
        let mut flags = vec![("--no-refresher", String::new())];
        flags.extend(more.iter().map(|(f, v)| (*f, (*v).to_owned())));
        flags
    };
    let mut stack = Stack::start(Options {
        users: wave,
        token_ttl: Some(WAVE_TOKEN_TTL),
        grantry_flags: vec![("--database-url", url.clone())],
        ..Options::default()
    })
    .await?;
    // Every node without its refresher until the wave is due, so that nothing renews it early.
    stack.restart_grantry(&on_postgres(&[])).await?;
    let mut others = Vec::new();
    for n in 1..nodes {
        others.push(stack.another_node(n, &on_postgres(&[])).await?);
    }
    let profile = stack.profile_id().await?;
    println!(
        "scale: {nodes} Grantry nodes on one PostgreSQL database (default token cache budget), the simulator and each node in a process of their own, load from this one ({IN_FLIGHT} requests in flight)"
    );
    let pids = |stack: &Stack, others: &[(crate::processes::Server, String)]| {
        std::iter::once(stack.grantry.pid())
            .chain(others.iter().map(|(node, _)| node.pid()))
            .collect::<Vec<u32>>()
    };
    let rss = |pids: &[u32]| {
        pids.iter()
            .map(|pid| format!("{:.0} MB", resident_kib(*pid) as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  RSS per node, idle: {}", rss(&pids(&stack, &others)));
    let ids = create_connections(&stack, &profile, connections).await?;
    let cold = read_through(&stack, &bases_of(&stack, &others), &ids).await?;
    println!(
        "  each read once, the nodes in turn: cold p50 {:.2} ms, p99 {:.2} ms; RSS per node: {}",
        cold.p50,
        cold.p99,
        rss(&pids(&stack, &others))
    );
    let size = database.size().await as f64;
    println!(
        "  database: {:.0} MB, {:.0} bytes per connection",
        size / 1e6,
        size / connections as f64
    );

    make_wave(&stack, &profile, wave).await?;
    let (http, sim) = (stack.http.clone(), stack.sim_url.clone());
    let before = refreshes(&http, &sim).await?;
    let flags = WAVE_FLAGS.map(|(f, v)| (f, v.to_owned()));
    // Every node restarted with its refresher, watched from before the first starts.
    drop(others);
    let restart = async {
        stack.restart_grantry(&flags).await?;
        let mut others = Vec::new();
        for n in 1..nodes {
            others.push(stack.another_node(n, &flags).await?);
        }
        anyhow::Ok(others)
    };
    let (restarted, watched) = tokio::join!(restart, watch_wave(&http, &sim, before, wave));
    let others = restarted?;
    let result = watched?;
    let pids_now = pids(&stack, &others);
    // The processes are new: all the CPU time they used is their start and the wave.
    result.print(cpu_ticks(&pids_now));
    let heard = heard(&stack, &bases_of(&stack, &others)).await?;
    println!(
        "  change-feed messages the nodes heard since they started, all together: {heard:.0} ({:.1} per refresh; a node hears every change made after it started listening, its own included)",
        heard / result.done as f64
    );
    println!("  RSS per node after the wave: {}", rss(&pids_now));
    Ok(())
}

fn bases_of(stack: &Stack, others: &[(crate::processes::Server, String)]) -> Vec<String> {
    std::iter::once(stack.base.clone())
        .chain(others.iter().map(|(_, base)| base.clone()))
        .collect()
}

/// Change-feed messages heard so far, summed over the nodes.
async fn heard(stack: &Stack, bases: &[String]) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for base in bases {
        sum += stack.metric_at(base, "grantry_changes_heard_total").await?;
    }
    Ok(sum)
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

/// Connections holding an access token each (2,600 characters, distinct), made through the API;
/// prints how long that took.
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
    let started = Instant::now();
    let mut ids = Vec::with_capacity(count);
    while let Some(id) = made.next().await {
        ids.push(id?);
        if ids.len() % 20_000 == 0 {
            eprintln!("  … {} created", ids.len());
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "  created {count} connections ({TOKEN_LENGTH}-character tokens) through POST /v1/connections at {} in {took:.1} s ({:.0}/s)",
        stack.base,
        count as f64 / took
    );
    Ok(ids)
}

struct Latency {
    p50: f64,
    p99: f64,
}

/// Reads each connection's token once; the latency of each read, as this process saw it.
async fn read_all(stack: &Stack, ids: &[String]) -> anyhow::Result<Latency> {
    read_through(stack, std::slice::from_ref(&stack.base), ids).await
}

/// The same, spread over several nodes in turn.
async fn read_through(stack: &Stack, bases: &[String], ids: &[String]) -> anyhow::Result<Latency> {
    let mut times: Vec<f64> = futures_util::stream::iter(ids.iter().enumerate())
        .map(|(n, id)| async move {
            let base = &bases[n % bases.len()];
            let started = Instant::now();
            let answer = stack
                .http
                .get(format!("{base}/v1/connections/{id}/token"))
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
