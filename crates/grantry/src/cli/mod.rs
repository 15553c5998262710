//! The command line: every command and flag, with help text that explains it.

pub mod admins;
pub mod api_keys;
pub mod connections;
pub mod events;
pub mod master_keys;
pub mod output;
pub mod profiles;
pub mod webhooks;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "grantry",
    version,
    about = "Grantry: a self-hosted OAuth connection broker for Bitbucket",
    long_about = "Grantry: a self-hosted OAuth connection broker for Bitbucket.\n\nIt keeps the OAuth clients of your Bitbucket integrations (Cloud OAuth consumers, \
                  Data Center incoming application links), walks users through authorization, keeps their \
                  tokens sealed and fresh, and hands applications a valid token in one request.\n\n\
                  Configuration comes from grantry.toml (or --config), then GRANTRY_* environment variables."
)]
pub struct Cli {
    /// A configuration file (default: ./grantry.toml when present).
    #[arg(long, global = true, env = "GRANTRY_CONFIG_FILE")]
    pub config: Option<PathBuf>,
    /// How listings and results are printed.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the broker: the /v1 API, the connect flow and the background refresher.
    Serve(ServeArgs),
    /// See the whole flow work offline: a Bitbucket simulator, a broker, a connected account.
    Demo(DemoArgs),
    /// Apply database migrations (serve does this at start unless --no-migrate).
    Migrate,
    /// Copy everything from one database into another (SQLite into PostgreSQL, to run several nodes).
    #[command(name = "migrate-store")]
    MigrateStore(MigrateStoreArgs),
    /// Application connection profiles: one OAuth client for Bitbucket Cloud or Data Center.
    #[command(subcommand)]
    Profiles(profiles::ProfileCommand),
    /// Connections: authorized accounts and stored credentials.
    #[command(subcommand)]
    Connections(connections::ConnectionCommand),
    /// Make a single-use link that sends a user through authorization.
    Connect(connections::ConnectArgs),
    /// Print a valid access token for a connection (refreshing it first if needed), for scripts.
    Token(connections::TokenArgs),
    /// A git credential helper: git gets a fresh token of one connection for Bitbucket remotes.
    #[command(name = "git-credential")]
    GitCredential(GitCredentialArgs),
    /// API keys that applications present to Grantry.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(api_keys::ApiKeyCommand),
    /// Master keys that seal secrets at rest.
    #[command(subcommand)]
    Keys(master_keys::MasterKeyCommand),
    /// The audit trail, newest first.
    Events(events::EventArgs),
    /// Webhook endpoints: signed messages about every connection's life.
    #[command(subcommand)]
    Webhooks(webhooks::WebhookCommand),
    /// Console admins (who sign in to the web console).
    #[command(subcommand)]
    Admin(admins::AdminCommand),
    /// Print the effective configuration (secrets redacted).
    Config,
}

#[derive(Args)]
#[command(
    after_help = "Sealed values are copied sealed: give the new nodes the same master keys. \
    Rows the target already holds are left alone, so an interrupted copy can be run again. Connect \
    sessions in progress and console sign-ins are not copied."
)]
pub struct MigrateStoreArgs {
    /// The database to copy, e.g. sqlite://data/grantry.db (stop `grantry serve` on it first).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The database to fill, e.g. postgres://grantry@db.internal/grantry (its schema is created).
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Args)]
#[command(
    after_help = "Set it up once per machine (or per repository without --global), for the Bitbucket \
    host your remotes name (bitbucket.org, or your Data Center's address):\n\n  \
    git config --global credential.https://bitbucket.example.com.helper ''\n  \
    git config --global --add credential.https://bitbucket.example.com.helper \\\n    \
    '!grantry git-credential --connection CONNECTION_ID --server https://grantry.internal'\n\n\
    with an app API key in GRANTRY_API_KEY. The empty helper line comes first so that no helper \
    configured before (git's `store` writes tokens to a file) gets Grantry's token. git then asks \
    Grantry for a token whenever it talks to that host. Without --server the local database is \
    read, as `grantry token` does. Tokens go only to https remotes, or http ones on this machine."
)]
pub struct GitCredentialArgs {
    /// The connection whose token git uses.
    #[arg(long, value_name = "ID")]
    pub connection: String,
    /// A Grantry server to ask, with an API key in GRANTRY_API_KEY.
    #[arg(long, env = "GRANTRY_SERVER", value_name = "URL")]
    pub server: Option<url::Url>,
    /// What git asks for (git passes this itself).
    #[arg(value_enum)]
    pub operation: GitOperation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GitOperation {
    Get,
    Store,
    Erase,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides `listen`).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Where browsers reach Grantry (overrides `public_url`).
    #[arg(long)]
    pub public_url: Option<url::Url>,
    /// Refuse to start on an out-of-date schema instead of migrating it.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Port for Grantry (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The simulator's token format: `2026` (rotating refresh tokens) or `legacy`.
    #[arg(long, default_value = "2026")]
    pub mode: String,
    /// Exit after showing the flow instead of serving until Ctrl-C.
    #[arg(long)]
    pub no_wait: bool,
}
