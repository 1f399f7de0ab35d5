//! Lambda invocations: the payloads Lambda delivers, handed to a handler record by record.
//!
//! A function accepts its kind both ways it can be wired: an SQS batch whose bodies are
//! EventBridge events (answered with the partial batch failures, so one bad record never fails
//! the others), and one EventBridge event (an error makes Lambda retry it). The Lambda binaries,
//! `moebi replay` and both engines all go through here.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use serde_json::Value;

use crate::contract::{ContractError, Event, Region};
use crate::handler::{self, HandlerError};
use crate::ports::{Outcome, Ports};
use crate::topology::Function;

/// The largest payload Lambda takes in one synchronous invocation (6 MB).
pub const MAX_PAYLOAD_BYTES: u64 = 6 * 1024 * 1024;

/// Why a payload file cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum PayloadFileError {
    /// The file cannot be read.
    #[error("cannot read {}", .0.display())]
    Read(std::path::PathBuf, #[source] std::io::Error),
    /// The file is larger than any payload Lambda takes.
    #[error("{}: larger than the {MAX_PAYLOAD_BYTES} bytes Lambda accepts in one invocation", .0.display())]
    TooLarge(std::path::PathBuf),
    /// A file that is not JSON cannot be a payload Lambda delivers.
    #[error("{}: not a JSON payload", .0.display())]
    NotJson(std::path::PathBuf, #[source] serde_json::Error),
    /// The JSON is not a payload.
    #[error("{}", .0.display())]
    NotPayload(std::path::PathBuf, #[source] ContractError),
}

/// A payload as Lambda delivers it.
#[derive(Debug, Clone)]
pub enum Payload {
    /// An SQS batch (from an event source mapping).
    Batch(SqsEvent),
    /// One EventBridge event (from a rule targeting the function directly).
    Event(Value),
}

impl Payload {
    /// Reads a payload file, refusing one over [`MAX_PAYLOAD_BYTES`] before reading it whole.
    pub fn read(path: &std::path::Path) -> Result<Self, PayloadFileError> {
        use std::io::Read;
        let cannot = |e| PayloadFileError::Read(path.to_owned(), e);
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(cannot)?
            .take(MAX_PAYLOAD_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(cannot)?;
        if text.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(PayloadFileError::TooLarge(path.to_owned()));
        }
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| PayloadFileError::NotJson(path.to_owned(), e))?;
        Self::parse(value).map_err(|e| PayloadFileError::NotPayload(path.to_owned(), e))
    }

    /// Recognises a payload: an object with `Records` is an SQS batch, anything else an event.
    pub fn parse(value: Value) -> Result<Self, ContractError> {
        if value.get("Records").is_some() {
            let batch: SqsEvent = serde_path_to_error::deserialize(value).map_err(|e| {
                ContractError::Malformed(format!(
                    "not an SQS batch: at `{}`: {}",
                    e.path(),
                    e.inner()
                ))
            })?;
            Ok(Payload::Batch(batch))
        } else if value.is_object() {
            Ok(Payload::Event(value))
        } else {
            Err(ContractError::Malformed(
                "a Lambda payload must be an SQS batch or an EventBridge event (a JSON object)"
                    .into(),
            ))
        }
    }

    /// The region the payload says it comes from (`awsRegion` of the first record, or `region`).
    pub fn region(&self) -> Option<Result<Region, ContractError>> {
        let name = match self {
            Payload::Batch(b) => b.records.first().and_then(|r| r.aws_region.clone()),
            Payload::Event(e) => e.get("region").and_then(Value::as_str).map(str::to_owned),
        }?;
        // The region's own error names the field `region`.
        Some(Region::parse(&name))
    }

    /// The function the payload was meant for, when it says: an SQS batch names its queue.
    pub fn function(&self) -> Option<Function> {
        match self {
            Payload::Batch(b) => b
                .records
                .first()
                .and_then(|r| r.event_source_arn.as_deref())
                .and_then(|arn| arn.rsplit(':').next())
                .and_then(Function::parse),
            Payload::Event(_) => None,
        }
    }
}

/// What became of one record of a batch: its message id with its result, so nobody has to
/// search the batch again to know what happened to it.
#[derive(Debug)]
pub struct RecordResult {
    /// The record's `messageId`.
    pub message_id: String,
    /// What the handler did with it.
    pub result: Result<Outcome, HandlerError>,
    /// How long it took, from its turn to its effect (or failure).
    pub elapsed: std::time::Duration,
}

/// What a function answers to a payload.
#[derive(Debug)]
pub enum Response {
    /// Each record of the batch, in order, with its result.
    Batch(Vec<RecordResult>),
    /// The single event's result.
    Event(Result<Outcome, HandlerError>),
}

impl Response {
    /// Whether every record succeeded.
    pub fn succeeded(&self) -> bool {
        match self {
            Response::Batch(records) => records.iter().all(|r| r.result.is_ok()),
            Response::Event(r) => r.is_ok(),
        }
    }

    /// The failed records of a batch, with why each failed.
    pub fn failures(&self) -> Vec<(&str, &HandlerError)> {
        match self {
            Response::Batch(records) => records
                .iter()
                .filter_map(|r| Some((r.message_id.as_str(), r.result.as_ref().err()?)))
                .collect(),
            Response::Event(_) => Vec::new(),
        }
    }
}

/// The partial batch response Lambda reads: the ids of the records that failed.
pub fn batch_response(records: &[RecordResult]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in records.iter().filter(|r| r.result.is_err()) {
        response.add_failure(record.message_id.clone());
    }
    response
}

/// Runs `function` on a payload.
pub async fn invoke(function: Function, ports: &Ports<'_>, payload: &Payload) -> Response {
    match payload {
        Payload::Batch(batch) => Response::Batch(batch_of(function, ports, batch).await),
        Payload::Event(event) => Response::Event(single(function, ports, event).await),
    }
}

/// At most how many records of a batch are in flight at once (a batch holds up to 10 by default;
/// an event source mapping may hand up to 10,000).
pub const RECORDS_AT_ONCE: usize = 10;

tokio::task_local! {
    /// How many records of a batch run at once, when something other than
    /// [`RECORDS_AT_ONCE`] is wanted ([`one_at_a_time`]).
    static AT_ONCE: usize;
}

/// Runs `work` with the records of every batch it invokes handled one after another. The
/// simulation does so: with records in flight together, which of them a crash interrupts
/// would depend on how their calls interleave, and a seed could no longer promise to replay
/// exactly.
pub async fn one_at_a_time<F: std::future::Future>(work: F) -> F::Output {
    AT_ONCE.scope(1, work).await
}

/// Runs `function` on every record of an SQS batch; answers each record's result, in order.
///
/// Records run concurrently, at most [`RECORDS_AT_ONCE`] at a time, in lanes: records that
/// carry the same event id go in one lane and run in the batch's order. Records writing the
/// same item (adds to one product's share) run together: the store sends their total as one
/// action beside each record's idempotency record (`store::coalesce`), and, should that fail,
/// sends them alone one after another, so DynamoDB never cancels one for conflicting with
/// another of the same batch. An inbox lists its entries by the time they were sent, so the
/// order entries are written in never shows.
pub async fn batch_of(
    function: Function,
    ports: &Ports<'_>,
    batch: &SqsEvent,
) -> Vec<RecordResult> {
    use futures_util::StreamExt;
    let at_once = AT_ONCE.try_with(|n| *n).unwrap_or(RECORDS_AT_ONCE).max(1);
    let decoded: Vec<(String, Result<Event, ContractError>)> = batch
        .records
        .iter()
        .map(|r| (r.message_id.clone().unwrap_or_default(), decode(r)))
        .collect();
    let lanes = lanes(&decoded);
    let mut results: Vec<Option<RecordResult>> = std::iter::repeat_with(|| None)
        .take(decoded.len())
        .collect();
    let mut done = futures_util::stream::iter(lanes.into_iter().map(|lane| {
        let decoded = &decoded;
        async move {
            let mut out = Vec::with_capacity(lane.len());
            for i in lane {
                let (message_id, event) = &decoded[i];
                out.push((i, run_record(function, ports, message_id, event).await));
            }
            out
        }
    }))
    .buffer_unordered(at_once);
    while let Some(lane) = done.next().await {
        for (i, result) in lane {
            results[i] = Some(result);
        }
    }
    results.into_iter().flatten().collect()
}

/// The lanes of a batch: indexes of records, each lane in the batch's order, lanes in the
/// order of their first record.
fn lanes(decoded: &[(String, Result<Event, ContractError>)]) -> Vec<Vec<usize>> {
    let mut lanes: Vec<Vec<usize>> = Vec::new();
    let mut by_key: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, (_, event)) in decoded.iter().enumerate() {
        let key = match event {
            Ok(event) => event.id().to_string(),
            // A record that does not decode fails alone, touching nothing.
            Err(_) => {
                lanes.push(vec![i]);
                continue;
            }
        };
        match by_key.get(&key) {
            Some(&lane) => lanes[lane].push(i),
            None => {
                by_key.insert(key, lanes.len());
                lanes.push(vec![i]);
            }
        }
    }
    lanes
}

