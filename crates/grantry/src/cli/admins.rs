//! `grantry admin …`: console admins.

use clap::Subcommand;
use grantry_core::{Actor, Grantry};
use grantry_http::views::AdminView;

use super::Output;
use super::output::{print, table};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a console admin; the password is read from standard input (at least 12 characters).
    Create {
        #[arg(long)]
        username: String,
    },
    /// List console admins.
    List,
    /// Set a new password, read from standard input; the admin is signed out everywhere.
    Password {
        #[arg(long)]
        username: String,
    },
    /// Remove an admin and end their console sessions (the last admin cannot be removed).
    Remove {
        #[arg(long)]
        username: String,
    },
    /// While no admin exists: print a new one-time link to create the first in the browser.
    SetupLink,
}

pub async fn admins(
    grantry: &Grantry,
    command: AdminCommand,
    output: Output,
) -> anyhow::Result<()> {
    match command {
        AdminCommand::Create { username } => {
            let password = super::profiles::read_secret(None, "Password for the new admin")?;
            let admin = grantry
                .create_admin(&username, &password, &Actor::Cli)
                .await?;
            let value = serde_json::json!({"id": admin.id.to_string(), "username": admin.username});
            print(output, &value, || {
                format!("Admin `{}` created; sign in at /ui/login.", admin.username)
            })
        }
        AdminCommand::List => {
            let views: Vec<AdminView> = grantry
                .list_admins()
                .await?
                .iter()
                .map(Into::into)
                .collect();
            let rows = views
                .iter()
                .map(|a| vec![a.username.clone(), a.created_at.clone()])
                .collect::<Vec<_>>();
            print(output, &views, || table(&["USERNAME", "CREATED"], &rows))
        }
        AdminCommand::Password { username } => {
            let password = super::profiles::read_secret(None, "New password")?;
            grantry
                .change_admin_password(&username, &password, &Actor::Cli)
                .await?;
            let value = serde_json::json!({"username": username.trim(), "sessions_ended": true});
            print(output, &value, || {
                format!(
                    "Password of `{}` changed; they were signed out of the console everywhere.",
                    username.trim()
                )
            })
        }
        AdminCommand::Remove { username } => {
            grantry.remove_admin(&username, &Actor::Cli).await?;
            let value = serde_json::json!({"username": username.trim(), "removed": true});
            print(output, &value, || {
                format!(
                    "Admin `{}` removed; their console sessions ended.",
                    username.trim()
                )
            })
        }
        AdminCommand::SetupLink => match grantry.setup_link().await? {
            Some(link) => print(output, &serde_json::json!({"url": link}), || link.clone()),
            None => anyhow::bail!(
                "an admin exists already: sign in, or create more with `grantry admin create`"
            ),
        },
    }
}
