//! `grantry keys …`: the master keys that seal secrets at rest, their rotation and retirement.

use std::time::Duration;

use clap::Subcommand;
use grantry_core::{Actor, Grantry};
use grantry_crypto::{KeyError, KeyId, KeySource, KeyStore, MasterKey};
use indicatif::{ProgressBar, ProgressStyle};

use super::Output;
use super::output::{fields, print};
use crate::runtime::Backend;

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
