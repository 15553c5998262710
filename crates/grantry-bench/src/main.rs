//! `grantry-bench`: benchmarks that print figures (never timed tests).
//!
//! - `token-reads`: `GET /v1/connections/{id}/token` (a fresh token, so from memory) beside
//!   `GET /healthz` on the same server, load from `wrk` in its own process.
//! - `herd`: many concurrent reads of one expired connection; counts refreshes at the simulator.
//! - `mass-expiry`: many connections expiring together; times the background refresher renewing
//!   them all and checks no refresh token was presented twice.
//! - `proxy`: Grantry's proxy beside nginx's `proxy_pass`, each a process of its own, with load
//!   from `wrk`: requests per second, latency, time to first byte, memory while streaming.
//! - `scale`: many connections on one Grantry: memory, disk, cold and warm reads, restart time
//!   and a refresh wave, Grantry and the simulator each in a process of its own.
//! - `sign-in-flood`: wrong console passwords from many clients and addresses; Grantry's memory
//!   and the token reads it keeps serving.
//! - `webhooks`: changes to a receiver: events per second, change-to-delivery latency, and token
//!   reads while deliveries run.

mod harness;
mod load;
mod processes;
mod proxy;
mod reads;
mod scale;
mod sign_in;
mod webhooks;

use std::time::{Duration, Instant};

use anyhow::ensure;
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use harness::{Bench, Setup};

