//! Master key rotation: re-seal every sealed value under the primary key, in batches, while the
//! server keeps running. Values are replaced only if unchanged since they were read, so a token
//! written meanwhile is never overwritten; passes repeat until nothing is left under older keys.

use std::collections::BTreeMap;

use grantry_crypto::{KeyId, key_id_of};

use crate::app::{Actor, Grantry};
use crate::error::CoreResult;
use crate::events::EventKind;
use crate::store::SealedColumn;

const BATCH: u32 = 500;
const MAX_PASSES: u32 = 10;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    /// Values now under the primary key that were not before.
    pub resealed: u64,
    /// Values found under an older key that changed while being re-sealed (re-checked next pass).
    pub raced: u64,
    pub passes: u32,
    /// Values still under an older key at the end (0 unless something keeps sealing with one).
    pub left: u64,
}

impl Grantry {
    /// How many sealed values each key holds.
    pub async fn sealed_by_key(&self) -> CoreResult<BTreeMap<String, u64>> {
        let mut counts = BTreeMap::new();
        for column in SealedColumn::ALL {
            let mut after: Option<String> = None;
            loop {
                let cells = self
                    .store
                    .sealed_cells(column, after.as_deref(), BATCH)
                    .await?;
                let Some(last) = cells.last() else { break };
                after = Some(last.row_id.clone());
                for cell in &cells {
                    let key = key_id_of(&cell.value)
                        .map_or_else(|_| "malformed".to_owned(), |id| id.to_string());
                    *counts.entry(key).or_default() += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Re-seals everything not under the primary key. `progress` gets the number of values
    /// looked at after each batch.
    pub async fn reseal_all(
        &self,
        progress: &(dyn Fn(u64) + Send + Sync),
        actor: &Actor,
    ) -> CoreResult<ResealReport> {
        let mut report = ResealReport::default();
        loop {
            report.passes += 1;
            let primary = self.keys.primary_id();
            let (resealed, raced) = self.reseal_pass(primary, progress).await?;
            report.resealed += resealed;
            report.raced += raced;
            if (resealed == 0 && raced == 0) || report.passes >= MAX_PASSES {
                break;
            }
        }
        let primary = self.keys.primary_id().to_string();
        report.left = self
            .sealed_by_key()
            .await?
            .iter()
            .filter(|(key, _)| **key != primary)
            .map(|(_, n)| n)
            .sum();
        let detail = format!(
            "Master key rotated to {primary}: {} value(s) re-sealed, {} left under older keys",
            report.resealed, report.left
        );
        self.record(EventKind::KeysRotated, None, None, actor, detail)
            .await;
        Ok(report)
    }

    async fn reseal_pass(
        &self,
        primary: KeyId,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> CoreResult<(u64, u64)> {
        let (mut resealed, mut raced) = (0, 0);
        for column in SealedColumn::ALL {
            let mut after: Option<String> = None;
            loop {
                let cells = self
                    .store
                    .sealed_cells(column, after.as_deref(), BATCH)
                    .await?;
                let Some(last) = cells.last() else { break };
                after = Some(last.row_id.clone());
                for cell in &cells {
                    if key_id_of(&cell.value).is_ok_and(|id| id == primary) {
                        continue;
                    }
                    let binding = column.binding(&cell.row_id);
                    let plain = self.keys.open(&cell.value, binding)?;
                    let fresh = self.keys.seal(&plain, binding)?;
                    if self
                        .store
                        .reseal(column, &cell.row_id, &cell.value, &fresh)
                        .await?
                    {
                        resealed += 1;
                    } else {
                        raced += 1;
                    }
                }
                progress(cells.len() as u64);
            }
        }
        Ok((resealed, raced))
    }
}
