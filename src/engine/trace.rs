//! What an engine can tell about how it ran: the path one event took ([`Trace`], `moebi trace
//! ID`) and the functions' counts ([`Stats`], `moebi stats`). The embedded engine keeps a
//! journal of both; on AWS the functions' logs and metrics say it (docs/cli.md, "On AWS: metrics,
//! logs, one event across regions": the CloudWatch Logs Insights query that follows an event id
//! across regions).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::contract::Region;
use crate::topology::Function;

/// What happened to an event at one step of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Put on its first bus.
    Published,
    /// Forwarded onto another region's bus, and arrived there.
    Arrived,
    /// A rule sent it to another region's bus.
    Forwarded,
    /// A rule put it on a function's queue.
    Queued,
    /// No rule of the bus matched it: dropped, as EventBridge does.
    Unmatched,
    /// Received from its queue by the event source mapping.
    Received,
    /// Handled: its effect is in the store.
    Applied,
    /// Handled before: nothing changed.
    Duplicate,
    /// Failed in a way a retry may mend.
    Retryable,
    /// Failed for good.
    Permanent,
    /// Set aside as a dead letter.
    Dead,
    /// Its effect was copied to another region by replication (the region of the step).
    Replicated,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 12] = [
        Step::Published,
        Step::Arrived,
        Step::Forwarded,
        Step::Queued,
        Step::Unmatched,
        Step::Received,
        Step::Applied,
        Step::Duplicate,
        Step::Retryable,
        Step::Permanent,
        Step::Dead,
        Step::Replicated,
    ];

    /// The step's name, as the journal stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Published => "published",
            Step::Arrived => "arrived",
            Step::Forwarded => "forwarded",
            Step::Queued => "queued",
            Step::Unmatched => "unmatched",
            Step::Received => "received",
            Step::Applied => "applied",
            Step::Duplicate => "duplicate",
            Step::Retryable => "retryable",
            Step::Permanent => "permanent",
            Step::Dead => "dead",
            Step::Replicated => "replicated",
        }
    }

    /// The step named `name`.
    pub fn parse(name: &str) -> Option<Step> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The step a handler's result is.
    pub fn of(result: &Result<crate::ports::Outcome, crate::handler::HandlerError>) -> Step {
        use crate::ports::Outcome;
        match result {
            Ok(Outcome::Applied) => Step::Applied,
            Ok(Outcome::Duplicate) => Step::Duplicate,
            Err(e) if e.is_permanent() => Step::Permanent,
            Err(_) => Step::Retryable,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One step of an event's path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    /// When.
    pub at: DateTime<Utc>,
    /// Where.
    pub region: Region,
    /// What.
    pub step: Step,
    /// The rule, queue, receive count, error…
    pub detail: String,
    /// The function that handled it, for the handling steps.
    pub function: Option<Function>,
}

/// One step of the journal with the event it belongs to, as `moebi load` reads a whole run back.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// When, in milliseconds since the epoch (to the microsecond).
    pub at_ms: f64,
    /// Where.
    pub region: Region,
    /// What.
    pub step: Step,
    /// The event (for a handling step, the event of the message handled).
    pub event_id: Option<String>,
    /// The event it answers (a reply's `in_reply_to`), when published.
    pub cause: Option<String>,
    /// The function, for the handling steps.
    pub function: Option<Function>,
    /// The rule, queue, error…
    pub detail: String,
}

/// The path of one event, and of the events it caused (a bot's reply).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// The event's id.
    pub event_id: String,
    /// Its steps, in order.
    pub steps: Vec<TraceStep>,
    /// The paths of the events it caused.
    pub caused: Vec<Trace>,
}

impl Trace {
    /// The trace as lines for a terminal: the time of each step, and the time since the first.
    pub fn render(&self) -> String {
        let start = self.steps.first().map(|s| s.at).unwrap_or_default();
        let mut out = String::new();
        self.render_into(&mut out, start, "");
        out
    }

    fn render_into(&self, out: &mut String, start: DateTime<Utc>, indent: &str) {
        use std::fmt::Write;
        let _ = writeln!(out, "{indent}event {}", self.event_id);
        for s in &self.steps {
            let since = (s.at - start).num_milliseconds();
            let what = match (&s.function, s.step) {
                (Some(f), Step::Applied | Step::Duplicate) => {
                    format!("handled by {f}: {}", s.step)
                }
                (Some(f), kind) => format!("{f} failed ({kind}): {}", s.detail),
                (None, step) => format!("{step:<9} {}", s.detail),
            };
            let _ = writeln!(
                out,
                "{indent}  {}  +{since:>5} ms  {:<14} {what}",
                s.at.format("%H:%M:%S%.3f"),
                s.region
            );
        }
        for c in &self.caused {
            let _ = writeln!(out, "{indent}  which caused:");
            c.render_into(out, start, &format!("{indent}    "));
        }
    }
}

/// What one function did in one region (the embedded engine's `moebi stats`): the figures the
/// Lambda functions emit as metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// The region.
    pub region: Region,
    /// The function.
    pub function: Function,
    /// Invocations (batches, or single events).
    pub invocations: u64,
    /// Records in them.
    pub records: u64,
    /// Records whose effect is in the store.
    pub handled: u64,
    /// Of those, duplicates.
    pub duplicates: u64,
    /// Failures that may succeed on a retry.
    pub retryable: u64,
    /// Failures for good.
    pub permanent: u64,
    /// Median effect latency.
    pub latency_p50_ms: f64,
    /// 99th percentile effect latency.
    pub latency_p99_ms: f64,
    /// First invocations of the function in a process.
    pub cold_starts: u64,
}

impl Stats {
    /// The counts of `function` in `region` with nothing handled yet: its invocations, the
    /// records in them and its cold starts.
    pub fn new(
        region: Region,
        function: Function,
        invocations: u64,
        records: u64,
        cold_starts: u64,
    ) -> Self {
        Self {
            region,
            function,
            invocations,
            records,
            handled: 0,
            duplicates: 0,
            retryable: 0,
            permanent: 0,
            latency_p50_ms: 0.0,
            latency_p99_ms: 0.0,
            cold_starts,
        }
    }
}

/// The counts as a table.
pub fn render_stats(stats: &[Stats]) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{:<14} {:<13} {:>6} {:>8} {:>8} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7} {:>5}\n",
        "region",
        "function",
        "calls",
        "records",
        "handled",
        "dups",
        "retryable",
        "permanent",
        "batch",
        "p50 ms",
        "p99 ms",
        "cold"
    );
    for s in stats {
        let batch = s.records as f64 / s.invocations.max(1) as f64;
        let _ = writeln!(
            out,
            "{:<14} {:<13} {:>6} {:>8} {:>8} {:>6} {:>9} {:>9} {:>7.1} {:>7.2} {:>7.2} {:>5}",
            s.region,
            s.function,
            s.invocations,
            s.records,
            s.handled,
            s.duplicates,
            s.retryable,
            s.permanent,
            batch,
            s.latency_p50_ms,
            s.latency_p99_ms,
            s.cold_starts
        );
    }
    out
}
