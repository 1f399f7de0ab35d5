//! The embedded engine's state database (`<state>/queues.sqlite`), shared by every process
//! using the state directory: the queues' messages and dead letters, the engine's clock and the
//! journal, with their schemas. [`super::queues`] gives SQS's semantics on it and
//! [`super::journal`] reads and writes the journal.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use super::journal::{self, Entry};
use crate::contract::Region;
use crate::engine::queue::QueueError;
use crate::engine::EngineError;
use crate::engine::Step;

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

/// The engine's state database.
pub struct StateDb {
    conn: Mutex<Connection>,
}

/// A SQLite failure of `operation` on `queue`; a busy or locked database is worth a retry.
pub(super) fn failed<'a>(
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

impl StateDb {
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
            &Entry {
                event_id,
                message_id: Some(&message_id),
                ..Entry::new(
                    region.as_str(),
                    Step::Queued,
                    format!("rule {rule} → queue {queue}"),
                )
            },
        );
        Ok(message_id)
    }

    /// Runs `f` as one SQLite transaction: what it sends and journals is committed together,
    /// at the end (one commit for a whole publish instead of one per row). What `f` did is
    /// committed whether it succeeded or not, as each of its writes would have been alone.
    pub(super) fn atomically<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Commit<'a>(&'a StateDb, bool);
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
    pub(super) fn journal(&self, step: &Entry<'_>) {
        journal::write(&self.conn(), step);
    }

    /// Moves the clock to the earliest visibility deadline; false when no message waits.
    pub fn advance_clock(&self) -> Result<bool, EngineError> {
        let conn = self.conn();
        let next: Option<i64> = conn
            .prepare_cached("SELECT MIN(visible_at) FROM messages")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .optional()
            .map_err(|e| EngineError::state("cannot read the queues' clock", e))?
            .flatten();
        let Some(next) = next else { return Ok(false) };
        conn.prepare_cached("UPDATE clock SET now = MAX(now, ?1)")
            .and_then(|mut stmt| stmt.execute(params![next]))
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
