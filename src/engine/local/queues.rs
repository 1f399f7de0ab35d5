//! The embedded engine's queues, in one SQLite file (`<state>/queues.sqlite`) that every
//! process sharing the state directory uses: SQS's semantics (visibility timeout, receive
//! count, dead letters after the redrive policy's receives), behind the [`Queue`] port.
//!
//! Time in the queues is the engine's own clock, which jumps to the next visibility deadline
//! when nothing else is ready, so draining never sleeps and retries still happen in order.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::journal::{self, Step};
use crate::contract::Region;
use crate::engine::pump::{Delivery, Mapping, ACCOUNT};
use crate::engine::queue::{Queue, QueueError, Received};
use crate::engine::{DeadLetter, EngineError};
use crate::invoke::RecordResult;

/// Set on every connection. WAL with NORMAL sync survives a crash of the process, not of the
/// machine: enough for a laptop engine, and it spares an fsync per transaction.
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    region        TEXT NOT NULL,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL UNIQUE,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at    INTEGER NOT NULL,
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (region, queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    region        TEXT NOT NULL,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    reason        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clock (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    now INTEGER NOT NULL
);
INSERT OR IGNORE INTO clock (id, now) VALUES (0, 0);
";

/// The queues' database.
pub struct QueueDb {
    conn: Mutex<Connection>,
}

/// A SQLite failure of `operation` on `queue`; a busy or locked database is worth a retry.
fn failed<'a>(
    queue: &'a str,
    operation: &'static str,
) -> impl FnOnce(rusqlite::Error) -> QueueError + 'a {
    move |e| QueueError {
        queue: queue.to_owned(),
        operation,
        retryable: matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ),
        source: Box::new(e),
    }
}

impl QueueDb {
    /// Opens (creating if needed) the queues of the state directory `dir`. A new database is
    /// built aside (`queues.sqlite.new`) and renamed into place, so a process killed at any
    /// moment leaves none or a whole one; an existing one is opened with no schema work.
    pub fn open(dir: &Path) -> Result<Arc<Self>, EngineError> {
        let path = dir.join("queues.sqlite");
        let what = || format!("cannot open {}", path.display());
        if !path.exists() {
            let aside = dir.join("queues.sqlite.new");
            super::dynamo::remove_leftovers(&aside).map_err(|e| EngineError::state(what(), e))?;
            let building = Connection::open(&aside).map_err(|e| EngineError::state(what(), e))?;
            schema(&building)?;
            building
                .close()
                .map_err(|(_, e)| EngineError::state(what(), e))?;
            super::dynamo::checkpoint(&aside)
                .map_err(|e| EngineError::state(what(), e))
                .and_then(|()| {
                    std::fs::rename(&aside, &path).map_err(|e| EngineError::state(what(), e))
                })?;
        }
        let conn = Connection::open(&path).map_err(|e| EngineError::state(what(), e))?;
        conn.execute_batch(PRAGMAS)
            .map_err(|e| EngineError::state(what(), e))?;
        Self::ready(conn)
    }

