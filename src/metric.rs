//! What the functions count, the same on both engines: per invocation, the records handled,
//! those that were duplicates, those that failed (by kind: retryable or permanent), how long
//! each record's effect took, and the batch size. The Lambda functions emit it in CloudWatch's
//! embedded metric format (`moebi::lambda`); the embedded engine keeps it in its journal
//! (`moebi stats`).

use std::time::Duration;

use crate::handler::HandlerError;
use crate::invoke::Response;
use crate::ports::Outcome;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "moebi";
/// Dimension: the function (`chat-send`…).
pub const FUNCTION: &str = "Function";
/// Dimension: the region it runs in.
pub const REGION: &str = "Region";
/// Dimension of [`RECORDS_FAILED`]: `retryable` or `permanent`.
pub const ERROR_KIND: &str = "ErrorKind";
/// Records whose effect is in the store (applied now, or before: a duplicate).
pub const RECORDS_HANDLED: &str = "RecordsHandled";
/// Records that failed, by [`ERROR_KIND`].
pub const RECORDS_FAILED: &str = "RecordsFailed";
/// Records whose effect had been applied before: nothing changed.
pub const DUPLICATES: &str = "Duplicates";
/// Milliseconds from a record's start to its effect (or failure), one value per record.
pub const EFFECT_LATENCY: &str = "EffectLatency";
/// Records in the invocation.
pub const BATCH_SIZE: &str = "BatchSize";
/// 1 on the first invocation of an execution environment.
pub const COLD_START: &str = "ColdStart";

/// The kind of a failure, as the `ErrorKind` dimension says it.
pub fn error_kind(e: &HandlerError) -> &'static str {
    if e.is_permanent() {
        "permanent"
    } else {
        "retryable"
    }
}

/// What one invocation did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    /// Records in the invocation.
    pub records: u64,
    /// Records whose effect is in the store (duplicates included).
    pub handled: u64,
    /// Of those, the duplicates.
    pub duplicates: u64,
    /// Records that failed and may succeed on a retry.
    pub retryable: u64,
    /// Records that failed for good.
    pub permanent: u64,
    /// Each record's effect latency, in milliseconds.
    pub latencies_ms: Vec<f64>,
}

impl Counts {
    /// Counts one HTTP request of the front door, answered with `status` after `elapsed`: a
    /// 2xx is handled, a 5xx retryable, any other refusal permanent.
    pub fn of_reply(status: u16, elapsed: Duration) -> Self {
        let mut counts = Self {
            records: 1,
            latencies_ms: vec![elapsed.as_secs_f64() * 1000.0],
            ..Self::default()
        };
        match status {
            200..=299 => counts.handled = 1,
            500.. => counts.retryable = 1,
            _ => counts.permanent = 1,
        }
        counts
    }

    /// Counts one record's result, which took `elapsed`.
    pub fn count(&mut self, result: &Result<Outcome, HandlerError>, elapsed: Duration) {
        self.records += 1;
        self.latencies_ms.push(elapsed.as_secs_f64() * 1000.0);
        match result {
            Ok(Outcome::Applied) => self.handled += 1,
            Ok(Outcome::Duplicate) => {
                self.handled += 1;
                self.duplicates += 1;
            }
            Err(e) if e.is_permanent() => self.permanent += 1,
            Err(_) => self.retryable += 1,
        }
    }

    /// What a response says, a single event having taken `elapsed` (batch records carry their own).
    pub fn of(response: &Response, elapsed: Duration) -> Self {
        let mut tally = Counts::default();
        match response {
            Response::Batch(records) => {
                for r in records {
                    tally.count(&r.result, r.elapsed);
                }
            }
            Response::Event(result) => tally.count(result, elapsed),
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ContractError;
    use crate::invoke::RecordResult;
    use crate::ports::PortError;

    fn record(result: Result<Outcome, HandlerError>) -> RecordResult {
        RecordResult {
            message_id: "m".into(),
            result,
            elapsed: Duration::from_millis(2),
        }
    }

    #[test]
    fn a_batch_is_counted_by_outcome_and_kind() {
        let busy = PortError::Storage {
            operation: "PutItem".into(),
            retryable: true,
            source: "throttled".into(),
        };
        let response = Response::Batch(vec![
            record(Ok(Outcome::Applied)),
            record(Ok(Outcome::Duplicate)),
            record(Err(
                ContractError::field("detail.qty", "must be positive").into()
            )),
            record(Err(busy.into())),
        ]);
        let t = Counts::of(&response, Duration::ZERO);
        assert_eq!(
            (t.records, t.handled, t.duplicates, t.permanent, t.retryable),
            (4, 2, 1, 1, 1)
        );
        assert_eq!(t.latencies_ms, vec![2.0; 4]);
    }
}
