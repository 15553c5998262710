//! `grantry migrate-store`: copies everything from one store into another, typically a team's
//! SQLite file into the PostgreSQL its new nodes will share.
//!
//! Rows are copied as they are. Sealed values stay sealed: their associated data names the table,
//! column and row id, which the copy keeps, so they open under the same master keys (the command
//! itself never needs the keys). A row the target already holds, by id, is left alone, so a copy
//! that was interrupted can simply be run again. What is not copied, on purpose: connect sessions
//! in progress (short-lived; users start again), console sign-ins (admins sign in again) and
//! leases (no node holds one in the new database).

use grantry_core::store::{
    Announcement, ConnectionFilter, EventFilter, PageRequest, ProfileRecord, Store, StoreError,
};
use serde::Serialize;

/// Rows read per query.
const PAGE: u32 = 500;

/// What one kind of row came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Written into the target.
    pub copied: u64,
    /// Already in the target (an earlier run), left as they were.
    pub present: u64,
}

impl Tally {
    fn count(&mut self, copied: bool) {
        if copied {
            self.copied += 1;
        } else {
            self.present += 1;
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub profiles: Tally,
    pub connections: Tally,
    pub api_keys: Tally,
    pub admins: Tally,
    pub webhooks: Tally,
    pub events: Tally,
}

/// Progress, for a progress bar: a stage begins (with its row count when known), rows go by.
pub enum Step {
    Begin {
        what: &'static str,
        total: Option<u64>,
    },
    Rows(u64),
}

/// Copies every profile, connection, API key, admin and event from `from` into `to`.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    progress: &(dyn Fn(Step) + Sync),
) -> anyhow::Result<Report> {
    let mut report = Report::default();

    let profiles = from.profiles().await?;
    progress(Step::Begin {
        what: "profiles",
        total: Some(profiles.len() as u64),
    });
    for profile in &profiles {
        report.profiles.count(copy_profile(profile, to).await?);
        progress(Step::Rows(1));
    }

    let total = from
        .connection_counts()
        .await?
        .iter()
        .map(|(_, _, n)| n)
        .sum();
    progress(Step::Begin {
        what: "connections",
        total: Some(total),
    });
    let mut after = None;
    loop {
        let page = PageRequest {
            after: after.take(),
            limit: PAGE,
        };
        let connections = from
            .connections(&ConnectionFilter::default(), &page)
            .await?;
        for connection in &connections {
            let copied = if to.connection(&connection.id).await?.is_some() {
                false
            } else {
                to.insert_connection(connection, &[]).await.map_err(|error| match error {
                    StoreError::Conflict(_) => anyhow::anyhow!(
                        "the target already holds another connection for account `{}` of profile {}; \
                         migrate-store copies into an empty database, or one it filled before",
                        connection.account_key,
                        connection.profile_id
                    ),
                    error => error.into(),
                })?;
                true
            };
            report.connections.count(copied);
        }
        progress(Step::Rows(connections.len() as u64));
        match connections.last() {
            Some(last) if connections.len() == PAGE as usize => after = Some(last.id.to_string()),
            _ => break,
        }
    }

    let keys = from.api_keys().await?;
    let held: Vec<_> = to.api_keys().await?.into_iter().map(|k| k.id).collect();
    progress(Step::Begin {
        what: "API keys",
        total: Some(keys.len() as u64),
    });
    for key in &keys {
        let copied = !held.contains(&key.id);
        if copied {
            to.insert_api_key(key).await?;
        }
        report.api_keys.count(copied);
        progress(Step::Rows(1));
    }

    let admins = from.admins().await?;
    progress(Step::Begin {
        what: "console admins",
        total: Some(admins.len() as u64),
    });
    for admin in &admins {
        let copied = match to.admin_by_username(&admin.username).await? {
            None => {
                to.insert_admin(admin).await?;
                true
            }
            Some(held) if held.id == admin.id => false,
            Some(_) => anyhow::bail!(
                "the target already has a different console admin named `{}`; remove one of them first",
                admin.username
            ),
        };
        report.admins.count(copied);
        progress(Step::Rows(1));
    }

    // Endpoints, with their sealed secrets as they are (the same master keys open them).
    // Messages still waiting in the source's outbox are not carried over.
    let webhooks = from.webhooks().await?;
    progress(Step::Begin {
        what: "webhooks",
        total: Some(webhooks.len() as u64),
    });
    for webhook in &webhooks {
        let copied = to.webhook(&webhook.id).await?.is_none();
        if copied {
            to.insert_webhook(webhook).await?;
        }
        report.webhooks.count(copied);
        progress(Step::Rows(1));
    }

    progress(Step::Begin {
        what: "events",
        total: None,
    });
    let mut after = None;
    loop {
        let page = PageRequest {
            after: after.take(),
            limit: PAGE,
        };
        let events = from.events(&EventFilter::default(), &page).await?;
        for event in &events {
            // Copied as the audit trail only: messages already delivered are not sent again.
            let announce = Announcement {
                event: event.clone(),
                message: None,
            };
            let copied = match to.insert_event(&announce).await {
                Ok(()) => true,
                // Events have no other unique column: a conflict is the same event.
                Err(StoreError::Conflict(_)) => false,
                Err(error) => return Err(error.into()),
            };
            report.events.count(copied);
        }
        progress(Step::Rows(events.len() as u64));
        match events.last() {
            Some(last) if events.len() == PAGE as usize => after = Some(last.id.to_string()),
            _ => break,
        }
    }
    Ok(report)
}

/// Copies one profile unless the target has it; answers whether it did.
async fn copy_profile(profile: &ProfileRecord, to: &dyn Store) -> anyhow::Result<bool> {
    if to.profile(&profile.id).await?.is_some() {
        return Ok(false);
    }
    match to.insert_profile(profile).await {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => anyhow::bail!(
            "the target already has a different profile named `{}`; migrate-store copies into an \
             empty database, or one it filled before",
            profile.name
        ),
        Err(error) => Err(error.into()),
    }
}

/// The command: opens both stores, refuses what would lose data, copies with progress bars.
pub async fn run(
    args: &crate::cli::MigrateStoreArgs,
    max_connections: u32,
    output: crate::cli::Output,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use indicatif::{ProgressBar, ProgressStyle};

    use crate::config::Database;
    use crate::runtime::{self, Schema};

    let from = Database::parse(&args.from).context("--from")?;
    let to = Database::parse(&args.to).context("--to")?;
    if from.describe() == to.describe() {
        anyhow::bail!("--from and --to name the same database");
    }
    let _source_lock = match &from {
        Database::Sqlite(path) => {
            if !path.is_file() {
                anyhow::bail!("--from: there is no SQLite database at {}", path.display());
            }
            let lock = runtime::lock_sqlite(path)?;
            if lock.is_none() {
                anyhow::bail!(
                    "a `grantry serve` is running on {}; stop it first, or refreshes it makes during \
                     the copy are lost",
                    path.display()
                );
            }
            lock
        }
        Database::Postgres(_) => {
            eprintln!(
                "Stop every grantry node on the source first, or refreshes they make after a row is copied are lost."
            );
            None
        }
    };
    let source = runtime::connect(&from, max_connections).await?;
    let found = source.schema_version().await?;
    let expected = source.latest_schema();
    if found == 0 {
        anyhow::bail!("--from: {} holds no Grantry data", from.describe());
    }
    if found != expected {
        anyhow::bail!(
            "--from: {} has schema version {found}, this Grantry reads {expected}; run `grantry migrate` on it with a matching Grantry first",
            from.describe()
        );
    }
    let target = runtime::open_store(&to, max_connections, Schema::Migrate).await?;

    let bar = std::sync::Mutex::new(ProgressBar::hidden());
    let with_total =
        ProgressStyle::with_template("{prefix:>15} [{bar:40}] {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let open_ended = ProgressStyle::with_template("{prefix:>15} {spinner} {pos} copied")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let progress = |step: Step| {
        let mut bar = bar.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match step {
            Step::Begin { what, total } => {
                bar.finish();
                *bar = match total {
                    Some(total) => ProgressBar::new(total).with_style(with_total.clone()),
                    None => ProgressBar::new_spinner().with_style(open_ended.clone()),
                }
                .with_prefix(what);
            }
            Step::Rows(n) => bar.inc(n),
        }
    };
    let result = copy(source.store().as_ref(), target.store().as_ref(), &progress).await;
    bar.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .finish();
    source.close().await;
    target.close().await;
    let report = result?;
    let value = serde_json::to_value(&report)?;
    crate::cli::output::print(output, &value, || {
        let line = |what: &str, t: Tally| {
            format!(
                "{what:>15}: {} copied, {} already there",
                t.copied, t.present
            )
        };
        [
            format!("Copied {} into {}.", from.describe(), to.describe()),
            line("profiles", report.profiles),
            line("connections", report.connections),
            line("API keys", report.api_keys),
            line("console admins", report.admins),
            line("webhooks", report.webhooks),
            line("events", report.events),
            "Sealed values were copied sealed: give the new nodes the same master keys.".to_owned(),
        ]
        .join("\n")
    })
}
