//! The `bitbucket-sim` command: run the simulator, check a seed file, or measure it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use bitbucket_sim::{Mode, Seed, SimBuilder, bench};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bitbucket-sim",
    version,
    about = "An offline Bitbucket Cloud and Data Center: OAuth 2, REST scope checks, git, faults",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the simulator (what happens with no subcommand).
    Serve(ServeArgs),
    /// Read a seed file and report the first problem, without starting anything.
    CheckSeed {
        /// The seed file (TOML).
        file: PathBuf,
    },
    /// Measure the token endpoint: refresh grants per second from concurrent clients.
    Bench(bench::BenchArgs),
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one. Only loopback makes sense.
    #[arg(long, default_value = "127.0.0.1:7990", env = "BITBUCKET_SIM_LISTEN")]
    listen: SocketAddr,
    /// A world to load at start: users, workspaces, repositories, consumers, DC links.
    #[arg(long, env = "BITBUCKET_SIM_SEED")]
    seed: Option<PathBuf>,
    /// `2026` (rotating refresh tokens, the default) or `legacy`.
    #[arg(long, value_parser = Mode::parse)]
    mode: Option<Mode>,
    /// Where git repositories are kept (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Grant every Cloud authorization as this user, without showing the consent page.
    #[arg(long)]
    auto_approve: Option<String>,
}

fn load_seed(path: &PathBuf) -> anyhow::Result<Seed> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read seed file {}", path.display()))?;
    Ok(Seed::parse(&path.display().to_string(), &text)?)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut builder = SimBuilder::new().listen(args.listen);
    if let Some(path) = &args.seed {
        builder = builder.seed(load_seed(path)?);
    }
    if let Some(mode) = args.mode {
        builder = builder.mode(mode);
    }
    if let Some(dir) = args.data_dir {
        builder = builder.data_dir(dir);
    }
    let running = builder.start().await?;
    if let Some(user) = args.auto_approve {
        let mut settings = running.sim.settings().clone();
        settings.auto_approve = Some(user);
        running.sim.replace_settings(settings);
    }
    let mode = running.sim.settings().mode;
    let url = running.url().to_owned();
    println!("bitbucket-sim listening on {url} (mode {mode})");
    println!("  Cloud authorize   {url}/site/oauth2/authorize");
    println!("  Cloud token       {url}/site/oauth2/access_token");
    println!("  Cloud REST        {url}/2.0/");
    println!("  Data Center base  {}", running.dc_url());
    println!("  control API       {url}/_sim/  (world, settings, clock, faults, stats)");
    running.run_until_ctrl_c().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BITBUCKET_SIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::CheckSeed { file }) => {
            let seed = load_seed(&file)?;
            let git = bitbucket_sim::git::GitStore::temporary()?;
            let world = bitbucket_sim::world::World::new(git);
            seed.apply(&world, 0).map_err(anyhow::Error::msg)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Some(Command::Bench(args)) => bench::run(args).await,
    }
}
