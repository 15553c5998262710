//! `grantry-bench token-reads`: `GET /v1/connections/{id}/token` beside `GET /healthz` on the same
//! Grantry, in a process of its own, with load from `wrk` (another process): requests per second,
//! p50 and p99, and Grantry's CPU time per request.
//!
//! Beside them, nginx serves the very bytes of those two answers as static files. Its ratio is
//! what the bigger answer alone costs on this machine (the kernel and `wrk` handle ~5 KB instead
//! of a few bytes, on the same two cores), whatever the server: a floor under Grantry's.

use anyhow::{Context, ensure};

use crate::load::{Load, clock_ticks_per_second, ensure_programs, wrk};
use crate::processes::{Options, Stack, cpu_ticks, free_port, with_children};

/// One target's load and CPU microseconds per request of the process serving it.
type Measured = (Load, f64);

pub async fn run(
    connections: usize,
    seconds: u64,
    rounds: usize,
    token_length: Option<usize>,
) -> anyhow::Result<()> {
    ensure_programs(&[("wrk", "wrk"), ("nginx", "nginx")])?;
    let stack = Stack::start(Options {
        token_length,
        ..Options::default()
    })
    .await?;
    let key = format!("Authorization: Bearer {}", stack.key);
    let token_url = format!("{}/v1/connections/{}/token", stack.base, stack.connection);
    let health_url = format!("{}/healthz", stack.base);

    // The same bytes as files, for nginx.
    let dir = tempfile::tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    let token_bytes = answer(&stack, &token_url, true).await?;
    std::fs::write(files.join("token"), &token_bytes)?;
    std::fs::write(
        files.join("healthz"),
        answer(&stack, &health_url, false).await?,
    )?;
    let port = free_port()?;
    let block = format!(
        r#"  server {{
    listen 127.0.0.1:{port};
    root {};
    default_type application/json;
    etag off;
  }}"#,
        files.display()
    );
    let nginx = crate::nginx::start(dir.path(), port, &block)
        .await
        .context("nginx for the static answers")?;

    let grantry = vec![stack.grantry.pid()];
    let nginx_pids = with_children(nginx.pid());
    let targets = [
        ("Grantry /healthz", health_url.clone(), None, &grantry),
        (
            "Grantry token read",
            token_url.clone(),
            Some(key.as_str()),
            &grantry,
        ),
        (
            "nginx, /healthz's bytes",
            format!("http://127.0.0.1:{port}/healthz"),
            None,
            &nginx_pids,
        ),
        (
            "nginx, the token answer's bytes",
            format!("http://127.0.0.1:{port}/token"),
            None,
            &nginx_pids,
        ),
    ];
    for (_, url, header, _) in &targets {
        wrk(url, *header, connections, 3).await?;
    }
    let tick_us = 1_000_000.0 / clock_ticks_per_second();
    let token = token_length.map_or("Bitbucket's 2026 length, over 2,500".to_owned(), |l| {
        l.to_string()
    });
    println!(
        "token reads beside /healthz: wrk -t2 -c{connections} -d{seconds}s from its own process, Grantry in another, {rounds} rounds in turns; access tokens of {token} characters, a {}-byte answer",
        token_bytes.len()
    );
    // Rounds take turns, so a slower minute of a shared machine weighs on every target alike;
    // the figures reported are medians over the rounds.
    let mut seen: Vec<Vec<Measured>> = Vec::new();
    for round in 1..=rounds {
        let mut results = Vec::new();
        for (name, url, header, pids) in &targets {
            let before = cpu_ticks(pids);
            let load = wrk(url, *header, connections, seconds).await?;
            let cpu = (cpu_ticks(pids) - before) as f64 * tick_us
                / (load.requests_per_second * seconds as f64);
            ensure!(
                load.errors == 0,
                "{name}: {} answers were not 2xx",
                load.errors
            );
            results.push((load, cpu));
        }
        println!(
            "  round {round}: Grantry {:.0}% of /healthz, nginx {:.0}%",
            ratio(&results, 1, 0) * 100.0,
            ratio(&results, 3, 2) * 100.0
        );
        seen.push(results);
    }
    let median = |pick: &dyn Fn(&Vec<Measured>) -> f64| {
        let mut values: Vec<f64> = seen.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("medians over the rounds:");
    for (n, (name, ..)) in targets.iter().enumerate() {
        println!(
            "  {name:<32} {:>9.0} requests/s   p50 {:>5.2} ms   p99 {:>5.2} ms   {:>5.1} µs CPU/request",
            median(&|r| r[n].0.requests_per_second),
            median(&|r| r[n].0.p50_ms),
            median(&|r| r[n].0.p99_ms),
            median(&|r| r[n].1),
        );
    }
    println!(
        "  Grantry: token reads {:.0}% of /healthz's requests per second, p99 {:.2}x",
        median(&|r| ratio(r, 1, 0)) * 100.0,
        median(&|r| r[1].0.p99_ms / r[0].0.p99_ms)
    );
    println!(
        "  nginx, the same two answers as static files: {:.0}% (what the bigger answer alone costs here)",
        median(&|r| ratio(r, 3, 2)) * 100.0
    );
    let metrics = stack
        .http
        .get(format!("{}/metrics", stack.base))
        .send()
        .await?
        .text()
        .await?;
    let from_memory = metrics
        .lines()
        .find(|l| l.starts_with("grantry_token_reads_total{outcome=\"cache\"}"))
        .unwrap_or_default()
        .to_owned();
    println!("  {from_memory}   (answered from memory)");
    Ok(())
}

/// The body Grantry answers at `url`, with the stack's API key or without.
async fn answer(stack: &Stack, url: &str, with_key: bool) -> anyhow::Result<Vec<u8>> {
    let mut request = stack.http.get(url);
    if with_key {
        request = request.bearer_auth(&stack.key);
    }
    let response = request.send().await?;
    ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.bytes().await?.to_vec())
}

/// Requests per second of target `a` over target `b`'s, in one round.
fn ratio(round: &[Measured], a: usize, b: usize) -> f64 {
    round[a].0.requests_per_second / round[b].0.requests_per_second
}
