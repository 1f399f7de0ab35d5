//! The event source mapping, written once: receive a batch from a queue, build the payload
//! Lambda would build, invoke the function, settle each record by its id. The embedded engine
//! runs it over its SQLite queues, the AWS engine (on an emulator) over SQS.
//!
//! Two kinds of mapping, as on AWS:
//! - **batch**: an SQS queue behind an event source mapping; batches of up to `batch_size`,
//!   partial batch failures, a DLQ after `max_receive_count` receives;
//! - **async**: EventBridge invoking a function directly. Lambda queues the event and makes
//!   [`ASYNC_ATTEMPTS`] attempts, then hands it to the on-failure destination. A queue stands
//!   in for Lambda's internal one, and its dead letters for the destination.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{json, Value};

use super::queue::{Queue, Received};
use super::{Engine, EngineError, RunReport};
use crate::contract::{ContractError, Region};
use crate::handler::HandlerError;
use crate::invoke::{self, RecordResult};
use crate::ports::Ports;
use crate::topology::{Function, Target, Topology};

/// Attempts Lambda makes at an asynchronous (EventBridge) invocation before giving up.
pub const ASYNC_ATTEMPTS: u32 = 3;
/// Seconds between asynchronous retries (Lambda waits about a minute, then two).
pub const ASYNC_RETRY_SECONDS: u32 = 60;
/// The account id the emulated ARNs and envelopes carry.
pub const ACCOUNT: &str = "000000000000";

/// How a queue's messages reach its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// An SQS queue behind an event source mapping.
    Batch,
    /// EventBridge invoking the function directly (asynchronously).
    Async,
}

/// One queue of a region and how it feeds its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// The function.
    pub function: Function,
    /// How it is invoked.
    pub delivery: Delivery,
    /// Most records per invocation.
    pub batch_size: u32,
    /// Receives after which a message is dead.
    pub max_receives: u32,
    /// How long a received message stays hidden (the wait before a retry).
    pub visibility_seconds: u32,
}

/// The mappings of `region`: one per function, in every region, as Terraform deploys them.
/// A region whose rules reach no function of some kind still has it: when another region is
/// evacuated its residents' events come here ([`Topology::evacuated`]), and what was queued
/// then is drained after the evacuation ended.
pub fn mappings(topology: &Topology, _region: &Region) -> Vec<Mapping> {
    let q = topology.queues;
    Function::ALL
        .into_iter()
        .map(|function| match function.target() {
            Target::Queue(function) => Mapping {
                function,
                delivery: Delivery::Batch,
                batch_size: q.batch_size,
                max_receives: q.max_receive_count,
                visibility_seconds: q.visibility_timeout_seconds,
            },
            _ => Mapping {
                function,
                delivery: Delivery::Async,
                batch_size: 1,
                max_receives: ASYNC_ATTEMPTS,
                visibility_seconds: ASYNC_RETRY_SECONDS,
            },
        })
        .collect()
}

/// What every region runs with, in the shape `infra/settings.sh` reads off Terraform's plan,
/// so `tests/drift.rs` can insist that the engines and Terraform agree.
pub fn settings(topology: &Topology) -> Value {
    let mut regions = serde_json::Map::new();
    for region in &topology.regions {
        let mut queues = serde_json::Map::new();
        let mut asynchronous = serde_json::Map::new();
        for m in mappings(topology, region) {
            match m.delivery {
                Delivery::Batch => queues.insert(
                    m.function.name().into(),
                    json!({
                        "visibility_timeout_seconds": m.visibility_seconds,
                        "max_receive_count": m.max_receives,
                        "batch_size": m.batch_size,
                        "report_batch_item_failures": true,
                    }),
                ),
                Delivery::Async => asynchronous.insert(
                    m.function.name().into(),
                    json!({ "attempts": m.max_receives }),
                ),
            };
        }
        regions.insert(
            region.to_string(),
            json!({
                "table": {
                    "hash_key": "pk",
                    "range_key": "sk",
                    "ttl_attribute": crate::store::schema::TTL_ATTRIBUTE,
                    "stream_view_type": crate::store::schema::STREAM_VIEW.as_str(),
                },
                "queues": queues,
                "async": asynchronous,
            }),
        );
    }
    json!({ "regions": regions })
}

/// The SQS batch Lambda's event source mapping builds from received messages.
pub fn sqs_event(region: &Region, queue_arn: &str, messages: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for msg in messages {
        let mut record = SqsMessage::default();
        record.message_id = Some(msg.message_id.clone());
        record.receipt_handle = Some(msg.receipt.clone());
        record.body = Some(msg.body.clone());
        record.attributes.insert(
            "ApproximateReceiveCount".into(),
            msg.receive_count.to_string(),
        );
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(queue_arn.to_owned());
        record.aws_region = Some(region.to_string());
        event.records.push(record);
    }
    event
}

