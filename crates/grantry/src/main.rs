//! `grantry`: serve, demo, and the admin command line.

use clap::Parser;
use grantry::cli::{self, Cli, Command};
use grantry::config::{Config, LogConfig, redact_url};
use grantry::runtime::{self, Schema};
use grantry::{demo, git_credential, logging, migrate_store, serve};
use secrecy::ExposeSecret;

fn show_config(config: &Config) {
    let database = match (&config.database_url, &config.database_url_file) {
        (Some(url), _) => redact_url(url.expose_secret()),
        (None, Some(file)) => format!("(from {})", file.display()),
        (None, None) => format!("sqlite://{}", config.data_dir.join("grantry.db").display()),
    };
    let keys = match &config.master_key {
        Some(_) => "GRANTRY_MASTER_KEY (***)".to_owned(),
        None => config.master_key_file().display().to_string(),
    };
    println!("listen          {}", config.listen);
    println!("public_url      {}", config.public_url);
    println!(
        "callback URL    {}/oauth/callback",
        config.public_url.as_str().trim_end_matches('/')
    );
    println!("data_dir        {}", config.data_dir.display());
    println!("database        {database}");
    println!("master keys     {keys}");
    println!(
        "bitbucket cloud {} / {}",
        config.bitbucket_cloud.web_url, config.bitbucket_cloud.api_url
    );
    println!(
        "refresh         margin {} s, lead {} s, lease {} s, {} at once, {}/s per profile",
        config.refresh.margin.as_secs(),
        config.refresh.lead.as_secs(),
        config.refresh.lease.as_secs(),
        config.refresh.concurrency,
        config.refresh.per_profile_per_second
    );
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo(args) = cli.command {
        logging::init(&LogConfig {
            level: "warn".into(),
            ..LogConfig::default()
        });
        return demo::run(args).await;
    }
    if let Command::GitCredential(args) = cli.command {
        // Quiet: git shows what a helper writes to stderr, so only errors go there.
        return git_credential::run(args, cli.config.as_deref()).await;
    }
    let mut config = Config::load(cli.config.as_deref())?;
    logging::init(&config.log);
    let output = cli.output;
    match cli.command {
        Command::Serve(args) => {
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            if let Some(url) = args.public_url {
                config.public_url = url;
            }
            serve::serve(config, !args.no_migrate).await
        }
        Command::Migrate => {
            let backend = runtime::open_store(
                &config.database()?,
                config.database_max_connections,
                Schema::Migrate,
            )
            .await?;
            println!("Schema is at version {}.", backend.schema_version().await?);
            backend.close().await;
            Ok(())
        }
        Command::Config => {
            show_config(&config);
            Ok(())
        }
        Command::MigrateStore(args) => {
            migrate_store::run(&args, config.database_max_connections, output).await
        }
        command => {
            let runtime = runtime::open(&config, Schema::Expect).await?;
            let grantry = &runtime.grantry;
            let result = match command {
                Command::Profiles(command) => cli::profiles::run(grantry, command, output).await,
                Command::Connections(command) => {
                    cli::connections::run(grantry, command, output).await
                }
                Command::Connect(args) => cli::connections::connect(grantry, args, output).await,
                Command::Token(args) => cli::connections::token(grantry, args, output).await,
                Command::ApiKeys(command) => {
                    cli::api_keys::api_keys(grantry, command, output).await
                }
                Command::Keys(command) => {
                    cli::master_keys::master_keys(
                        grantry,
                        &runtime.keys,
                        &runtime.backend,
                        command,
                        output,
                    )
                    .await
                }
                Command::Events(args) => cli::events::events(grantry, args, output).await,
                Command::Webhooks(command) => cli::webhooks::run(grantry, command, output).await,
                Command::Admin(command) => cli::admins::admins(grantry, command, output).await,
                Command::Serve(_)
                | Command::Demo(_)
                | Command::GitCredential(_)
                | Command::Migrate
                | Command::MigrateStore(_)
                | Command::Config => Err(anyhow::anyhow!("this command does not use the store")),
            };
            runtime.backend.close().await;
            result
        }
    }
}

/// mimalloc rather than glibc's allocator: requests are allocated on one runtime thread and freed
/// on another, which glibc serializes on its arena locks (measured with `grantry-bench proxy`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
