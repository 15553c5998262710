//! `grantry-bench proxy`: Grantry's proxy beside nginx's `proxy_pass` in front of the same
//! simulator, each a process of its own, with load from `wrk` (another process): requests per
//! second and latency at 64 connections, time to first byte of a 16 MiB answer, and Grantry's
//! memory while a 1 GiB answer streams through it.
//!
//! A third proxy runs beside them: the least one can write on Grantry's own stack (see
//! `bare.rs`). Its distance to nginx is the stack's; the rest of Grantry's is Grantry's own work.
//!
//! The simulator and Grantry run as processes of this binary (see `processes.rs`); `wrk` and
//! `nginx` come from Debian, installed when missing.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::load::{Load, clock_ticks_per_second, ensure_programs, wrk};
use crate::nginx::Nginx;
use crate::processes::{Options, Server, Stack, cpu_ticks, free_port, resident_kib, with_children};

const MIB: u64 = 1024 * 1024;

/// One round's load and CPU microseconds per request: straight, nginx, the bare proxy, Grantry.
type Round = [(Load, f64); 4];

/// nginx in front of the simulator, adding the token header, streaming as Grantry does.
async fn nginx(dir: &Path, port: u16, simulator: &str, token: &str) -> anyhow::Result<Nginx> {
    let upstream = simulator.trim_start_matches("http://");
    let block = format!(
        r#"  upstream bitbucket {{ server {upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://bitbucket;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer {token}";
      proxy_buffering off;
    }}
  }}"#
    );
    crate::nginx::start(dir, port, &block).await
}

/// Median time to the first byte of `url`'s answer over `runs` requests, and the answer's size.
async fn first_byte(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    runs: usize,
) -> anyhow::Result<(f64, u64)> {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let mut request = http.get(url);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let started = Instant::now();
        let mut response = request.send().await?;
        ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let first = response.chunk().await?.context("an empty answer")?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        size = first.len() as u64;
        while let Some(chunk) = response.chunk().await? {
            size += chunk.len() as u64;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], size))
}

/// Streams `url` to nowhere while sampling `pid`'s memory; answers (bytes, seconds, peak KiB).
async fn stream_watching(
    http: &reqwest::Client,
    url: &str,
    bearer: &str,
    pid: u32,
) -> anyhow::Result<(u64, f64, u64)> {
    let started = Instant::now();
    let mut response = http.get(url).bearer_auth(bearer).send().await?;
    ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let (mut bytes, mut peak, mut sampled) = (0u64, 0u64, Instant::now());
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        if sampled.elapsed() > Duration::from_millis(50) {
            peak = peak.max(resident_kib(pid));
            sampled = Instant::now();
        }
    }
    Ok((
        bytes,
        started.elapsed().as_secs_f64(),
        peak.max(resident_kib(pid)),
    ))
}

