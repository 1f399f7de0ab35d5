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

/// A payload as Lambda delivers it.
#[derive(Debug, Clone)]
pub enum Payload {
    /// An SQS batch (from an event source mapping).
    Batch(SqsEvent),
    /// One EventBridge event (from a rule targeting the function directly).
    Event(Value),
}

impl Payload {
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
        Some(Region::parse(&name).map_err(|e| ContractError::field("region", e.to_string())))
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

/// What a function answers to a payload.
#[derive(Debug)]
pub enum Response {
    /// The batch's failed records (empty when every record succeeded), and why each failed.
    Batch(SqsBatchResponse, Vec<(String, HandlerError)>),
    /// The single event's result.
    Event(Result<Outcome, HandlerError>),
}

impl Response {
    /// Whether every record succeeded.
    pub fn succeeded(&self) -> bool {
        match self {
            Response::Batch(b, _) => b.batch_item_failures.is_empty(),
            Response::Event(r) => r.is_ok(),
        }
    }
}

/// Runs `function` on a payload.
pub async fn invoke(function: Function, ports: &Ports<'_>, payload: &Payload) -> Response {
    match payload {
        Payload::Batch(batch) => {
            let (response, reasons) = batch_of(function, ports, batch).await;
            Response::Batch(response, reasons)
        }
        Payload::Event(event) => Response::Event(single(function, ports, event).await),
    }
}

/// Runs `function` on every record of an SQS batch; answers the failed ones, with why each failed.
pub async fn batch_of(
    function: Function,
    ports: &Ports<'_>,
    batch: &SqsEvent,
) -> (SqsBatchResponse, Vec<(String, HandlerError)>) {
    let mut response = SqsBatchResponse::default();
    let mut reasons = Vec::new();
    for record in &batch.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        if let Err(e) = one_record(function, ports, record).await {
            tracing::warn!(message_id = %message_id, error = %e, "record failed");
            response.add_failure(message_id.clone());
            reasons.push((message_id, e));
        }
    }
    (response, reasons)
}

#[tracing::instrument(name = "record", skip_all, fields(message_id = record.message_id.as_deref().unwrap_or("")))]
async fn one_record(
    function: Function,
    ports: &Ports<'_>,
    record: &SqsMessage,
) -> Result<Outcome, HandlerError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| ContractError::field("body", "is required"))?;
    let event = Event::from_envelope_json(body)?;
    handler::handle(function, ports, &event).await
}

/// Runs `function` on one EventBridge event.
pub async fn single(
    function: Function,
    ports: &Ports<'_>,
    event: &Value,
) -> Result<Outcome, HandlerError> {
    let event = Event::from_envelope(event)?;
    handler::handle(function, ports, &event).await
}

/// The JSON a Lambda function returns for a response: the batch response, or `null` for an event.
pub fn response_json(response: &Response) -> Result<Value, &HandlerError> {
    match response {
        Response::Batch(b, _) => Ok(serde_json::to_value(b).expect("a batch response serializes")),
        Response::Event(Ok(_)) => Ok(Value::Null),
        Response::Event(Err(e)) => Err(e),
    }
}
