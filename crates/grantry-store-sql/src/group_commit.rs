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
//! writes are tried again one by one, so one write's failure is its own. Each batch runs as a
//! task of its own: if one panicked (a driver's bug), only its writes would fail, as unavailable
//! (so the core keeps their tokens and writes them again), and the next batch would go on.

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
        self.queue
            .send(write)
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        answered.await.map_err(|_| {
            StoreError::Unavailable(
                "the token write did not finish: the store's writer failed".into(),
            )
        })?
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
        // A task per batch: should it panic, its writes' answers are dropped (each learns the
        // write did not finish) and token writes go on with the next batch, rather than stopping
        // for the life of the process.
        if let Err(failed) = tokio::spawn(write_batch(engine.clone(), batch)).await {
            tracing::error!(error = %failed, "a batch of token writes failed inside the store");
        }
    }
}

/// One batch: together in one transaction, or (after a failure of its own) one by one.
async fn write_batch<E: Engine>(engine: E, mut batch: Vec<Write>) {
    batch.sort_by(|a, b| a.key.cmp(&b.key));
    if batch.len() > 1 {
        match together(&engine, &batch).await {
            Ok(changed) => {
                for (write, changed) in batch.into_iter().zip(changed) {
                    let _ = write.answer.send(Ok(changed));
                }
                return;
            }
            // The database is away: each write would wait to learn the same, one after
            // another, holding up every write queued behind them.
            Err(StoreError::Unavailable(why)) => {
                for write in batch {
                    let _ = write.answer.send(Err(StoreError::Unavailable(why.clone())));
                }
                return;
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

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use grantry_core::store::StoreError;

    use super::*;
    use crate::engine::{Access, Dialect};
    use crate::rows::Columns;

    /// A database whose statements change one row each, except `PANIC`, which panics as a
    /// driver's bug would.
    #[derive(Debug, Clone)]
    struct Fake;

    #[derive(Debug)]
    struct NoRow;

    impl Columns for NoRow {
        fn text(&self, _: &str) -> StoreResult<Option<String>> {
            Ok(None)
        }
        fn bytes(&self, _: &str) -> StoreResult<Option<Vec<u8>>> {
            Ok(None)
        }
        fn int(&self, _: &str) -> StoreResult<Option<i64>> {
            Ok(None)
        }
        fn flag(&self, _: &str) -> StoreResult<Option<bool>> {
            Ok(None)
        }
    }

    fn run(statement: &Statement) -> StoreResult<u64> {
        assert_ne!(statement.sql, "PANIC", "a driver's bug");
        Ok(1)
    }

    static DIALECT: Dialect = Dialect {
        claim_due: "",
        lock_admins: "",
        lock_profile_connections: "",
        claim_deliveries: "",
    };

    #[async_trait]
    impl Engine for Fake {
        type Row = NoRow;
        type Transaction = Fake;

        async fn execute(&self, statement: Statement) -> StoreResult<u64> {
            run(&statement)
        }
        async fn fetch_all(&self, _: Access, _: Statement) -> StoreResult<Vec<NoRow>> {
            Ok(Vec::new())
        }
        async fn fetch_optional(&self, _: Access, _: Statement) -> StoreResult<Option<NoRow>> {
            Ok(None)
        }
        async fn begin(&self) -> StoreResult<Fake> {
            Ok(Fake)
        }
        async fn ping(&self) -> StoreResult<()> {
            Ok(())
        }
        fn dialect(&self) -> &'static Dialect {
            &DIALECT
        }
    }

    #[async_trait]
    impl Transaction for Fake {
        type Row = NoRow;

        async fn execute(&mut self, statement: Statement) -> StoreResult<u64> {
            run(&statement)
        }
        async fn fetch_all(&mut self, _: Statement) -> StoreResult<Vec<NoRow>> {
            Ok(Vec::new())
        }
        async fn commit(self) -> StoreResult<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_batch_that_panics_fails_its_writes_and_later_writes_go_on() {
        let commit = GroupCommit::start(Fake);
        let failed = commit
            .write("con_1", Statement::new("PANIC"), Vec::new())
            .await;
        assert!(
            matches!(&failed, Err(StoreError::Unavailable(why)) if why.contains("did not finish")),
            "unavailable, so the core keeps the token and writes it again: {failed:?}"
        );
        for key in ["con_2", "con_3"] {
            let written = commit
                .write(key, Statement::new("UPDATE"), Vec::new())
                .await;
            assert_eq!(written.unwrap(), 1, "writes after the panic still land");
        }
    }
}
