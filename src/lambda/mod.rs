//! The Lambda runtime of the four functions: configuration from the environment, clients built
//! once per cold start, then one handler call per invocation.
//!
//! Environment: `MOEBI_REGION` (or `AWS_REGION`, which Lambda sets), `MOEBI_TABLE`,
//! `MOEBI_BUS`; `AWS_ENDPOINT_URL` points the SDK at an emulator; `MOEBI_TOPOLOGY` may name a
//! topology file other than the built-in `infra/topology.json`.
//!
//! Logs follow Lambda's conventions: `AWS_LAMBDA_LOG_FORMAT` (`JSON`, the default here, or
//! `Text`) and `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, else `info`); every line of an
//! invocation carries its request id and X-Ray trace id, and a record's lines its event id.
//! Each invocation ends with its metrics in CloudWatch's embedded metric format on stdout
//! ([`crate::metric`] says which), through `metrics_cloudwatch_embedded`.
//!
//! On Lambda Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY` > 1) one process takes that many
//! invocations at once (`lambda_runtime::run_concurrent`); on classic Lambda, one at a time.
//! Within an invocation, a batch's records run concurrently ([`crate::invoke::batch_of`]).

mod config;
mod eventbridge;
mod http;
#[cfg(feature = "live")]
mod live;
mod page;
mod ports;

pub use config::{FunctionConfig, StartError};
pub use eventbridge::EventBridgeBus;
pub use http::{run_front_door, FRONT_DOOR};
#[cfg(feature = "live")]
pub use live::{run_push, run_sockets, DynamoConnections, ManagementSockets, PUSH, SOCKETS};
pub use ports::FunctionPorts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::SqsMessage;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

use crate::invoke::{self, Payload, Response};
use crate::metric::{self, Counts};
use crate::topology::{Function, Topology};

/// Runs `function` as a Lambda function until the runtime stops.
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let ports = match connect().await {
        Ok(ports) => Arc::new(ports),
        Err(e) => {
            // Lambda shows the init error; the log keeps it with the others.
            tracing::error!(%function, error = %crate::report(&e), "cannot start");
            return Err(e.into());
        }
    };
    let region = ports.store().region().to_string();
    let metrics = start_metrics(function.name(), &region)?;
    let cold = Arc::new(AtomicBool::new(true));
    // On Lambda Managed Instances, one process serves several invocations at once: the metrics
    // of one flush may then count several, so they carry no request id of their own.
    let concurrency = max_concurrency();
    let concurrent = concurrency > 1;
    tracing::info!(%function, %region, concurrency, "started");
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Value>| {
        let (ports, cold) = (ports.clone(), cold.clone());
        async move {
            if !concurrent {
                metrics
                    .set_property("RequestId", event.context.request_id.clone())
                    .set_property(
                        "TraceId",
                        event.context.xray_trace_id.clone().unwrap_or_default(),
                    );
            }
            let (answer, tally) = handle(function, &ports, event).await;
            emit(&tally, cold.swap(false, Ordering::Relaxed));
            if let Err(e) = metrics.flush(std::io::stdout().lock()) {
                tracing::warn!(error = %e, "cannot write the metrics");
            }
            answer
        }
    }))
    .await
}

/// How many invocations Lambda may hand this process at once (`AWS_LAMBDA_MAX_CONCURRENCY`,
/// set on Managed Instances); 1 on classic Lambda.
fn max_concurrency() -> usize {
    std::env::var("AWS_LAMBDA_MAX_CONCURRENCY")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1)
}

/// The log format and level Lambda's logging configuration asks for.
fn init_logging() {
    let json =
        !std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    // Lambda's levels, as tracing names them (tracing has no FATAL).
    let level =
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| match l.to_ascii_uppercase().as_str() {
                "FATAL" => "error".to_owned(),
                other => other.to_ascii_lowercase(),
            });
    let filter = level
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    crate::init_tracing_with(json, &filter);
}

/// The metrics recorder: every metric of this process carries its function and region.
fn start_metrics(
    function: &'static str,
    region: &str,
) -> Result<&'static metrics_cloudwatch_embedded::Collector, lambda_runtime::Error> {
    use metrics::Unit;
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(metric::NAMESPACE)
        .with_dimension(metric::FUNCTION, function)
        .with_dimension(metric::REGION, region.to_owned())
        .init()?;
    metrics::describe_counter!(
        metric::RECORDS_HANDLED,
        Unit::Count,
        "records whose effect is in the store"
    );
    metrics::describe_counter!(
        metric::RECORDS_FAILED,
        Unit::Count,
        "records that failed, by ErrorKind"
    );
    metrics::describe_counter!(metric::DUPLICATES, Unit::Count, "records applied before");
    metrics::describe_counter!(metric::COLD_START, Unit::Count, "first invocations");
    metrics::describe_histogram!(metric::EFFECT_LATENCY, Unit::Milliseconds, "per record");
    metrics::describe_histogram!(metric::BATCH_SIZE, Unit::Count, "records per invocation");
    Ok(collector)
}