/// One record handled (or its decoding failure), with how long it took.
#[tracing::instrument(name = "record", skip_all, fields(message_id = %message_id))]
async fn run_record(
    function: Function,
    ports: &Ports<'_>,
    message_id: &str,
    event: &Result<Event, ContractError>,
) -> RecordResult {
    let started = std::time::Instant::now();
    let result = match event {
        Ok(event) => guarded(handler::handle(function, ports, event)).await,
        Err(e) => Err(HandlerError::Contract(e.clone())),
    };
    if let Err(e) = &result {
        tracing::warn!(error = %crate::report(e), "record failed");
    }
    RecordResult {
        message_id: message_id.to_owned(),
        result,
        elapsed: started.elapsed(),
    }
}

/// Runs a record's handling, turning a panic into that record's failure: the other records of
/// the batch, in flight or not, go on.
async fn guarded<F>(work: F) -> Result<Outcome, HandlerError>
where
    F: std::future::Future<Output = Result<Outcome, HandlerError>>,
{
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(HandlerError::Panicked(why))
        })
}

/// A record's event, or why its body is none.
fn decode(record: &SqsMessage) -> Result<Event, ContractError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| ContractError::field("body", "is required"))?;
    // A body that is no EventBridge event at all is a fault of the record's `body`.
    Event::from_envelope_json(body).map_err(|e| match e {
        ContractError::Malformed(why) => ContractError::field("body", why),
        other => other,
    })
}

/// Runs `function` on one EventBridge event.
pub async fn single(
    function: Function,
    ports: &Ports<'_>,
    event: &Value,
) -> Result<Outcome, HandlerError> {
    let event = Event::from_envelope(event)?;
    guarded(handler::handle(function, ports, &event)).await
}

/// The JSON a Lambda function returns for a response: the batch response, or `null` for an event.
pub fn response_json(response: &Response) -> Result<Value, &HandlerError> {
    match response {
        Response::Batch(records) => {
            Ok(serde_json::to_value(batch_response(records)).expect("a batch response serializes"))
        }
        Response::Event(Ok(_)) => Ok(Value::Null),
        Response::Event(Err(e)) => Err(e),
    }
}