    /// Queues in memory, for the simulation: a crash keeps what was committed.
    pub fn memory() -> Result<Arc<Self>, EngineError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| EngineError::state("cannot open queues in memory", e))?;
        schema(&conn)?;
        Self::ready(conn)
    }

    fn ready(conn: Connection) -> Result<Arc<Self>, EngineError> {
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| EngineError::state("cannot set the queues' busy timeout", e))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Arc::new(Self {
            conn: Mutex::new(conn),
        }))
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: its transaction
        // rolls back, so the connection is still good.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a message on `region`'s queue `queue`, visible at once, and journals it as
    /// `step` (`queued` by `rule`) for event `event_id`. Answers its message id.
    pub(super) fn send(
        &self,
        region: &Region,
        queue: &str,
        body: &str,
        event_id: Option<&str>,
        rule: &str,
    ) -> Result<String, QueueError> {
        let message_id = uuid::Uuid::new_v4().to_string();
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO messages (region, queue, message_id, body, visible_at)
             VALUES (?1, ?2, ?3, ?4, (SELECT now FROM clock))",
        )
        .and_then(|mut stmt| stmt.execute(params![region.as_str(), queue, message_id, body]))
        .map_err(failed(queue, "SendMessage"))?;
        journal::write(
            &conn,
            &Step {
                region: region.as_str(),
                step: "queued",
                detail: format!("rule {rule} → queue {queue}"),
                event_id,
                message_id: Some(&message_id),
                ..Step::default()
            },
        );
        Ok(message_id)
    }

    /// Runs `f` as one SQLite transaction: what it sends and journals is committed together,
    /// at the end (one commit for a whole publish instead of one per row). What `f` did is
    /// committed whether it succeeded or not, as each of its writes would have been alone.
    pub(super) fn atomically<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Commit<'a>(&'a QueueDb, bool);
        impl Drop for Commit<'_> {
            fn drop(&mut self) {
                if self.1 {
                    if let Err(e) = self.0.conn().execute_batch("COMMIT") {
                        tracing::warn!(error = %e, "cannot commit the queues' transaction");
                    }
                }
            }
        }
        let began = self.conn().execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = &began {
            tracing::debug!(error = %e, "the queues' writes go one at a time");
        }
        let _commit = Commit(self, began.is_ok());
        f()
    }

    /// Journals a step of the bus.
    pub(super) fn journal(&self, step: &Step<'_>) {
        journal::write(&self.conn(), step);
    }

    /// Moves the clock to the earliest visibility deadline; false when no message waits.
    pub fn advance_clock(&self) -> Result<bool, EngineError> {
        let conn = self.conn();
        let next: Option<i64> = conn
            .query_row("SELECT MIN(visible_at) FROM messages", [], |r| r.get(0))
            .optional()
            .map_err(|e| EngineError::state("cannot read the queues' clock", e))?
            .flatten();
        let Some(next) = next else { return Ok(false) };
        conn.execute("UPDATE clock SET now = MAX(now, ?1)", params![next])
            .map_err(|e| EngineError::state("cannot move the queues' clock", e))?;
        Ok(true)
    }
}

/// Creates the queues' and the journal's tables on `conn`.
fn schema(conn: &Connection) -> Result<(), EngineError> {
    conn.execute_batch(PRAGMAS)
        .and_then(|()| conn.execute_batch(SCHEMA))
        .and_then(|()| conn.execute_batch(journal::SCHEMA))
        .map_err(|e| EngineError::state("cannot create the queues' schema", e))
}

/// One region's queue in front of one function.
pub struct SqliteQueue {
    db: Arc<QueueDb>,
    region: Region,
    name: String,
    arn: String,
    mapping: Mapping,
    /// Whether this process has invoked the queue's function already (a cold start otherwise).
    warm: AtomicBool,
}

impl SqliteQueue {
    /// `region`'s queue `name`, with `mapping`'s visibility and redrive.
    pub fn new(db: Arc<QueueDb>, region: &Region, name: String, mapping: Mapping) -> Self {
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
        conn.execute(
            "INSERT INTO dead_letters (region, queue, message_id, body, receive_count, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                self.region.as_str(),
                self.name,
                message_id,
                body,
                count,
                why
            ],
        )?;
        conn.execute("DELETE FROM messages WHERE seq = ?1", params![seq])?;
        let detail = format!("dead letter of {} after {count} receives: {why}", self.name);
        self.step(conn, message_id, "dead", detail);
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

    fn step(&self, conn: &Connection, message_id: &str, step: &'static str, detail: String) {
        let s = Step {
            region: self.region.as_str(),
            step,
            detail,
            message_id: Some(message_id),
            ..Step::default()
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
        let now: i64 = tx
            .query_row("SELECT now FROM clock", [], |r| r.get(0))
            .map_err(err())?;
        let rows: Vec<Row> = tx
            .prepare(
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
            tx.execute(
                "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2 WHERE seq = ?1",
                params![seq, now + i64::from(self.mapping.visibility_seconds)],
            )
            .map_err(err())?;
            let function = self.mapping.function.name();
            self.step(
                &tx,
                &message_id,
                "received",
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
            .prepare(
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
