//! `grantry profiles …`

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use grantry_core::catalog::ProviderKind;
use grantry_core::profiles::{NewProfile, ProfileChanges};
use grantry_core::store::ProfileRecord;
use grantry_core::{Actor, Grantry};
use grantry_http::views::ProfileView;
use secrecy::SecretString;

use super::Output;
use super::output::{fields, print, table};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// List profiles.
    List,
    /// Show a profile (by id or name) and what to configure at Bitbucket.
    Show { profile: String },
    /// Create a profile. The secret is read from --secret-file or standard input, never a flag.
    Create(CreateArgs),
    /// Edit a profile: only the options given change. A new key keeps the connections.
    Edit(EditArgs),
    /// Delete a profile with its connections and their tokens.
    Delete {
        profile: String,
        /// Confirm: the connections cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Profile name (unique).
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// `bitbucket-cloud` or `bitbucket-datacenter`.
    #[arg(long, value_parser = parse_provider)]
    provider: ProviderKind,
    /// The OAuth consumer's Key (Cloud) or the link's Client ID (Data Center).
    #[arg(long)]
    key: String,
    /// Read the secret from this file instead of standard input.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Data Center: the instance's base URL.
    #[arg(long)]
    base_url: Option<String>,
    /// A required scope; repeat for several (e.g. --scope repository:write --scope pullrequest).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A URL users may be sent back to after connecting; repeat for several.
    #[arg(long = "return-url")]
    return_urls: Vec<String>,
    /// Cloud: the consumer is private (allows client-credentials connections).
    #[arg(long)]
    private: bool,
    /// Save connections without the application's confirmation. Then anyone who gets hold of a
    /// connect link (a user forwarded it) can connect their own account under that user.
    #[arg(long)]
    no_confirm: bool,
}

#[derive(Args)]
pub struct EditArgs {
    profile: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    key: Option<String>,
    /// Read a new secret from standard input (or --secret-file).
    #[arg(long)]
    new_secret: bool,
    #[arg(long)]
    secret_file: Option<PathBuf>,
    #[arg(long)]
    base_url: Option<String>,
    /// Replaces the required scopes; repeat for several.
    #[arg(long = "scope")]
    scopes: Option<Vec<String>>,
    /// Replaces the allowed return URLs; repeat for several.
    #[arg(long = "return-url")]
    return_urls: Option<Vec<String>>,
    #[arg(long)]
    private: Option<bool>,
    /// Whether the application confirms each connection (`true` or `false`).
    #[arg(long)]
    confirm_connections: Option<bool>,
}

fn parse_provider(text: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(text)
        .ok_or_else(|| "expected bitbucket-cloud or bitbucket-datacenter".to_owned())
}

/// A secret from a file, or from standard input (prompting when it is a terminal).
pub fn read_secret(file: Option<&PathBuf>, what: &str) -> anyhow::Result<SecretString> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprint!("{what} (input is shown; prefer --secret-file or a pipe): ");
                std::io::stderr().flush()?;
            }
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            line
        }
    };
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!("no {what} given");
    }
    Ok(SecretString::from(secret))
}

fn text(view: &ProfileView) -> String {
    let mut out = fields(&[
        ("id", view.id.clone()),
        ("name", view.name.clone()),
        ("provider", view.provider.to_owned()),
        ("key", view.key.clone()),
        ("scopes", view.required_scopes.join(" ")),
        ("callback URL", view.callback_url.clone()),
        (
            "problem",
            view.problem
                .as_ref()
                .map_or("none".into(), |p| p.message.clone()),
        ),
    ]);
    out.push_str("\n\nSet it up at Bitbucket:\n");
    for (n, step) in view.setup.steps.iter().enumerate() {
        out.push_str(&format!("  {}. {}", n + 1, step.text));
        if let Some(value) = &step.value {
            out.push_str(&format!(" {value}"));
        }
        out.push('\n');
    }
    out
}

fn view(grantry: &Grantry, profile: ProfileRecord) -> ProfileView {
    let setup = grantry.setup_guide(&profile);
    ProfileView::new(profile, setup)
}

pub async fn run(grantry: &Grantry, command: ProfileCommand, output: Output) -> anyhow::Result<()> {
    let actor = Actor::Cli;
    match command {
        ProfileCommand::List => {
            let views: Vec<ProfileView> = grantry
                .list_profiles()
                .await?
                .into_iter()
                .map(|p| view(grantry, p))
                .collect();
            let rows = views
                .iter()
                .map(|v| {
                    vec![
                        v.id.clone(),
                        v.name.clone(),
                        v.provider.to_owned(),
                        v.problem.as_ref().map_or("-".into(), |p| p.message.clone()),
                    ]
                })
                .collect::<Vec<_>>();
            print(output, &views, || {
                table(&["ID", "NAME", "PROVIDER", "PROBLEM"], &rows)
            })
        }
        ProfileCommand::Show { profile } => {
            let v = view(grantry, grantry.find_profile(&profile).await?);
            print(output, &v, || text(&v))
        }
        ProfileCommand::Create(args) => {
            let secret = read_secret(args.secret_file.as_ref(), "OAuth secret")?;
            let new = NewProfile {
                name: args.name,
                description: args.description,
                provider: args.provider,
                key: args.key,
                secret,
                base_url: args.base_url,
                required_scopes: args.scopes,
                allowed_return_urls: args.return_urls,
                private: args.private,
                confirm_connections: !args.no_confirm,
            };
            let v = view(grantry, grantry.create_profile(new, &actor).await?);
            print(output, &v, || text(&v))
        }
        ProfileCommand::Edit(args) => {
            let secret = if args.new_secret || args.secret_file.is_some() {
                Some(read_secret(args.secret_file.as_ref(), "new OAuth secret")?)
            } else {
                None
            };
            let changes = ProfileChanges {
                name: args.name,
                description: args.description,
                provider: None,
                key: args.key,
                secret,
                base_url: args.base_url.map(Some),
                required_scopes: args.scopes,
                allowed_return_urls: args.return_urls,
                private: args.private,
                confirm_connections: args.confirm_connections,
            };
            let v = view(
                grantry,
                grantry
                    .update_profile(&args.profile, changes, &actor)
                    .await?,
            );
            print(output, &v, || text(&v))
        }
        ProfileCommand::Delete { profile, yes } => {
            let found = grantry.find_profile(&profile).await?;
            if !yes {
                bail!(
                    "this deletes profile `{}` and all its connections; run again with --yes",
                    found.name
                );
            }
            let (deleted, connections) = grantry.delete_profile(found.id.as_str(), &actor).await?;
            let result = serde_json::json!({"deleted": deleted.id.to_string(), "connections_deleted": connections});
            print(output, &result, || {
                format!(
                    "Deleted profile `{}` and {connections} connection(s).",
                    deleted.name
                )
            })
        }
    }
}
