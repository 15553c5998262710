//! Token writes committed together.
//!
//! Every token write changes a connection's version, and on PostgreSQL that NOTIFYs the other
//! nodes. PostgreSQL commits notifying transactions one at a time (a lock held through the
//! commit's WAL flush), so a refresh wave written one transaction per token runs at the speed of
//! one disk flush after another: 1,400 refreshes/s on three nodes, with most sessions waiting on
//! that lock (`pg_stat_activity`: `Lock:object`).
//!
//! So token writes queue up here, and one task per store writes, in one transaction, whatever
//! queued while its previous transaction ran: one token transaction at a time per store. A write
//! alone waits for no one; under load, a flush carries many. Each write keeps its own guard and answer (how many rows it changed), and
//! its announcements are written with it, only when it changed a row, as
//! [`SqlStore::change`](crate::SqlStore) does. Rows are written in id order, so that two nodes'
//! batches take row locks in the same order and never deadlock. When a batch fails because the
//! database is unavailable, every write in it learns so at once; when it fails otherwise, its
//! writes are tried again one by one, so one write's failure is its own.

use grantry_core::store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Engine, Statement, Transaction};

/// Writes per transaction at most.
const MOST_AT_ONCE: usize = 64;

/// One write: a guarded statement, the statements that announce it, and who waits for it.
struct Write {
    /// The connection's id: the order in which a batch takes row locks.
    key: String,
    statement: Statement,
    announce: Vec<Statement>,
    answer: oneshot::Sender<StoreResult<u64>>,
}

/// The queue of a store's token writes, and the task that writes them.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Write>,
}

impl GroupCommit {
    /// Starts the writing task on the current Tokio runtime; it ends when the store is dropped.
    pub(crate) fn start<E: Engine>(engine: E) -> GroupCommit {
        let (queue, writes) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(engine, writes));
        GroupCommit { queue }
    }

    /// Writes `statement` (and, if it changed a row, `announce`) in the next transaction;
    /// answers how many rows the statement changed once that transaction has committed.
    pub(crate) async fn write(
        &self,
        key: &str,
        statement: Statement,
        announce: Vec<Statement>,
    ) -> StoreResult<u64> {
        let (answer, answered) = oneshot::channel();
        let write = Write {
            key: key.to_owned(),
            statement,
            announce,
            answer,
        };
        let gone = || StoreError::Unavailable("the store is shutting down".into());
        self.queue.send(write).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

async fn write_batches<E: Engine>(engine: E, mut writes: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = writes.recv().await {
        let mut batch = vec![first];
        while batch.len() < MOST_AT_ONCE {
            match writes.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        batch.sort_by(|a, b| a.key.cmp(&b.key));
        if batch.len() > 1 {
            match together(&engine, &batch).await {
                Ok(changed) => {
                    for (write, changed) in batch.into_iter().zip(changed) {
                        let _ = write.answer.send(Ok(changed));
                    }
                    continue;
                }
                // The database is away: each write would wait to learn the same, one after
                // another, holding up every write queued behind them.
                Err(StoreError::Unavailable(why)) => {
                    for write in batch {
                        let _ = write.answer.send(Err(StoreError::Unavailable(why.clone())));
                    }
                    continue;
                }
                // One write's own failure (or a deadlock with another batch): tried one by one
                // below, so it fails alone.
                Err(_) => {}
            }
        }
        for write in batch {
            let result = write_one(&engine, write.statement, write.announce).await;
            let _ = write.answer.send(result);
        }
    }
}

/// The batch in one transaction; answers each write's changed rows once it has committed.
async fn together<E: Engine>(engine: &E, batch: &[Write]) -> StoreResult<Vec<u64>> {
    let mut tx = engine.begin().await?;
    let mut changed = Vec::with_capacity(batch.len());
    for write in batch {
        let rows = tx.execute(write.statement.clone()).await?;
        if rows > 0 {
            for statement in &write.announce {
                tx.execute(statement.clone()).await?;
            }
        }
        changed.push(rows);
    }
    tx.commit().await?;
    Ok(changed)
}

/// One write in a transaction of its own (none when it announces nothing): `statement` and, if
/// it changed a row, `announce`; answers how many rows the statement changed.
pub(crate) async fn write_one<E: Engine>(
    engine: &E,
    statement: Statement,
    announce: Vec<Statement>,
) -> StoreResult<u64> {
    if announce.is_empty() {
        return engine.execute(statement).await;
    }
    let mut tx = engine.begin().await?;
    let changed = tx.execute(statement).await?;
    if changed > 0 {
        for statement in announce {
            tx.execute(statement).await?;
        }
    }
    tx.commit().await?;
    Ok(changed)
}