#[derive(Parser)]
#[command(
    name = "grantry-bench",
    about = "Grantry benchmarks; each prints its figures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Token reads of a fresh token against /healthz, side by side.
    TokenReads {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The access tokens' length (the simulator's default: Bitbucket's 2026 length).
        #[arg(long)]
        token_length: Option<usize>,
    },
    /// Concurrent reads of one expired connection; how many refreshes reach Bitbucket.
    Herd {
        #[arg(long, default_value_t = 1000)]
        readers: usize,
    },
    /// Connections expiring together, renewed by the background refresher.
    MassExpiry {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
    /// GET /2.0/user straight to the simulator, through nginx and through Grantry (wrk), then
    /// a 16 MiB and a 1 GiB answer through both.
    Proxy {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds of load per target and round.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Rounds in which the targets take turns; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// (used by the others) The simulator alone, in a process of its own.
    #[command(hide = true)]
    ServeSimulator(processes::SimulatorArgs),
    /// (used by the others) Grantry alone, in a process of its own.
    #[command(hide = true)]
    ServeGrantry(Box<processes::GrantryArgs>),
    /// N connections on one Grantry (SQLite): memory and disk per connection, cold and warm
    /// reads, restart to ready, and a refresh wave of connections due together.
    Scale {
        #[arg(long, default_value_t = 100_000)]
        connections: usize,
        /// Connections made through the consent flow and refreshed together.
        #[arg(long, default_value_t = 10_000)]
        wave: usize,
        /// Run on PostgreSQL instead: a throwaway database on the server at this URL (any
        /// database there), with `--nodes` Grantry processes.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
    /// Many clients sending wrong console passwords from many addresses: Grantry's memory and
    /// its token reads meanwhile.
    SignInFlood {
        #[arg(long, default_value_t = 64)]
        clients: u32,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Guess the real admin's password from one address instead (throttling), then time
        /// the admin's own sign-in from another.
        #[arg(long)]
        guess: bool,
    },
    /// Webhook delivery: a burst of changes (events per second, change-to-delivery p50/p99),
    /// then a steady rate of changes while wrk reads tokens (against token reads alone).
    Webhooks {
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Messages queued for the token reads to run beside; must outlast them.
        #[arg(long, default_value_t = 40_000)]
        backlog: usize,
        /// Grantry's limit on deliveries started per second (its default when absent; 0: none).
        #[arg(long)]
        per_second: Option<u32>,
        /// Changes per second during the token reads.
        #[arg(long, default_value_t = 1000)]
        rate: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

async fn herd(readers: usize) -> anyhow::Result<()> {
    let bench = Bench::start(Setup {
        manual_clock: true,
        refresher: false,
        users: 0,
    })
    .await?;
    let profile = bench.profile().await?;
    let connection = bench.connect(&profile, None).await?;
    bench.advance(8000).await?;
    let url = format!("{}/v1/connections/{connection}/token", bench.base);
    let started = Instant::now();
    let answers = futures_util::future::join_all(
        (0..readers).map(|_| bench.http.get(&url).bearer_auth(&bench.key).send()),
    )
    .await;
    let elapsed = started.elapsed();
    let ok = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|r| r.status().is_success()))
        .count();
    let stats = bench.stats().await?;
    let refreshes = &stats["counts"]["token"]["refresh_token"]["ok"];
    let reused = stats["refresh_token_reuse"].as_array().map_or(0, Vec::len);
    println!("thundering herd: {readers} concurrent reads of one expired connection");
    println!(
        "  answered 200: {ok}/{readers} in {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    println!("  refreshes at the simulator: {refreshes}; refresh tokens presented twice: {reused}");
    Ok(())
}

async fn mass_expiry(count: usize) -> anyhow::Result<()> {
    let bench = Bench::start(Setup {
        manual_clock: true,
        refresher: true,
        users: count,
    })
    .await?;
    let profile = bench.profile().await?;
    let started = Instant::now();
    let users: Vec<String> = (0..count).map(|n| format!("user{n}")).collect();
    let connected: Vec<anyhow::Result<String>> =
        futures_util::stream::iter(users.iter().map(|user| bench.connect(&profile, Some(user))))
            .buffer_unordered(32)
            .collect()
            .await;
    let connected = connected
        .into_iter()
        .collect::<anyhow::Result<std::collections::HashSet<_>>>()?;
    ensure!(
        connected.len() == count,
        "{} distinct connections for {count} users",
        connected.len()
    );
    println!(
        "mass expiry: {count} connections made through the consent flow in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let settings = &bench.grantry.settings.refresh;
    let lead = settings.lead.as_secs();
    bench.advance(7200 - lead as i64).await?;
    let renewal_started = Instant::now();
    let mut reported = 0;
    let last = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let last = bench.stats().await?["counts"]["token"]["refresh_token"]["ok"]
            .as_u64()
            .unwrap_or(0);
        if last as usize >= count || renewal_started.elapsed() > settings.lead {
            break last;
        }
        if last / 1000 > reported {
            reported = last / 1000;
            eprintln!(
                "  … {last} renewed after {:.0} s",
                renewal_started.elapsed().as_secs_f64()
            );
        }
    };
    let took = renewal_started.elapsed().as_secs_f64();
    let stats = bench.stats().await?;
    let reused = stats["refresh_token_reuse"].as_array().map_or(0, Vec::len);
    println!(
        "  all due at once ({} s before expiry); renewed {last}/{count} in {took:.0} s ({:.0}/s)",
        lead,
        last as f64 / took
    );
    println!(
        "  time to spare before the tokens would have expired: {:.0} s",
        lead as f64 - took
    );
    println!(
        "  refresh tokens presented twice: {reused}; per-profile limit {} refreshes/s, {} at once",
        settings.per_profile_per_second, settings.concurrency
    );
    ensure!(
        last as usize == count,
        "not every connection was renewed before expiry"
    );
    Ok(())
}

/// The allocator `grantry` itself uses, so `serve-grantry` measures the same server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::TokenReads {
            concurrency,
            seconds,
            token_length,
        } => reads::run(concurrency, seconds, token_length).await,
        Command::Herd { readers } => herd(readers).await,
        Command::MassExpiry { connections } => mass_expiry(connections).await,
        Command::Proxy {
            connections,
            seconds,
            rounds,
        } => proxy::run(connections, seconds, rounds.max(1)).await,
        Command::ServeSimulator(args) => processes::serve_simulator(args).await,
        Command::ServeGrantry(args) => processes::serve_grantry(*args).await,
        Command::Scale {
            connections,
            wave,
            postgres: None,
            ..
        } => scale::run(connections, wave).await,
        Command::Scale {
            connections,
            wave,
            postgres: Some(server),
            nodes,
        } => scale::run_cluster(connections, wave, &server, nodes).await,
        Command::SignInFlood {
            clients,
            seconds,
            guess,
        } => sign_in::run(clients, seconds, guess).await,
        Command::Webhooks {
            events,
            backlog,
            rate,
            seconds,
            per_second,
        } => webhooks::run(events, backlog, rate, seconds, per_second).await,
    }
}
