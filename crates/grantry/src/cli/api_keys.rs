//! `grantry api-keys …`: keys applications call the API with.

use clap::{Subcommand, ValueEnum};
use grantry_core::ids::ApiKeyId;
use grantry_core::store::Role;
use grantry_core::{Actor, Grantry};
use grantry_http::views::ApiKeyView;
use secrecy::ExposeSecret;

use super::Output;
use super::output::{print, table};

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; it is printed once and only its digest is kept.
    Create {
        /// What it is for, e.g. `backup-service`.
        #[arg(long)]
        name: String,
        /// `app`: connect sessions, connections and tokens. `admin`: also profiles, keys, events.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List API keys (never the keys themselves).
    List,
    /// Revoke an API key; requests with it are refused from then on.
    Revoke { id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    App,
}

pub async fn api_keys(
    grantry: &Grantry,
    command: ApiKeyCommand,
    output: Output,
) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { name, role } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::App => Role::App,
            };
            let created = grantry.create_api_key(&name, role, &Actor::Cli).await?;
            let secret = created.secret.expose_secret().to_owned();
            let mut view = ApiKeyView::from(created.record);
            view.key = Some(secret.clone());
            print(output, &view, || {
                format!(
                    "{secret}\n\nAPI key `{}` ({}) created. This is the only time it is shown.",
                    view.name, view.role
                )
            })
        }
        ApiKeyCommand::List => {
            let views: Vec<ApiKeyView> = grantry
                .list_api_keys()
                .await?
                .into_iter()
                .map(Into::into)
                .collect();
            let rows = views
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.name.clone(),
                        k.role.to_owned(),
                        k.hint.clone(),
                        k.revoked_at.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect::<Vec<_>>();
            print(output, &views, || {
                table(&["ID", "NAME", "ROLE", "KEY", "REVOKED"], &rows)
            })
        }
        ApiKeyCommand::Revoke { id } => {
            grantry
                .revoke_api_key(&ApiKeyId::parse(&id)?, &Actor::Cli)
                .await?;
            print(output, &serde_json::json!({"revoked": id}), || {
                format!("Revoked {id}.")
            })
        }
    }
}
