//! The embedded engine's queues, in one SQLite file (`<state>/queues.sqlite`) that every
//! process sharing the state directory uses: SQS's semantics (visibility timeout, receive
//! count, dead letters after the redrive policy's receives), behind the [`Queue`] port.
//!
//! Time in the queues is the engine's own clock, which jumps to the next visibility deadline
//! when nothing else is ready, so draining never sleeps and retries still happen in order.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::contract::Region;
use crate::engine::pump::{Mapping, ACCOUNT};
use crate::engine::queue::{Queue, QueueError, Received};
use crate::engine::{DeadLetter, EngineError};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
-- WAL with NORMAL sync survives a crash of the process, not of the machine: enough for a
-- laptop engine, and it spares an fsync per transaction.
PRAGMA synchronous = NORMAL;
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
    /// Opens (creating if needed) the queues of the state directory `dir`.
    pub fn open(dir: &Path) -> Result<Arc<Self>, EngineError> {
        let path = dir.join("queues.sqlite");
        let what = || format!("cannot open {}", path.display());
        let conn = Connection::open(&path).map_err(|e| EngineError::state(what(), e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| EngineError::state(what(), e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| EngineError::state(what(), e))?;
        Ok(Arc::new(Self {
            conn: Mutex::new(conn),
        }))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: its transaction
        // rolls back, so the connection is still good.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a message on `region`'s queue `queue`, visible at once.
    pub fn send(&self, region: &Region, queue: &str, body: &str) -> Result<(), QueueError> {
        self.conn()
            .execute(
                "INSERT INTO messages (region, queue, message_id, body, visible_at)
                 VALUES (?1, ?2, ?3, ?4, (SELECT now FROM clock))",
                params![
                    region.as_str(),
                    queue,
                    uuid::Uuid::new_v4().to_string(),
                    body
                ],
            )
            .map_err(failed(queue, "SendMessage"))?;
        Ok(())
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

/// One region's queue in front of one function.
pub struct SqliteQueue {
    db: Arc<QueueDb>,
    region: Region,
    name: String,
    arn: String,
    mapping: Mapping,
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
        }
    }
}

type Row = (i64, String, String, u32, Option<String>);

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
                tx.execute(
                    "INSERT INTO dead_letters (region, queue, message_id, body, receive_count, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![self.region.as_str(), self.name, message_id, body, count, last_error.unwrap_or_default()],
                )
                .and_then(|_| tx.execute("DELETE FROM messages WHERE seq = ?1", params![seq]))
                .map_err(err())?;
                continue;
            }
            tx.execute(
                "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2 WHERE seq = ?1",
                params![seq, now + i64::from(self.mapping.visibility_seconds)],
            )
            .map_err(err())?;
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
        let conn = self.db.conn();
        for msg in done {
            conn.execute(
                "DELETE FROM messages WHERE message_id = ?1",
                params![msg.receipt],
            )
            .map_err(failed(&self.name, "DeleteMessage"))?;
        }
        Ok(())
    }

    async fn release(&self, failed_: &[(&Received, String)]) -> Result<(), QueueError> {
        let conn = self.db.conn();
        for (msg, reason) in failed_ {
            // It stays hidden until its visibility timeout ends, as in SQS.
            conn.execute(
                "UPDATE messages SET last_error = ?2 WHERE message_id = ?1",
                params![msg.receipt, reason],
            )
            .map_err(failed(&self.name, "release"))?;
        }
        Ok(())
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
