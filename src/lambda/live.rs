//! The Lambda loops of live delivery: `sockets` (the WebSocket API's authorizer and routes) and
//! `push` (the inbox stream), with the connections table and the management API they use.
//!
//! Environment (besides `MOEBI_REGION` or `AWS_REGION`, and `AWS_ENDPOINT_URL` for an emulator):
//! - both: `MOEBI_CONNECTIONS`, the region's connections table;
//! - `sockets`: `MOEBI_JWT_ISSUER` (the pool's issuer URL) and `MOEBI_JWT_CLIENT_ID` (moebi's app
//!   client); `MOEBI_JWKS_URL` if the keys are not at `<issuer>/.well-known/jwks.json`;
//! - `push`: `MOEBI_SOCKETS_URL`, the WebSocket API stage's management endpoint
//!   (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`). It is configuration, not
//!   read from the `$connect` event: an emulator's `requestContext.domainName` has no port.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use hyper::Method;
use jsonwebtoken::jwk::JwkSet;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

use super::{init_logging, StartError};
use crate::api::http::Http;
use crate::contract::{Participant, Region};
use crate::live::token::{KeySource, TokenError, Verifier};
use crate::live::{
    push, socket, Connections, LiveError, PostError, Sockets, CONNECTION_TTL_SECONDS,
};
use crate::topology::Topology;

/// The `sockets` function's name.
pub const SOCKETS: &str = "sockets";
/// The `push` function's name.
pub const PUSH: &str = "push";

/// A live function's settings, named when missing.
struct LiveConfig {
    region: Region,
    endpoint_url: Option<String>,
    table: String,
}

fn get(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str, what: &str) -> Result<String, StartError> {
    get(name).ok_or_else(|| StartError::Config(format!("{name} is not set: it names {what}")))
}

impl LiveConfig {
    fn from_env() -> Result<Self, StartError> {
        let region = required("MOEBI_REGION", "the region the function runs in")
            .or_else(|_| required("AWS_REGION", "the region the function runs in"))?;
        Ok(Self {
            region: Region::parse(&region)
                .map_err(|e| StartError::Config(format!("MOEBI_REGION: {e}")))?,
            endpoint_url: get("AWS_ENDPOINT_URL"),
            table: required("MOEBI_CONNECTIONS", "the region's connections table")?,
        })
    }

    fn sdk(&self) -> aws_types::SdkConfig {
        crate::sdk::load(
            self.region.as_str(),
            self.endpoint_url.as_deref(),
            crate::sdk::lambda_credentials(),
        )
    }
}

/// The connections table: `participant` (partition key), `connection` (sort key), `expires_at`
/// (TTL, epoch seconds).
pub struct DynamoConnections {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoConnections {
    /// The table `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[async_trait]
impl Connections for DynamoConnections {
    async fn open(&self, who: &Participant, connection: &str, now: i64) -> Result<(), LiveError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("participant", s(who.as_str()))
            .item("connection", s(connection))
            .item("connected_at", AttributeValue::N(now.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now + CONNECTION_TTL_SECONDS).to_string()),
            )
            .send()
            .await
            .map_err(|e| LiveError::new(format!("PutItem (connection of {who})"), e))?;
        Ok(())
    }

    async fn close(&self, who: &Participant, connection: &str) -> Result<(), LiveError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("participant", s(who.as_str()))
            .key("connection", s(connection))
            .send()
            .await
            .map_err(|e| LiveError::new(format!("DeleteItem (connection of {who})"), e))?;
        Ok(())
    }

    async fn of(&self, who: &Participant, now: i64) -> Result<Vec<String>, LiveError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("participant = :p")
            .expression_attribute_values(":p", s(who.as_str()))
            .send()
            .await
            .map_err(|e| LiveError::new(format!("Query (connections of {who})"), e))?;
        let open = |item: &std::collections::HashMap<String, AttributeValue>| {
            let expires = item.get("expires_at")?.as_n().ok()?.parse::<i64>().ok()?;
            (expires > now).then(|| item.get("connection")?.as_s().ok().cloned())?
        };
        Ok(out.items().iter().filter_map(open).collect())
    }
}

/// The management API (`@connections`) of one WebSocket API stage.
pub struct ManagementSockets {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ManagementSockets {
    /// The stage whose management endpoint is `url`.
    pub fn new(sdk: &aws_types::SdkConfig, url: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(url)
            .build();
        Self {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }
}

#[async_trait]
impl Sockets for ManagementSockets {
    async fn post(&self, connection: &str, data: &[u8]) -> Result<(), PostError> {
        match self
            .client
            .post_to_connection()
            .connection_id(connection)
            .data(aws_smithy_types::Blob::new(data))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                Err(PostError::Gone)
            }
            Err(e) => Err(PostError::Failed(LiveError::new(
                format!("PostToConnection ({connection})"),
                e,
            ))),
        }
    }
}