/// Most deliveries one pass makes; more means something re-publishes forever.
const MAX_DELIVERIES: u64 = 1_000_000;

/// One pass of every mapping of every region of `engine`: each queue is pumped until it has
/// nothing ready. The engines' runs are made of such passes.
pub async fn pump_all(engine: &dyn Engine) -> Result<RunReport, EngineError> {
    let mut report = RunReport::default();
    for region in &engine.topology().regions {
        let ports = engine.ports(region)?;
        for (mapping, queue) in engine.queues(region).await? {
            loop {
                let pass = match pump(queue.as_ref(), &mapping, &ports).await {
                    Ok(pass) => pass,
                    // A queue that fails for a while is tried again on the next pass, as an
                    // event source mapping keeps polling; what it had received comes back.
                    Err(EngineError::Queue(e)) if e.retryable => {
                        tracing::warn!(queue = queue.name(), error = %crate::report(&e), "a queue call failed; trying again on the next pass");
                        report.interrupted += 1;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                report += pass;
                if pass.handled + pass.failed == 0 {
                    break;
                }
                if report.handled + report.failed > MAX_DELIVERIES {
                    return Err(EngineError::Runaway(format!(
                        "more than {MAX_DELIVERIES} deliveries in one pass"
                    )));
                }
            }
        }
    }
    Ok(report)
}

/// One pass of a mapping: receives one batch from `queue`, invokes the function on it with
/// `ports`, deletes what succeeded and releases what failed. Answers what it did.
pub async fn pump(
    queue: &dyn Queue,
    mapping: &Mapping,
    ports: &Ports<'_>,
) -> Result<RunReport, EngineError> {
    let batch = queue.receive(mapping.batch_size).await?;
    if batch.is_empty() {
        return Ok(RunReport::default());
    }
    let results = handle(queue, mapping, ports, &batch).await;
    settle(queue, mapping, &batch, &results).await
}

/// Invokes `mapping`'s function on a received batch, as Lambda would: one SQS event for a
/// batch mapping, one invocation per message for an asynchronous one. Answers each record's
/// result, in the batch's order.
pub async fn handle(
    queue: &dyn Queue,
    mapping: &Mapping,
    ports: &Ports<'_>,
    batch: &[Received],
) -> Vec<RecordResult> {
    match mapping.delivery {
        Delivery::Batch => {
            let event = sqs_event(ports.region, queue.arn(), batch);
            invoke::batch_of(mapping.function, ports, &event).await
        }
        Delivery::Async => {
            let mut results = Vec::with_capacity(batch.len());
            for msg in batch {
                let started = std::time::Instant::now();
                let result = invoke_async(mapping.function, ports, &msg.body).await;
                results.push(RecordResult {
                    message_id: msg.message_id.clone(),
                    result,
                    elapsed: started.elapsed(),
                });
            }
            results
        }
    }
}

/// Settles a handled batch: deletes the messages that succeeded, releases those that failed
/// (with why) for a later receive. Answers what it did.
pub async fn settle(
    queue: &dyn Queue,
    mapping: &Mapping,
    batch: &[Received],
    results: &[RecordResult],
) -> Result<RunReport, EngineError> {
    queue.note(results).await;
    let mut report = RunReport::default();
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (msg, record) in batch.iter().zip(results) {
        debug_assert_eq!(msg.message_id, record.message_id);
        match &record.result {
            Ok(_) => done.push(msg),
            Err(e) => {
                let retryable = !e.is_permanent();
                tracing::warn!(
                    queue = queue.name(),
                    message_id = %msg.message_id,
                    receive_count = msg.receive_count,
                    retryable,
                    error = %crate::report(e),
                    "record failed"
                );
                if retryable {
                    report.retryable += 1;
                }
                if msg.receive_count >= mapping.max_receives {
                    // The next receive moves it to the dead letters.
                    report.dead += 1;
                }
                failed.push((msg, crate::report(e)));
            }
        }
    }
    report.handled = done.len() as u64;
    report.failed = failed.len() as u64;
    queue.delete(&done).await?;
    queue.release(&failed).await?;
    Ok(report)
}

/// One asynchronous invocation: the body is the EventBridge event itself.
async fn invoke_async(
    function: Function,
    ports: &Ports<'_>,
    body: &str,
) -> Result<crate::ports::Outcome, HandlerError> {
    let event: Value = serde_json::from_str(body)
        .map_err(|e| ContractError::Malformed(format!("not JSON: {e}")))?;
    invoke::single(function, ports, &event).await
}
