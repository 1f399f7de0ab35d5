//! The embedded engine's journal: every step an event takes (published on a bus, matched by a
//! rule, forwarded to another region, queued, received, handled with what outcome, set aside as
//! a dead letter), with the time, in the queues' database. `moebi trace ID` reads one event's
//! path from it, and `moebi stats` the functions' counts: the same figures the Lambda functions
//! emit as metrics ([`crate::metric`]).

use rusqlite::{params, Connection};
use serde_json::Value;

use super::state::StateDb;
use crate::engine::{EngineError, Step, Trace, TraceStep};
use std::time::Duration;

use crate::contract::Region;
use crate::handler::HandlerError;
use crate::metric::Counts;
use crate::ports::Outcome;
use crate::topology::Function;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      REAL NOT NULL,
    region     TEXT NOT NULL,
    step       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    event_id   TEXT,
    message_id TEXT,
    cause      TEXT,
    function   TEXT,
    ms         REAL
);
CREATE INDEX IF NOT EXISTS journal_event ON journal (event_id);
CREATE INDEX IF NOT EXISTS journal_message ON journal (message_id);
CREATE INDEX IF NOT EXISTS journal_cause ON journal (cause);
CREATE TABLE IF NOT EXISTS invocations (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    region   TEXT NOT NULL,
    function TEXT NOT NULL,
    records  INTEGER NOT NULL,
    cold     INTEGER NOT NULL
);
";

/// One step to write down.
#[derive(Debug)]
pub(super) struct Entry<'a> {
    pub region: &'a str,
    pub step: Step,
    pub detail: String,
    pub event_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub cause: Option<&'a str>,
    pub function: Option<&'a str>,
    pub ms: Option<f64>,
}

impl<'a> Entry<'a> {
    /// `step` in `region`, saying `detail`, of no event or message yet.
    pub fn new(region: &'a str, step: Step, detail: String) -> Self {
        Self {
            region,
            step,
            detail,
            event_id: None,
            message_id: None,
            cause: None,
            function: None,
            ms: None,
        }
    }
}

/// Now, in milliseconds since the epoch, to the microsecond (`moebi load` measures hops of a
/// few milliseconds).
fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

/// Writes a step. The journal only explains: a step it cannot write is logged, and what the
/// step did stands.
pub(super) fn write(conn: &Connection, s: &Entry<'_>) {
    let done = conn
        .prepare_cached(
            "INSERT INTO journal (at_ms, region, step, detail, event_id, message_id, cause, function, ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![now_ms(), s.region, s.step.as_str(), s.detail, s.event_id, s.message_id, s.cause, s.function, s.ms])
        });
    if let Err(e) = done {
        tracing::warn!(error = %e, step = s.step.as_str(), "cannot write to the journal");
    }
}