/// The pool's JWKS over HTTPS.
struct JwksUrl {
    http: Http,
    url: String,
}

#[async_trait]
impl KeySource for JwksUrl {
    async fn fetch(&self) -> Result<JwkSet, TokenError> {
        let keys = |reason: String| TokenError::Keys {
            url: self.url.clone(),
            reason,
        };
        let answer = self
            .http
            .exchange(Method::GET, &self.url, &[], None)
            .await
            .map_err(|e| keys(crate::report(&e)))?;
        if answer.status != 200 {
            return Err(keys(format!("HTTP {}", answer.status)));
        }
        serde_json::from_value(answer.body).map_err(|e| keys(format!("not a JWKS: {e}")))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Logs why a live function cannot start, and hands the error to Lambda.
fn cannot_start(function: &str, e: StartError) -> lambda_runtime::Error {
    tracing::error!(function, error = %crate::report(&e), "cannot start");
    e.into()
}

/// Runs `sockets` until the runtime stops.
pub async fn run_sockets() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let start = || -> Result<_, StartError> {
        let config = LiveConfig::from_env()?;
        let issuer = required("MOEBI_JWT_ISSUER", "the user pool's issuer URL")?;
        let client_id = required("MOEBI_JWT_CLIENT_ID", "moebi's app client of the pool")?;
        let jwks = get("MOEBI_JWKS_URL")
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        let http = Http::new().map_err(|e| StartError::Config(crate::report(&e)))?;
        let source = JwksUrl { http, url: jwks };
        let verifier = Verifier::new(&issuer, &client_id, Box::new(source));
        let connections = DynamoConnections::new(
            aws_sdk_dynamodb::Client::new(&config.sdk()),
            config.table.clone(),
        );
        Ok((config.region, verifier, connections))
    };
    let (region, verifier, connections) = start().map_err(|e| cannot_start(SOCKETS, e))?;
    let shared = Arc::new((verifier, connections, Topology::builtin()));
    tracing::info!(function = SOCKETS, %region, "started");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let shared = shared.clone();
        let span = tracing::info_span!("invocation", function = SOCKETS, request_id = %event.context.request_id);
        async move {
            let (verifier, connections, topology) = &*shared;
            let failed = |error_type: &str, message: String| Diagnostic {
                error_type: error_type.into(),
                error_message: message,
            };
            let event = socket::SocketEvent::parse(&event.payload).map_err(|e| {
                tracing::error!(error = %e, error_type = "Permanent.InvalidPayload", "rejected the payload");
                failed("Permanent.InvalidPayload", e)
            })?;
            match event {
                socket::SocketEvent::Authorize { token, method_arn } => {
                    socket::authorize(verifier, topology, token.as_deref(), &method_arn)
                        .await
                        .map_err(|e| {
                            tracing::error!(error = %e, error_type = "Retryable.Keys", "cannot check the token");
                            failed("Retryable.Keys", e.to_string())
                        })
                }
                route => socket::route(route, connections, now()).await.map_err(|e| {
                    tracing::error!(error = %crate::report(&e), error_type = "Retryable.Connections", "cannot record the connection");
                    failed("Retryable.Connections", crate::report(&e))
                }),
            }
        }
        .instrument(span)
    }))
    .await
}

/// Runs `push` until the runtime stops.
pub async fn run_push() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let start = || -> Result<_, StartError> {
        let config = LiveConfig::from_env()?;
        let url = required(
            "MOEBI_SOCKETS_URL",
            "the WebSocket API stage's management endpoint",
        )?;
        let sdk = config.sdk();
        let connections =
            DynamoConnections::new(aws_sdk_dynamodb::Client::new(&sdk), config.table.clone());
        Ok((
            config.region,
            connections,
            ManagementSockets::new(&sdk, &url),
        ))
    };
    let (region, connections, sockets) = start().map_err(|e| cannot_start(PUSH, e))?;
    let shared = Arc::new((connections, sockets));
    tracing::info!(function = PUSH, %region, "started");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let shared = shared.clone();
        let span = tracing::info_span!("invocation", function = PUSH, request_id = %event.context.request_id);
        async move {
            let (connections, sockets) = &*shared;
            let records = event.payload["Records"].as_array().cloned().unwrap_or_default();
            let outcome = push::push(&records, connections, sockets, now()).await;
            tracing::info!(
                records = records.len(),
                entries = outcome.entries,
                delivered = outcome.delivered,
                gone = outcome.gone,
                reads = outcome.reads,
                unreadable = outcome.unreadable,
                failed = outcome.failed.len(),
                "pushed"
            );
            Ok::<Value, Diagnostic>(outcome.response())
        }
        .instrument(span)
    }))
    .await
}
