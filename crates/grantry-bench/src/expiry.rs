//! Expiry, with Grantry and the simulator each in a process of their own and both clocks moved
//! forward together (Grantry's `--manual-clock`), the load from this process:
//!
//! - `herd`: many concurrent reads of one expired connection; how many refreshes reach
//!   Bitbucket (one, if single flight holds across the readers).
//! - `mass-expiry`: many connections falling due at the same moment, renewed by the background
//!   refresher at Grantry's default limits; how long that takes against the time left before the
//!   tokens expire, and whether any refresh token was presented twice.

use std::time::{Duration, Instant};

use anyhow::ensure;
use futures_util::StreamExt;
use grantry_core::settings::RefreshSettings;

use crate::processes::{Options, Stack, refreshes};

/// Bitbucket Cloud's access token lifetime (the simulator's default), in seconds.
const TOKEN_LIFETIME: i64 = 7200;
/// Requests in flight at once from this process while connecting users.
const IN_FLIGHT: usize = 32;

pub async fn herd(readers: usize) -> anyhow::Result<()> {
    let mut stack = Stack::start(Options {
        manual_clock: true,
        grantry_flags: vec![("--no-refresher", String::new())],
        ..Options::default()
    })
    .await?;
    let before = refreshes(&stack.http, &stack.sim_url).await?;
    stack.advance(TOKEN_LIFETIME + 800).await?;
    let url = format!("{}/v1/connections/{}/token", stack.base, stack.connection);
    // A client with room for every reader at once: each read its own connection, as many
    // applications' would be.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(readers)
        .build()?;
    let started = Instant::now();
    let answers = futures_util::future::join_all(
        (0..readers).map(|_| http.get(&url).bearer_auth(&stack.key).send()),
    )
    .await;
    let elapsed = started.elapsed();
    let ok = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|r| r.status().is_success()))
        .count();
    let refreshed = refreshes(&stack.http, &stack.sim_url).await? - before;
    let reused = reused_refresh_tokens(&stack).await?;
    println!(
        "thundering herd: {readers} concurrent reads of one expired connection; Grantry and the simulator each a process, the readers in this one"
    );
    println!(
        "  answered 200: {ok}/{readers} in {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    println!("  refreshes at the simulator: {refreshed}; refresh tokens presented twice: {reused}");
    ensure!(ok == readers, "every reader got the token");
    Ok(())
}

pub async fn mass_expiry(count: usize) -> anyhow::Result<()> {
    let settings = RefreshSettings::default();
    let mut stack = Stack::start(Options {
        manual_clock: true,
        users: count,
        ..Options::default()
    })
    .await?;
    let profile = stack.profile_id().await?;
    let started = Instant::now();
    let connected: Vec<String> = futures_util::stream::iter(0..count)
        .map(|n| stack.connect_user(&profile, n))
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    // Alice's, made when the stack started, falls due with them.
    let expected = connected.len() + 1;
    let made_in = started.elapsed().as_secs() as i64 + 1;
    println!(
        "mass expiry: {count} connections made through the consent flow in {made_in} s; Grantry (its default refresh settings) and the simulator each a process"
    );

    // Both clocks to the start of the renewal window of the newest token: every one is due at
    // that moment, the oldest for `made_in` seconds already.
    let lead = settings.lead.as_secs() as i64;
    let before = refreshes(&stack.http, &stack.sim_url).await?;
    stack.advance(TOKEN_LIFETIME - lead + made_in).await?;
    let renewal_started = Instant::now();
    let mut reported = 0;
    let renewed = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let renewed = refreshes(&stack.http, &stack.sim_url).await? - before;
        if renewed as usize >= expected || renewal_started.elapsed() > settings.lead {
            break renewed;
        }
        if renewed / 1000 > reported {
            reported = renewed / 1000;
            eprintln!(
                "  … {renewed} renewed after {:.0} s",
                renewal_started.elapsed().as_secs_f64()
            );
        }
    };
    let took = renewal_started.elapsed().as_secs_f64();
    let reused = reused_refresh_tokens(&stack).await?;
    println!(
        "  all due at once ({lead} s before the newest expires); renewed {renewed}/{expected} in {took:.0} s ({:.0}/s)",
        renewed as f64 / took
    );
    println!(
        "  time to spare before the oldest token would have expired: {:.0} s",
        (lead - made_in) as f64 - took
    );
    println!(
        "  refresh tokens presented twice: {reused}; per-profile limit {} refreshes/s, {} at once, a look every {} ms",
        settings.per_profile_per_second,
        settings.concurrency,
        settings.interval.as_millis()
    );
    ensure!(
        renewed as usize >= expected,
        "not every connection was renewed before expiry"
    );
    Ok(())
}

async fn reused_refresh_tokens(stack: &Stack) -> anyhow::Result<usize> {
    let stats = stack.sim_stats().await?;
    Ok(stats["refresh_token_reuse"].as_array().map_or(0, Vec::len))
}