/// Writes one invocation of `function` in `region`: each record's outcome and effect latency,
/// and the invocation (how many records, whether it was the function's first in this process).
pub(super) fn invocation<'a>(
    conn: &Connection,
    region: &str,
    function: &str,
    records: impl Iterator<Item = (&'a str, &'a Result<Outcome, HandlerError>, Duration)>,
    cold: bool,
) {
    let mut tally = Counts::default();
    for (message_id, result, elapsed) in records {
        tally.count(result, elapsed);
        let detail = result
            .as_ref()
            .err()
            .map(|e| crate::report(e))
            .unwrap_or_default();
        let s = Entry {
            message_id: Some(message_id),
            function: Some(function),
            ms: Some(elapsed.as_secs_f64() * 1000.0),
            ..Entry::new(region, Step::of(result), detail)
        };
        write(conn, &s);
    }
    let done = conn
        .prepare_cached(
            "INSERT INTO invocations (region, function, records, cold) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut stmt| stmt.execute(params![region, function, tally.records as i64, cold]));
    if let Err(e) = done {
        tracing::warn!(error = %e, "cannot write to the journal");
    }
}

/// What an envelope says about its event: its id, what it answers, and a one-line summary.
pub(super) fn about(envelope: &Value) -> (Option<&str>, Option<&str>, String) {
    let detail = &envelope["detail"];
    let text = |k: &str| detail.get(k).and_then(Value::as_str).unwrap_or("?");
    let kind = envelope["detail-type"]
        .as_str()
        .unwrap_or("(no detail-type)");
    let summary = match kind {
        "chat.send" => format!("chat.send {} → {}", text("from"), text("to")),
        "stock.add" => format!(
            "stock.add {} +{} {}",
            text("store"),
            detail.get("qty").map(Value::to_string).unwrap_or_default(),
            text("product")
        ),
        "stock.status" => format!("stock.status asked by {}", text("asker")),
        other => other.to_owned(),
    };
    let id = detail.get("id").and_then(Value::as_str);
    let cause = detail.get("in_reply_to").and_then(Value::as_str);
    (id, cause, summary)
}

type Row = (f64, String, String, String, Option<String>);

impl StateDb {
    /// Journals an invocation made directly (`moebi replay`), as Lambda's Invoke would: not a
    /// cold start, the engine having run before. A single event took `elapsed`.
    pub fn invoked(
        &self,
        region: &str,
        function: &str,
        response: &crate::invoke::Response,
        elapsed: Duration,
    ) {
        use crate::invoke::Response;
        let conn = self.conn();
        match response {
            Response::Batch(records) => {
                let records = records
                    .iter()
                    .map(|r| (r.message_id.as_str(), &r.result, r.elapsed));
                invocation(&conn, region, function, records, false)
            }
            Response::Event(result) => {
                let one = std::iter::once(("", result, elapsed));
                invocation(&conn, region, function, one, false)
            }
        }
    }

    /// The path of event `id`: its steps in order, then those of each event it caused.
    pub fn trace(&self, id: &str) -> Result<Option<Trace>, EngineError> {
        self.trace_at(id, 0)
    }

    fn trace_at(&self, id: &str, depth: usize) -> Result<Option<Trace>, EngineError> {
        let failed = |e| EngineError::state("cannot read the journal", e);
        let (rows, caused) = {
            let conn = self.conn();
            let rows: Vec<Row> = conn
                .prepare(
                    "SELECT at_ms, region, step, detail, function FROM journal
                     WHERE event_id = ?1 OR message_id IN
                       (SELECT message_id FROM journal WHERE event_id = ?1 AND message_id IS NOT NULL)
                     ORDER BY seq",
                )
                .and_then(|mut s| {
                    s.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                        .collect()
                })
                .map_err(failed)?;
            let caused: Vec<String> = conn
                .prepare("SELECT DISTINCT event_id FROM journal WHERE cause = ?1 AND event_id IS NOT NULL ORDER BY seq")
                .and_then(|mut s| s.query_map(params![id], |r| r.get(0))?.collect())
                .map_err(failed)?;
            (rows, caused)
        };
        if rows.is_empty() {
            return Ok(None);
        }
        let steps = rows
            .into_iter()
            .map(|(at_ms, region, step, detail, function)| {
                Ok(TraceStep {
                    at: chrono::DateTime::from_timestamp_micros((at_ms * 1000.0).round() as i64)
                        .unwrap_or_default(),
                    region: region_of(&region)?,
                    step: journaled(&step)?,
                    detail,
                    function: function.as_deref().map(function_of).transpose()?,
                })
            })
            .collect::<Result<_, EngineError>>()?;
        let mut children = Vec::new();
        // A reply to a reply cannot happen (bots never answer bots); the depth bound says so.
        if depth < 4 {
            for child in caused.iter().filter(|c| c.as_str() != id) {
                children.extend(self.trace_at(child, depth + 1)?);
            }
        }
        Ok(Some(Trace {
            event_id: id.to_owned(),
            steps,
            caused: children,
        }))
    }

    /// The functions' counts per region and function, as `moebi stats` prints them.
    pub fn stats(&self) -> Result<Vec<crate::engine::Stats>, EngineError> {
        let failed = |e| EngineError::state("cannot read the journal", e);
        let conn = self.conn();
        let rows: Vec<(String, String, i64, i64, i64)> = conn
            .prepare(
                "SELECT region, function, COUNT(*), SUM(records), SUM(cold) FROM invocations
                 GROUP BY region, function ORDER BY region, function",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(failed)?;
        let mut stats = rows
            .into_iter()
            .map(|(region, function, invocations, records, cold)| {
                Ok(crate::engine::Stats::new(
                    region_of(&region)?,
                    function_of(&function)?,
                    invocations as u64,
                    records as u64,
                    cold as u64,
                ))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        for s in &mut stats {
            let counts: Vec<(String, i64)> = conn
                .prepare("SELECT step, COUNT(*) FROM journal WHERE region = ?1 AND function = ?2 GROUP BY step")
                .and_then(|mut q| q.query_map(params![s.region.as_str(), s.function.name()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(failed)?;
            for (step, n) in counts {
                let n = n as u64;
                match journaled(&step)? {
                    Step::Applied => s.handled += n,
                    Step::Duplicate => {
                        s.handled += n;
                        s.duplicates += n;
                    }
                    Step::Retryable => s.retryable += n,
                    Step::Permanent => s.permanent += n,
                    _ => {}
                }
            }
            let latencies: Vec<f64> = conn
                .prepare("SELECT ms FROM journal WHERE region = ?1 AND function = ?2 AND ms IS NOT NULL ORDER BY ms")
                .and_then(|mut q| q.query_map(params![s.region.as_str(), s.function.name()], |r| r.get(0))?.collect())
                .map_err(failed)?;
            s.latency_p50_ms = percentile(&latencies, 0.50);
            s.latency_p99_ms = percentile(&latencies, 0.99);
        }
        Ok(stats)
    }
}

/// The step a journal row names; a name this engine never writes means the journal is not its.
pub(super) fn journaled(name: &str) -> Result<Step, EngineError> {
    Step::parse(name).ok_or_else(|| unjournaled("step", name))
}

fn unjournaled(what: &'static str, value: &str) -> EngineError {
    EngineError::Unjournaled {
        what,
        value: value.to_owned(),
    }
}

/// The region a journal row names.
pub(super) fn region_of(name: &str) -> Result<Region, EngineError> {
    Region::parse(name).map_err(|_| unjournaled("region", name))
}

/// The function a journal row names.
pub(super) fn function_of(name: &str) -> Result<Function, EngineError> {
    Function::parse(name).ok_or_else(|| unjournaled("function", name))
}

/// The `p` quantile of sorted values (nearest rank); 0 for none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn an_envelope_is_summarised_with_its_id_and_cause() {
        let e = serde_json::json!({"detail-type": "chat.send",
            "detail": {"id": "r1", "from": "moebi", "to": "alex", "in_reply_to": "m1"}});
        assert_eq!(
            about(&e),
            (Some("r1"), Some("m1"), "chat.send moebi → alex".into())
        );
    }
}
