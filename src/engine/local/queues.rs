//! The embedded engine's queues, in one SQLite file (`<state>/queues.sqlite`) that every
//! process sharing the state directory uses: SQS's semantics (visibility timeout, receive
//! count, dead letters after the redrive policy's receives), behind the [`Queue`] port.
//!
//! Time in the queues is the engine's own clock, which jumps to the next visibility deadline
//! when nothing else is ready, so draining never sleeps and retries still happen in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection};

use super::journal::{self, Entry};
use super::state::{failed, StateDb};
use crate::contract::Region;
use crate::engine::pump::{Delivery, Mapping, ACCOUNT};
use crate::engine::queue::{Queue, QueueError, Received};
use crate::engine::{DeadLetter, Step};
use crate::invoke::RecordResult;

/// One region's queue in front of one function.
pub struct SqliteQueue {
    db: Arc<StateDb>,
    region: Region,
    name: String,
    arn: String,
    mapping: Mapping,
    /// Whether this process has invoked the queue's function already (a cold start otherwise).
    warm: AtomicBool,
}

impl SqliteQueue {
    /// `region`'s queue `name`, with `mapping`'s visibility and redrive.
    pub fn new(db: Arc<StateDb>, region: &Region, name: String, mapping: Mapping) -> Self {
        Self {
            arn: format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}"),
            db,
            region: region.clone(),
            name,
            mapping,
            warm: AtomicBool::new(false),
        }
    }
}

type Row = (i64, String, String, u32, Option<String>);

impl SqliteQueue {
    /// Moves a message received as often as the redrive policy allows to the dead letters.
    fn bury(
        &self,
        conn: &Connection,
        seq: i64,
        message_id: &str,
        body: &str,
        count: u32,
        why: &str,
    ) -> rusqlite::Result<()> {
        conn.prepare_cached(
            "INSERT INTO dead_letters (region, queue, message_id, body, receive_count, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            self.region.as_str(),
            self.name,
            message_id,
            body,
            count,
            why
        ])?;
        conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?
            .execute(params![seq])?;
        let detail = format!("dead letter of {} after {count} receives: {why}", self.name);
        self.step(conn, message_id, Step::Dead, detail);
        Ok(())
    }

    /// Journals one invocation of the function on `results`.
    fn invoked(&self, conn: &Connection, results: &[RecordResult]) {
        let records = results
            .iter()
            .map(|r| (r.message_id.as_str(), &r.result, r.elapsed));
        let cold = !self.warm.swap(true, Ordering::Relaxed);
        let function = self.mapping.function.name();
        journal::invocation(conn, self.region.as_str(), function, records, cold);
    }

    fn step(&self, conn: &Connection, message_id: &str, step: Step, detail: String) {
        let s = Entry {
            message_id: Some(message_id),
            ..Entry::new(self.region.as_str(), step, detail)
        };
        journal::write(conn, &s);
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn arn(&self) -> &str {
        &self.arn
    }

    async fn receive(&self, max: u32) -> Result<Vec<Received>, QueueError> {
        let err = || failed(&self.name, "ReceiveMessage");
        let mut conn = self.db.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err())?;
        // Cached statements: compiling SQL anew on every receive was 2.4% of the simulation.
        let now: i64 = tx
            .prepare_cached("SELECT now FROM clock")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(err())?;
        let rows: Vec<Row> = tx
            .prepare_cached(
                "SELECT seq, message_id, body, receive_count, last_error FROM messages
                 WHERE region = ?1 AND queue = ?2 AND visible_at <= ?3 ORDER BY seq",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![self.region.as_str(), self.name, now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(err())?;
        let mut received = Vec::new();
        for (seq, message_id, body, count, last_error) in rows {
            if received.len() as u32 >= max {
                break;
            }
            if count >= self.mapping.max_receives {
                let why = last_error.as_deref().unwrap_or_default();
                self.bury(&tx, seq, &message_id, &body, count, why)
                    .map_err(err())?;
                continue;
            }
            tx.prepare_cached(
                "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2 WHERE seq = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![seq, now + i64::from(self.mapping.visibility_seconds)])
            })
            .map_err(err())?;
            let function = self.mapping.function.name();
            self.step(
                &tx,
                &message_id,
                Step::Received,
                format!(
                    "by {function}'s event source mapping (receive {})",
                    count + 1
                ),
            );
            received.push(Received {
                receipt: message_id.clone(),
                message_id,
                body,
                receive_count: count + 1,
            });
        }
        tx.commit().map_err(err())?;
        Ok(received)
    }

    async fn delete(&self, done: &[&Received]) -> Result<(), QueueError> {
        let err = || failed(&self.name, "DeleteMessage");
        let mut conn = self.db.conn();
        let tx = conn.transaction().map_err(err())?;
        for msg in done {
            tx.prepare_cached("DELETE FROM messages WHERE message_id = ?1")
                .and_then(|mut stmt| stmt.execute(params![msg.receipt]))
                .map_err(err())?;
        }
        tx.commit().map_err(err())
    }

    async fn release(&self, failed_: &[(&Received, String)]) -> Result<(), QueueError> {
        let err = || failed(&self.name, "release");
        let mut conn = self.db.conn();
        let tx = conn.transaction().map_err(err())?;
        for (msg, reason) in failed_ {
            // It stays hidden until its visibility timeout ends, as in SQS.
            tx.prepare_cached("UPDATE messages SET last_error = ?2 WHERE message_id = ?1")
                .and_then(|mut stmt| stmt.execute(params![msg.receipt, reason]))
                .map_err(err())?;
        }
        tx.commit().map_err(err())
    }

    async fn note(&self, results: &[RecordResult]) {
        let conn = self.db.conn();
        // One commit for the batch; the journal only explains, so without a transaction it is
        // written row by row.
        let tx = conn.unchecked_transaction().ok();
        match self.mapping.delivery {
            Delivery::Batch => self.invoked(&conn, results),
            // EventBridge invokes the function once per event.
            Delivery::Async => {
                for r in results {
                    self.invoked(&conn, std::slice::from_ref(r));
                }
            }
        }
        if let Some(Err(e)) = tx.map(|tx| tx.commit()) {
            tracing::warn!(error = %e, "cannot write to the journal");
        }
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let conn = self.db.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT message_id, receive_count, reason, body FROM dead_letters
                 WHERE region = ?1 AND queue = ?2 ORDER BY seq",
            )
            .map_err(failed(&self.name, "reading dead letters"))?;
        let rows = stmt
            .query_map(params![self.region.as_str(), self.name], |r| {
                Ok(DeadLetter {
                    region: self.region.clone(),
                    queue: self.name.clone(),
                    message_id: r.get(0)?,
                    receive_count: r.get(1)?,
                    reason: r.get(2)?,
                    body: r.get(3)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(failed(&self.name, "reading dead letters"))?;
        Ok(rows)
    }
}
