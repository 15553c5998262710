//! `grantry-bench token-reads`: `GET /v1/connections/{id}/token` beside `GET /healthz` on the same
//! Grantry, in a process of its own, with load from `wrk` (another process): requests per second,
//! p50 and p99, and Grantry's CPU time per request.

use anyhow::ensure;

use crate::load::{clock_ticks_per_second, ensure_programs, wrk};
use crate::processes::{Options, Stack, cpu_ticks};

pub async fn run(
    connections: usize,
    seconds: u64,
    token_length: Option<usize>,
) -> anyhow::Result<()> {
    ensure_programs(&[("wrk", "wrk")])?;
    let stack = Stack::start(Options {
        token_length,
        ..Options::default()
    })
    .await?;
    let key = format!("Authorization: Bearer {}", stack.key);
    let targets = [
        ("/healthz", format!("{}/healthz", stack.base), None),
        (
            "/v1/connections/{id}/token",
            format!("{}/v1/connections/{}/token", stack.base, stack.connection),
            Some(key.as_str()),
        ),
    ];
    let pid = [stack.grantry.pid()];
    let tick_us = 1_000_000.0 / clock_ticks_per_second();
    let mut results = Vec::new();
    for (name, url, header) in &targets {
        wrk(url, *header, connections, 3).await?;
        let before = cpu_ticks(&pid);
        let load = wrk(url, *header, connections, seconds).await?;
        let cpu = (cpu_ticks(&pid) - before) as f64 * tick_us
            / (load.requests_per_second * seconds as f64);
        ensure!(
            load.errors == 0,
            "{name}: {} answers were not 2xx",
            load.errors
        );
        results.push((name, load, cpu));
    }
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
    let token = token_length.map_or("Bitbucket's 2026 length, over 2,500".to_owned(), |l| {
        l.to_string()
    });
    println!(
        "token reads beside /healthz: wrk -t2 -c{connections} -d{seconds}s from its own process, Grantry in another; access tokens of {token} characters"
    );
    for (name, load, cpu) in &results {
        println!(
            "  {name:<28} {:>9.0} requests/s   p50 {:>5.2} ms   p99 {:>5.2} ms   {cpu:>5.1} µs CPU/request",
            load.requests_per_second, load.p50_ms, load.p99_ms
        );
    }
    let (health, tokens) = (&results[0].1, &results[1].1);
    println!(
        "  token reads: {:.0}% of /healthz's requests per second, p99 {:.2}x",
        tokens.requests_per_second / health.requests_per_second * 100.0,
        tokens.p99_ms / health.p99_ms
    );
    println!("  {from_memory}   (answered from memory)");
    Ok(())
}
