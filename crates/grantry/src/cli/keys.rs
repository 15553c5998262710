//! `grantry api-keys …`, `grantry keys …` (master keys) and `grantry events`.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use grantry_core::ids::{ApiKeyId, ConnectionId};
use grantry_core::store::{EventFilter, PageRequest, Role};
use grantry_core::{Actor, Grantry};
use grantry_crypto::{KeyError, KeyId, KeySource, KeyStore, MasterKey};
use grantry_http::views::{AdminView, ApiKeyView, EventView};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::ExposeSecret;

use super::Output;
use super::output::{fields, print, table};
use crate::runtime::Backend;

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

#[derive(Subcommand)]
pub enum MasterKeyCommand {
    /// Show where master keys come from and how many sealed values each holds.
    Status,
    /// Write a new primary key to the key file and re-seal every secret under it, in batches,
    /// while servers keep running. With GRANTRY_MASTER_KEY, re-seal under its first key.
    Rotate,
    /// Remove older keys that no sealed value uses any more from the key file (after `rotate`).
    Retire,
}

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

#[derive(Args)]
pub struct EventArgs {
    /// Profile id or name.
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    connection: Option<String>,
    /// An event kind, or a prefix such as `connection.`
    #[arg(long)]
    kind: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
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

fn source_text(keys: &KeyStore) -> String {
    match keys.source() {
        KeySource::Env(_) => "GRANTRY_MASTER_KEY".to_owned(),
        KeySource::File(path) => path.display().to_string(),
    }
}

pub async fn master_keys(
    grantry: &Grantry,
    keys: &KeyStore,
    backend: &Backend,
    command: MasterKeyCommand,
    output: Output,
) -> anyhow::Result<()> {
    match command {
        MasterKeyCommand::Status => {
            let counts = grantry.sealed_by_key().await?;
            let value = serde_json::json!({"source": source_text(keys), "primary": keys.primary_id().to_string(), "sealed_by_key": counts});
            print(output, &value, || {
                let mut text = fields(&[
                    ("source", source_text(keys)),
                    ("primary key", keys.primary_id().to_string()),
                ]);
                for (key, n) in &counts {
                    text.push_str(&format!("\n  {key}: {n} sealed value(s)"));
                }
                text
            })
        }
        MasterKeyCommand::Rotate => rotate(grantry, keys, backend, output).await,
        MasterKeyCommand::Retire => retire(grantry, keys, backend, output).await,
    }
}

/// Older keys no sealed value uses, by the store's count now.
async fn unused_keys(grantry: &Grantry, keys: &KeyStore) -> anyhow::Result<Vec<KeyId>> {
    let counts = grantry.sealed_by_key().await?;
    let primary = keys.primary_id();
    Ok(keys
        .keyring()
        .keys()
        .iter()
        .map(MasterKey::id)
        .filter(|id| *id != primary && counts.get(&id.to_string()).copied().unwrap_or(0) == 0)
        .collect())
}

async fn retire(
    grantry: &Grantry,
    keys: &KeyStore,
    backend: &Backend,
    output: Output,
) -> anyhow::Result<()> {
    let unused = unused_keys(grantry, keys).await?;
    let mut removed = keys.retire(&unused)?;
    if !removed.is_empty() {
        backend.announce_key_rotation().await?;
        // A node that had not yet picked up the newest primary may have sealed a value under an
        // older key meanwhile: look again after a moment, and put back any key that is in use.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let counts = grantry.sealed_by_key().await?;
        let (back, gone): (Vec<MasterKey>, Vec<MasterKey>) = removed
            .into_iter()
            .partition(|key| counts.get(&key.id().to_string()).copied().unwrap_or(0) > 0);
        if !back.is_empty() {
            keys.restore(&back)?;
            backend.announce_key_rotation().await?;
        }
        removed = gone;
    }
    let removed: Vec<String> = removed.iter().map(|k| k.id().to_string()).collect();
    let left: Vec<String> = keys
        .keyring()
        .keys()
        .iter()
        .map(|k| k.id().to_string())
        .collect();
    let value = serde_json::json!({"removed": removed, "kept": left});
    print(output, &value, || {
        let mut text = if removed.is_empty() {
            "No key removed: every older key still seals a value (run `grantry keys rotate`), \
             or there is none."
                .to_owned()
        } else {
            format!(
                "Removed {} from the key file. Back up the key file again.",
                removed.join(", ")
            )
        };
        text.push_str(&format!("\nKeys kept: {}.", left.join(", ")));
        text
    })
}

async fn rotate(
    grantry: &Grantry,
    keys: &KeyStore,
    backend: &Backend,
    output: Output,
) -> anyhow::Result<()> {
    match keys.add_primary() {
        Ok(id) => {
            eprintln!(
                "New primary key {id} written to {}. Back up the key file again.",
                source_text(keys)
            );
            // Nodes on PostgreSQL re-read their key file when told; every node also notices a
            // changed file within two seconds by itself.
            backend.announce_key_rotation().await?;
            eprintln!("Waiting a few seconds for running servers to pick it up…");
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Err(KeyError::EnvCannotRotate) => {
            eprintln!(
                "Keys come from GRANTRY_MASTER_KEY: re-sealing everything under its first key, {}.",
                keys.primary_id()
            );
        }
        Err(error) => return Err(error.into()),
    }
    let total: u64 = grantry.sealed_by_key().await?.values().sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} re-sealing [{bar:40}] {pos}/{len} values ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let report = grantry.reseal_all(&|n| bar.inc(n), &Actor::Cli).await?;
    bar.finish_and_clear();
    let value = serde_json::json!({
        "primary": keys.primary_id().to_string(), "resealed": report.resealed, "raced": report.raced,
        "passes": report.passes, "left_under_older_keys": report.left,
    });
    print(output, &value, || {
        format!(
            "Re-sealed {} value(s) under {} in {} pass(es); {} left under older keys.\n\
             Once every node has picked up the new key, `grantry keys retire` removes the older ones.",
            report.resealed,
            keys.primary_id(),
            report.passes,
            report.left
        )
    })
}

pub async fn events(grantry: &Grantry, args: EventArgs, output: Output) -> anyhow::Result<()> {
    let profile_id = match &args.profile {
        Some(reference) => Some(grantry.find_profile(reference).await?.id),
        None => None,
    };
    let filter = EventFilter {
        profile_id,
        connection_id: args
            .connection
            .as_deref()
            .map(ConnectionId::parse)
            .transpose()?,
        kind: args.kind,
    };
    let page = PageRequest {
        after: None,
        limit: args.limit.clamp(1, 1000),
    };
    let views: Vec<EventView> = grantry
        .list_events(&filter, &page)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let rows = views
        .iter()
        .map(|e| {
            vec![
                e.at.clone(),
                e.kind.clone(),
                e.actor.clone(),
                e.detail.clone(),
            ]
        })
        .collect::<Vec<_>>();
    print(output, &views, || {
        table(&["AT", "KIND", "ACTOR", "DETAIL"], &rows)
    })
}
