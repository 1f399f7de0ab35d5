//! The front door's Lambda loop: an HTTP API request in, an HTTP answer out, with the same
//! configuration, logs and metrics as the four event functions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

use super::{connect, emit, init_logging, max_concurrency, start_metrics, FunctionPorts};
use crate::front::{self, HttpPayload, Refusal};
use crate::metric::Counts;

use super::page;

/// The front door's name, as its crate, its log group and its metrics' `Function` call it.
pub const FRONT_DOOR: &str = "front-door";

/// Runs the front door as a Lambda function until the runtime stops.
pub async fn run_front_door() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let ports = match connect().await {
        Ok(ports) => Arc::new(ports),
        Err(e) => {
            tracing::error!(function = FRONT_DOOR, error = %crate::report(&e), "cannot start");
            return Err(e.into());
        }
    };
    let region = ports.store().region().to_string();
    let metrics = start_metrics(FRONT_DOOR, &region)?;
    let cold = Arc::new(AtomicBool::new(true));
    let concurrent = max_concurrency() > 1;
    tracing::info!(function = FRONT_DOOR, %region, "started");
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
            let (answer, tally) = respond(&ports, event).await;
            emit(&tally, cold.swap(false, Ordering::Relaxed));
            if let Err(e) = metrics.flush(std::io::stdout().lock()) {
                tracing::warn!(error = %e, "cannot write the metrics");
            }
            answer
        }
    }))
    .await
}

/// One request: its answer (always an HTTP answer, refusals included), and what it counted.
async fn respond(
    ports: &FunctionPorts,
    event: LambdaEvent<Value>,
) -> (Result<Value, Diagnostic>, Counts) {
    let span = tracing::info_span!(
        "invocation",
        function = FRONT_DOOR,
        request_id = %event.context.request_id,
        trace_id = event.context.xray_trace_id.as_deref().unwrap_or(""),
    );
    async move {
        let started = Instant::now();
        let reply = match HttpPayload::parse(event.payload) {
            Ok(payload) => {
                let request = payload.request();
                let region = ports.store().region().to_string();
                if let Some((reply, content_type)) = page::public(request.method, request.path, &region) {
                    return (Ok(public_response(&reply, content_type)), Counts::default());
                }
                front::answer(&ports.front_ports(), &request).await
            }
            Err(e) => {
                let refusal = Refusal::Invalid(e);
                tracing::error!(error = %refusal, error_type = "Permanent.InvalidPayload", "rejected the payload");
                refusal.into()
            }
        };
        let tally = Counts::of_reply(reply.status, started.elapsed());
        let answer = serde_json::to_value(reply.to_response()).map_err(|e| Diagnostic {
            error_type: "Permanent.Serialize".into(),
            error_message: e.to_string(),
        });
        (answer, tally)
    }
    .instrument(span)
    .await
}

/// A public answer (the page, its settings) with its own content type; a string body as is.
fn public_response(reply: &crate::front::Reply, content_type: &'static str) -> Value {
    let body = match &reply.body {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    serde_json::json!({
        "statusCode": reply.status,
        "headers": { "content-type": content_type, "cache-control": "no-cache" },
        "body": body,
    })
}
