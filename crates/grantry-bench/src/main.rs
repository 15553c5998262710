//! `grantry-bench`: benchmarks that print figures (never timed tests).
//!
//! - `token-reads`: `GET /v1/connections/{id}/token` (a fresh token, so from memory) beside
//!   `GET /healthz` on the same server, load from `wrk` in its own process.
//! - `herd`: many concurrent reads of one expired connection; counts refreshes at the simulator.
//! - `mass-expiry`: many connections falling due together; times the background refresher
//!   renewing them all at its default limits and checks no refresh token was presented twice.
//!   Both move Grantry's clock (a process of its own, `--manual-clock`) with the simulator's.
//! - `proxy`: Grantry's proxy beside nginx's `proxy_pass`, each a process of its own, with load
//!   from `wrk`: requests per second, latency, time to first byte, memory while streaming.
//! - `scale`: many connections on one Grantry: memory, disk, cold and warm reads, restart time
//!   and a refresh wave, Grantry and the simulator each in a process of its own.
//! - `sign-in-flood`: wrong console passwords from many clients and addresses; Grantry's memory
//!   and the token reads it keeps serving.
//! - `webhooks`: changes to a receiver: events per second, change-to-delivery latency, and token
//!   reads while deliveries run.

mod bare;
mod expiry;
mod load;
mod nginx;
mod processes;
mod proxy;
mod reads;
mod scale;
mod sign_in;
mod webhooks;

use clap::{Parser, Subcommand};

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
        /// Seconds of load per target and round.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Rounds in which the targets take turns; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
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
    /// (used by `proxy`) The least proxy on Grantry's stack, in a process of its own.
    #[command(hide = true)]
    ServeBareProxy(bare::BareProxyArgs),
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

/// The allocator `grantry` itself uses, so `serve-grantry` measures the same server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::TokenReads {
            concurrency,
            seconds,
            rounds,
            token_length,
        } => reads::run(concurrency, seconds, rounds.max(1), token_length).await,
        Command::Herd { readers } => expiry::herd(readers).await,
        Command::MassExpiry { connections } => expiry::mass_expiry(connections).await,
        Command::Proxy {
            connections,
            seconds,
            rounds,
        } => proxy::run(connections, seconds, rounds.max(1)).await,
        Command::ServeSimulator(args) => processes::serve_simulator(args).await,
        Command::ServeGrantry(args) => processes::serve_grantry(*args).await,
        Command::ServeBareProxy(args) => bare::serve(args).await,
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
