//! `grantry connections …`, `grantry connect`, `grantry token`.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use grantry_core::clock::{Rfc3339, rfc3339};
use grantry_core::connect::NewSession;
use grantry_core::connections::{NewConnection, NewCredential};
use grantry_core::ids::ConnectionId;
use grantry_core::store::{ConnectionFilter, ConnectionStatus, PageRequest};
use grantry_core::{Actor, Grantry};
use grantry_http::views::{ConnectionView, TokenView};
use secrecy::ExposeSecret;

use super::Output;
use super::output::{fields, print, table};
use super::profiles::read_secret;

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// List connections, optionally of one profile, end user or status.
    List(ListArgs),
    /// Show one connection.
    Show { connection: String },
    /// Delete a connection and its tokens.
    Delete { connection: String },
    /// Refresh now, whatever the token's expiry.
    Refresh { connection: String },
    /// Call Bitbucket's identity endpoint with the connection's token and print the answer.
    Test { connection: String },
    /// Connect without a browser: client credentials, an API token or an access token.
    Add(AddArgs),
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    end_user: Option<String>,
    /// active, needs_reauth, insufficient_scopes or failing.
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Continue after this connection id (the last one of the previous page).
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Args)]
pub struct AddArgs {
    /// Profile id or name.
    #[arg(long)]
    profile: String,
    #[arg(long)]
    end_user: Option<String>,
    /// Run the private consumer's client credentials grant.
    #[arg(long, conflicts_with_all = ["api_token_email", "access_token"])]
    client_credentials: bool,
    /// Store an Atlassian API token for this account email (token from stdin or --token-file).
    #[arg(long, group = "static_credential")]
    api_token_email: Option<String>,
    /// Store a repository, project or workspace access token (token from stdin or --token-file).
    #[arg(long, group = "static_credential")]
    access_token: bool,
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// When the API token or access token expires (RFC 3339, e.g. 2027-06-01T00:00:00Z): Grantry
    /// warns ahead of it and marks the connection needs_reauth then.
    #[arg(long, requires = "static_credential")]
    expires_at: Option<String>,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// Profile id or name.
    profile: String,
    /// Your own id for the user who will connect.
    #[arg(long)]
    end_user: Option<String>,
    /// Where to send the browser afterwards (must be one of the profile's allowed return URLs).
    #[arg(long)]
    return_url: Option<String>,
    /// Reconnect this connection (it keeps its id).
    #[arg(long)]
    reconnect: Option<String>,
}

#[derive(Args)]
pub struct TokenArgs {
    connection: String,
    /// Print the whole Authorization header value (`Bearer …` or `Basic …`).
    #[arg(long)]
    header: bool,
}