/// Records what one invocation did; the flush after it writes them out.
fn emit(tally: &Counts, cold: bool) {
    metrics::counter!(metric::RECORDS_HANDLED).increment(tally.handled);
    metrics::counter!(metric::DUPLICATES).increment(tally.duplicates);
    for (kind, n) in [
        ("retryable", tally.retryable),
        ("permanent", tally.permanent),
    ] {
        metrics::counter!(metric::RECORDS_FAILED, metric::ERROR_KIND => kind).increment(n);
    }
    metrics::histogram!(metric::BATCH_SIZE).record(tally.records as f64);
    for ms in &tally.latencies_ms {
        metrics::histogram!(metric::EFFECT_LATENCY).record(*ms);
    }
    if cold {
        metrics::counter!(metric::COLD_START).increment(1);
    }
}

/// Reads the configuration and builds the clients, naming whatever is missing.
async fn connect() -> Result<FunctionPorts, StartError> {
    let config = FunctionConfig::from_env()?;
    let topology = match std::env::var_os("MOEBI_TOPOLOGY") {
        Some(path) if !path.is_empty() => Topology::load(std::path::Path::new(&path))?,
        _ => Topology::builtin(),
    };
    // lambda_runtime panics without its variables; say what is wrong instead.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Err(StartError::Config(
            "AWS_LAMBDA_RUNTIME_API is not set: run this under Lambda or `cargo lambda watch`"
                .into(),
        ));
    }
    FunctionPorts::connect(&config, topology).await
}

/// One invocation: the payload (an SQS batch or one EventBridge event) handed to the handler.
/// Answers what Lambda returns, and what the invocation did.
async fn handle(
    function: Function,
    ports: &FunctionPorts,
    event: LambdaEvent<Value>,
) -> (Result<Value, Diagnostic>, Counts) {
    let span = tracing::info_span!(
        "invocation",
        %function,
        request_id = %event.context.request_id,
        trace_id = event.context.xray_trace_id.as_deref().unwrap_or(""),
    );
    async move {
        let payload = match Payload::parse(event.payload) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, error_type = "Permanent.InvalidPayload", "rejected the payload");
                let diagnostic = Diagnostic {
                    error_type: "Permanent.InvalidPayload".into(),
                    error_message: e.to_string(),
                };
                let tally = Counts { records: 1, permanent: 1, ..Counts::default() };
                return (Err(diagnostic), tally);
            }
        };
        let started = Instant::now();
        let response = invoke::invoke(function, &ports.ports(), &payload).await;
        let tally = Counts::of(&response, started.elapsed());
        if let (Payload::Batch(batch), Response::Batch(records)) = (&payload, &response) {
            // Records come back in the batch's order, each with its own id.
            for (record, result) in batch.records.iter().zip(records) {
                if let Err(e) = &result.result {
                    record_failure(ports, record, &result.message_id, &crate::report(e)).await;
                }
            }
        }
        let answer = match invoke::response_json(&response) {
            Ok(json) => {
                tracing::info!(succeeded = response.succeeded(), "answered");
                Ok(json)
            }
            // A failed EventBridge event is an error, so Lambda retries it (and then hands it to
            // the function's on-failure destination).
            Err(e) => Err(Diagnostic {
                error_type: e.error_type().into(),
                error_message: crate::report(e),
            }),
        };
        (answer, tally)
    }
    .instrument(span)
    .await
}

/// Keeps why a record of an SQS batch failed, for whoever reads the DLQ later. Best effort:
/// SQS retries the record whether or not the reason could be written.
async fn record_failure(
    ports: &FunctionPorts,
    record: &SqsMessage,
    message_id: &str,
    reason: &str,
) {
    let queue = record
        .event_source_arn
        .as_deref()
        .and_then(|arn| arn.rsplit(':').next())
        .unwrap_or_default();
    let count = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    if let Err(e) = ports
        .store()
        .record_failure(queue, message_id, count, reason)
        .await
    {
        tracing::warn!(%message_id, error = %crate::report(&e), "cannot record why the record failed");
    }
}
