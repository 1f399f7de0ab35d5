//! The Lambda runtime of the four functions: configuration from the environment, clients built
//! once per cold start, then one handler call per invocation.
//!
//! Environment: `MOEBI_REGION` (or `AWS_REGION`, which Lambda sets), `MOEBI_TABLE`,
//! `MOEBI_BUS`; `AWS_ENDPOINT_URL` points the SDK at an emulator; `MOEBI_TOPOLOGY` may name a
//! topology file other than the built-in `infra/topology.json`; `RUST_LOG` sets the level.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

use crate::engine::aws::{FunctionConfig, FunctionPorts};
use crate::engine::EngineError;
use crate::invoke::{self, Payload, Response};
use crate::topology::{Function, Topology};

/// Runs `function` as a Lambda function until the runtime stops.
pub async fn run(function: Function) -> Result<(), lambda_runtime::Error> {
    crate::init_tracing(true, "info");
    let ports = match connect().await {
        Ok(ports) => Arc::new(ports),
        Err(e) => {
            // Lambda shows the init error; the log keeps it with the others.
            tracing::error!(%function, error = %crate::report(&e), "cannot start");
            return Err(e.into());
        }
    };
    tracing::info!(%function, region = %ports.store().region(), "started");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ports = ports.clone();
        async move { handle(function, &ports, event).await }
    }))
    .await
}

/// Reads the configuration and builds the clients, naming whatever is missing.
async fn connect() -> Result<FunctionPorts, EngineError> {
    let config = FunctionConfig::from_env()?;
    let topology = match std::env::var_os("MOEBI_TOPOLOGY") {
        Some(path) if !path.is_empty() => Topology::load(std::path::Path::new(&path))?,
        _ => Topology::builtin(),
    };
    // lambda_runtime panics without its variables; say what is wrong instead.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Err(EngineError::Config(
            "AWS_LAMBDA_RUNTIME_API is not set: run this under Lambda or `cargo lambda watch`"
                .into(),
        ));
    }
    FunctionPorts::connect(&config, topology).await
}

/// One invocation: the payload (an SQS batch or one EventBridge event) handed to the handler.
async fn handle(
    function: Function,
    ports: &FunctionPorts,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let span = tracing::info_span!(
        "invocation",
        %function,
        request_id = %event.context.request_id
    );
    async move {
        let payload = Payload::parse(event.payload).map_err(|e| {
            tracing::error!(error = %e, "rejected the payload");
            Diagnostic {
                error_type: "InvalidPayload".into(),
                error_message: e.to_string(),
            }
        })?;
        let response = invoke::invoke(function, &ports.ports(), &payload).await;
        if let (Payload::Batch(batch), Response::Batch(records)) = (&payload, &response) {
            // Records come back in the batch's order, each with its own id.
            for (record, result) in batch.records.iter().zip(records) {
                if let Err(e) = &result.result {
                    record_failure(ports, record, &result.message_id, &crate::report(e)).await;
                }
            }
        }
        match invoke::response_json(&response) {
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
        }
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