pub async fn run(connections: usize, seconds: u64, rounds: usize) -> anyhow::Result<()> {
    ensure_programs(&[("wrk", "wrk"), ("nginx", "nginx")])?;
    let dir = tempfile::tempdir()?;
    let stack = Stack::start(Options::default()).await?;
    let Stack {
        sim_url,
        grantry,
        base,
        key,
        connection,
        http,
        ..
    } = &stack;
    for (path, size) in [("big16.bin", 16 * MIB), ("big1g.bin", 1024 * MIB)] {
        let body = json!({"branch": "main", "files": {path: {"size": size}}});
        let made = http
            .post(format!("{sim_url}/_sim/repositories/acme/widget/commits"))
            .json(&body)
            .send()
            .await?;
        ensure!(
            made.status().is_success(),
            "making {path}: {}",
            made.status()
        );
    }
    let token: Value = http
        .get(format!("{base}/v1/connections/{connection}/token"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("a token")?
        .to_owned();
    let nginx_port = free_port()?;
    let nginx = nginx(dir.path(), nginx_port, sim_url, &token).await?;
    let bare_port = free_port()?;
    let bare_listen = format!("127.0.0.1:{bare_port}");
    let bare = Server::start(&[
        "serve-bare-proxy",
        "--listen",
        &bare_listen,
        "--upstream",
        sim_url,
        "--token",
        &token,
    ])
    .await?;

    let bearer_token = format!("Authorization: Bearer {token}");
    let bearer_key = format!("Authorization: Bearer {key}");
    let targets = [
        (
            "straight to the simulator",
            format!("{sim_url}/2.0/user"),
            bearer_token.clone(),
        ),
        (
            "nginx proxy_pass + token header",
            format!("http://127.0.0.1:{nginx_port}/2.0/user"),
            String::new(),
        ),
        (
            "bare hyper proxy + token header",
            format!("http://{bare_listen}/2.0/user"),
            String::new(),
        ),
        (
            "Grantry /v1/proxy",
            format!("{base}/v1/proxy/{connection}/2.0/user"),
            bearer_key.clone(),
        ),
    ];
    // CPU per request of the process in the middle (none when straight), from its clock ticks.
    let middles: [Vec<u32>; 4] = [
        Vec::new(),
        with_children(nginx.pid()),
        vec![bare.pid()],
        vec![grantry.pid()],
    ];
    let tick_us = 1_000_000.0 / clock_ticks_per_second();
    for (_, url, header) in &targets {
        wrk(
            url,
            (!header.is_empty()).then_some(header.as_str()),
            connections,
            3,
        )
        .await?;
    }
    println!(
        "GET /2.0/user, wrk -t2 -c{connections} -d{seconds}s, {rounds} rounds; simulator, nginx, the bare proxy, Grantry and wrk each a process, on this machine"
    );
    // Rounds take turns, so a slower minute of a shared machine weighs on both sides alike; the
    // figures reported are each one's median over the rounds.
    let mut rounds_seen: Vec<Round> = Vec::new();
    for round in 1..=rounds {
        let mut results = Vec::new();
        for ((name, url, header), middle) in targets.iter().zip(&middles) {
            let header = (!header.is_empty()).then_some(header.as_str());
            let before = cpu_ticks(middle);
            let load = wrk(url, header, connections, seconds).await?;
            let used = (cpu_ticks(middle) - before) as f64 * tick_us;
            ensure!(
                load.errors == 0,
                "{name}: {} answers were not 2xx",
                load.errors
            );
            let per_request = used / (load.requests_per_second * seconds as f64);
            results.push((load, per_request));
        }
        let [direct, nginx, bare, grantry] =
            Round::try_from(results).map_err(|_| anyhow::anyhow!("four targets"))?;
        let rate = |load: &(Load, f64)| load.0.requests_per_second;
        println!(
            "  round {round}: straight {:>6.0}/s, nginx {:>6.0}/s, bare {:>6.0}/s = {:.0}%, Grantry {:>6.0}/s = {:.0}%",
            rate(&direct),
            rate(&nginx),
            rate(&bare),
            rate(&bare) / rate(&nginx) * 100.0,
            rate(&grantry),
            rate(&grantry) / rate(&nginx) * 100.0
        );
        rounds_seen.push([direct, nginx, bare, grantry]);
    }
    let median = |pick: &dyn Fn(&Round) -> f64| {
        let mut values: Vec<f64> = rounds_seen.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("medians over the rounds:");
    for (n, (name, _, _)) in targets.iter().enumerate() {
        let cpu = median(&|r| r[n].1);
        let cpu = if cpu > 0.0 {
            format!("   {cpu:>5.1} µs CPU/request")
        } else {
            String::new()
        };
        println!(
            "  {name:<34} {:>9.0} requests/s   p50 {:>6.2} ms   p99 {:>6.2} ms{cpu}",
            median(&|r| r[n].0.requests_per_second),
            median(&|r| r[n].0.p50_ms),
            median(&|r| r[n].0.p99_ms),
        );
    }
    for (n, name) in [(2, "bare proxy"), (3, "Grantry")] {
        println!(
            "  {name} / nginx: {:.0}% of the requests per second, p99 {:.2}x (medians of each round's ratio)",
            median(&|r| r[n].0.requests_per_second / r[1].0.requests_per_second) * 100.0,
            median(&|r| r[n].0.p99_ms / r[1].0.p99_ms)
        );
    }

    let file = "2.0/repositories/acme/widget/src/main/big16.bin";
    let (nginx_first, size) = first_byte(
        http,
        &format!("http://127.0.0.1:{nginx_port}/{file}"),
        None,
        15,
    )
    .await?;
    let (grantry_first, through) = first_byte(
        http,
        &format!("{base}/v1/proxy/{connection}/{file}"),
        Some(key),
        15,
    )
    .await?;
    ensure!(
        size == 16 * MIB && through == size,
        "16 MiB answers arrived whole"
    );
    println!("time to first byte of a 16 MiB answer (median of 15):");
    println!(
        "  nginx {nginx_first:.2} ms, Grantry {grantry_first:.2} ms ({:+.2} ms)",
        grantry_first - nginx_first
    );

    let before = resident_kib(grantry.pid());
    let big =
        format!("{base}/v1/proxy/{connection}/2.0/repositories/acme/widget/src/main/big1g.bin");
    let (bytes, took, peak) = stream_watching(http, &big, key, grantry.pid()).await?;
    ensure!(
        bytes == 1024 * MIB,
        "the 1 GiB answer arrived whole ({bytes} bytes)"
    );
    println!("a 1 GiB answer through Grantry: {:.0} MiB/s", 1024.0 / took);
    println!(
        "  Grantry's resident memory: {} MiB before, {} MiB at most while streaming",
        before / 1024,
        peak / 1024
    );
    Ok(())
}