fn connection_rows(views: &[ConnectionView]) -> Vec<Vec<String>> {
    views
        .iter()
        .map(|v| {
            vec![
                v.id.clone(),
                v.account.username.clone().unwrap_or_default(),
                v.status.to_owned(),
                v.credential.to_owned(),
                v.expires_at.clone().unwrap_or_else(|| "-".into()),
                v.end_user_id.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect()
}

fn detail(v: &ConnectionView) -> String {
    fields(&[
        ("id", v.id.clone()),
        ("profile", v.profile_id.clone()),
        ("account", v.account.username.clone().unwrap_or_default()),
        ("status", v.status.to_owned()),
        (
            "reason",
            v.status_reason.clone().unwrap_or_else(|| "-".into()),
        ),
        ("scopes", v.granted_scopes.join(" ")),
        (
            "expires",
            v.expires_at.clone().unwrap_or_else(|| "never".into()),
        ),
        (
            "refreshed",
            v.refreshed_at.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "last error",
            v.last_error.clone().unwrap_or_else(|| "-".into()),
        ),
    ])
}

pub async fn run(
    grantry: &Grantry,
    command: ConnectionCommand,
    output: Output,
) -> anyhow::Result<()> {
    let actor = Actor::Cli;
    match command {
        ConnectionCommand::List(args) => list(grantry, args, output).await,
        ConnectionCommand::Show { connection } => {
            let v = ConnectionView::from(
                grantry
                    .connection(&ConnectionId::parse(&connection)?)
                    .await?,
            );
            print(output, &v, || detail(&v))
        }
        ConnectionCommand::Delete { connection } => {
            let gone = grantry
                .delete_connection(&ConnectionId::parse(&connection)?, &actor)
                .await?;
            print(
                output,
                &serde_json::json!({"deleted": gone.id.to_string()}),
                || format!("Deleted {}.", gone.id),
            )
        }
        ConnectionCommand::Refresh { connection } => {
            let id = ConnectionId::parse(&connection)?;
            let refreshed = match grantry.refresh_now(&id, &actor).await {
                Err(grantry_core::CoreError::RefreshNotSaved(id)) => {
                    save_or_fail(grantry, &id).await?
                }
                other => other?,
            };
            let v = ConnectionView::from(refreshed);
            print(output, &v, || detail(&v))
        }
        ConnectionCommand::Test { connection } => {
            let answer = grantry
                .test_connection(&ConnectionId::parse(&connection)?)
                .await?;
            let value = serde_json::json!({"status": answer.status, "body": answer.body});
            print(output, &value, || {
                format!("HTTP {}\n{}", answer.status, answer.body)
            })
        }
        ConnectionCommand::Add(args) => add(grantry, args, output).await,
    }
}

async fn list(grantry: &Grantry, args: ListArgs, output: Output) -> anyhow::Result<()> {
    let status = match args.status.as_deref() {
        Some(text) => Some(
            ConnectionStatus::parse(text)
                .ok_or_else(|| anyhow::anyhow!("unknown status `{text}`"))?,
        ),
        None => None,
    };
    let profile_id = match &args.profile {
        Some(reference) => Some(grantry.find_profile(reference).await?.id),
        None => None,
    };
    let filter = ConnectionFilter {
        profile_id,
        end_user_id: args.end_user,
        status,
    };
    let page = PageRequest {
        after: args.cursor,
        limit: args.limit.clamp(1, 1000),
    };
    let views: Vec<ConnectionView> = grantry
        .list_connections(&filter, &page)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let rows = connection_rows(&views);
    print(output, &views, || {
        table(
            &[
                "ID",
                "ACCOUNT",
                "STATUS",
                "CREDENTIAL",
                "EXPIRES",
                "END USER",
            ],
            &rows,
        )
    })
}

async fn add(grantry: &Grantry, args: AddArgs, output: Output) -> anyhow::Result<()> {
    let expires_at = match &args.expires_at {
        Some(text) => Some(Rfc3339::parse(text).map(|at| at.0).ok_or_else(|| {
            anyhow::anyhow!("--expires-at: an RFC 3339 time, e.g. 2027-06-01T00:00:00Z")
        })?),
        None => None,
    };
    let credential = if args.client_credentials {
        NewCredential::ClientCredentials
    } else if let Some(email) = args.api_token_email {
        let token = read_secret(args.token_file.as_ref(), "API token")?;
        NewCredential::ApiToken {
            email,
            token,
            expires_at,
        }
    } else if args.access_token {
        let token = read_secret(args.token_file.as_ref(), "access token")?;
        NewCredential::AccessToken { token, expires_at }
    } else {
        bail!(
            "say which credential: --client-credentials, --api-token-email EMAIL or --access-token"
        );
    };
    let new = NewConnection {
        profile: args.profile,
        end_user_id: args.end_user,
        credential,
    };
    let v = ConnectionView::from(grantry.create_connection(new, &Actor::Cli).await?);
    print(output, &v, || detail(&v))
}

pub async fn connect(grantry: &Grantry, args: ConnectArgs, output: Output) -> anyhow::Result<()> {
    let new = NewSession {
        profile: args.profile,
        end_user_id: args.end_user,
        return_url: args.return_url,
        connection_id: args
            .reconnect
            .as_deref()
            .map(ConnectionId::parse)
            .transpose()?,
    };
    let created = grantry.create_session(new, &Actor::Cli).await?;
    let expires = rfc3339(created.record.expires_at);
    let value = serde_json::json!({"id": created.record.id.to_string(), "url": created.url, "expires_at": expires});
    print(output, &value, || {
        format!(
            "Open this link in the user's browser (single use, valid until {expires}):\n{}",
            created.url
        )
    })
}

pub async fn token(grantry: &Grantry, args: TokenArgs, output: Output) -> anyhow::Result<()> {
    let token = grantry
        .token(&ConnectionId::parse(&args.connection)?)
        .await?;
    let view = TokenView::at(&token, grantry.clock.now());
    let line = if args.header {
        view.authorization.to_string()
    } else {
        token.access_token.expose_secret().to_owned()
    };
    print(output, &view, || line)
}

/// This process ends soon: a refresh the database did not take is written now, trying for ten
/// seconds, or reported as the failure it is (Bitbucket has retired the old refresh token).
async fn save_or_fail(
    grantry: &Grantry,
    id: &ConnectionId,
) -> anyhow::Result<grantry_core::store::ConnectionRecord> {
    for _ in 0..20 {
        if grantry.flush_pending_writes().await == 0 {
            return Ok(grantry.connection(id).await?);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    anyhow::bail!(
        "Bitbucket renewed the token of {id}, but the database did not take the new tokens for \
         10 s. Make the database writable again; if it stays so past Bitbucket's ten-minute \
         grace, the user will have to reconnect."
    )
}
