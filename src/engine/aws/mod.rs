//! The AWS engine: the ports on DynamoDB and EventBridge, and an engine for the CLI and the
//! tests that also drives SQS, all through the official AWS SDK. With an endpoint URL
//! (`--endpoint-url`, `AWS_ENDPOINT_URL`) the same code talks to an emulator instead of AWS.
//!
//! # Resources, per region
//!
//! | resource | name (default) | name with namespace `ns` |
//! | --- | --- | --- |
//! | DynamoDB table | `moebi` | `moebi-ns` |
//! | EventBridge bus | `moebi` | `moebi-ns` |
//! | rule `<rule>` of [`Topology::rules`] | `moebi-<rule>` | `moebi-ns-<rule>` |
//! | SQS queue in front of function `f` | `moebi-<f>` | `moebi-ns-<f>` |
//! | its dead-letter queue | `moebi-<f>-dlq` | `moebi-ns-<f>-dlq` |
//!
//! A namespace lets several test runs share one emulator without seeing each other.
//!
//! The table's items and the exactly-once writes are [`crate::store`]'s.
//!
//! # Emulator mode (an endpoint URL is set)
//!
//! The emulator is moto's server mode: one server for every region, chosen by the signing
//! region. Where it differs from AWS, this engine does what AWS would do:
//!
//! - **No global tables.** Each region gets its own table (with a stream), and the shared
//!   [`Replicator`](crate::engine::replicator::Replicator) copies what each region writes into
//!   the others after every pump pass, as global tables would. Nothing on the write path knows.
//! - **No Lambda.** A rule whose target is a function (`Target::Function`) gets an SQS queue
//!   `moebi-<f>` (with a DLQ) as its target instead, and [`AwsEngine::pump_once`] hands each
//!   of its messages to the function as one EventBridge event, as an asynchronous invocation
//!   would. Its DLQ takes a message after 3 receives, the attempts Lambda makes at an
//!   asynchronous invocation (the embedded engine does the same).
//! - **No event source mappings.** [`AwsEngine::pump_once`] runs the shared event source
//!   mapping ([`crate::engine::pump`]) over each queue; a failed record is made visible again
//!   at once (visibility 0) instead of after the visibility timeout, so a run does not wait
//!   minutes for retries.
//! - **No IAM.** The role a cross-region bus target needs is named but not created, and
//!   queues get no policy: the emulator checks neither.
//!
//! On AWS itself (no endpoint URL) Terraform in `infra/` creates the resources and Lambda runs
//! the functions, so [`AwsEngine::setup`] and [`AwsEngine::pump_once`] refuse to run there.

mod bus;
mod engine;
mod setup;
mod sqs;

pub use bus::EventBridgeBus;
pub use engine::AwsEngine;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use super::{EngineError, Names};
use crate::contract::Region;
use crate::ports::Ports;
use crate::store::DynamoStore;
use crate::topology::Topology;

/// How to reach AWS (or an emulator) and what things are called there.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    /// An emulator's endpoint; `None` talks to AWS itself.
    pub endpoint_url: Option<String>,
    /// The names of the resources.
    pub names: Names,
}

impl AwsConfig {
    /// The CLI's configuration: `--endpoint-url` (or `AWS_ENDPOINT_URL`), and the namespace in
    /// `MOEBI_NAMESPACE` when set. Region and credentials come from the usual AWS sources.
    pub fn for_cli(endpoint_url: Option<String>) -> Self {
        let config = Self {
            endpoint_url: endpoint_url.filter(|u| !u.is_empty()),
            names: Names::default(),
        };
        match std::env::var("MOEBI_NAMESPACE") {
            Ok(ns) if !ns.is_empty() => config.with_namespace(&ns),
            _ => config,
        }
    }

    /// The same configuration within namespace `ns` (checked when the engine connects).
    pub fn with_namespace(mut self, ns: &str) -> Self {
        self.names = Names::namespaced(ns);
        self
    }

    /// Whether the engine talks to an emulator.
    pub fn emulated(&self) -> bool {
        self.endpoint_url.is_some()
    }
}

/// A Lambda function's configuration, from its environment.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The region the function runs in.
    pub region: Region,
    /// Endpoint and names.
    pub aws: AwsConfig,
}

impl FunctionConfig {
    /// Reads `MOEBI_REGION` (or `AWS_REGION`), `MOEBI_TABLE`, `MOEBI_BUS` and
    /// `AWS_ENDPOINT_URL` from the process environment.
    pub fn from_env() -> Result<Self, EngineError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (an environment); an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EngineError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let required = |name: &str, what: &str| {
            get(name)
                .ok_or_else(|| EngineError::Config(format!("{name} is not set: it names {what}")))
        };
        let (variable, region) = match get("MOEBI_REGION") {
            Some(r) => ("MOEBI_REGION", r),
            None => (
                "AWS_REGION",
                get("AWS_REGION").ok_or_else(|| {
                    EngineError::Config(
                        "MOEBI_REGION (or AWS_REGION) is not set: it names the region the function runs in"
                            .into(),
                    )
                })?,
            ),
        };
        let region =
            Region::parse(&region).map_err(|e| EngineError::Config(format!("{variable}: {e}")))?;
        let names = Names::of_function(
            required("MOEBI_TABLE", "the DynamoDB table")?,
            required("MOEBI_BUS", "the EventBridge bus")?,
        );
        names
            .validate()
            .map_err(|e| EngineError::Config(format!("MOEBI_TABLE or MOEBI_BUS: {e}")))?;
        Ok(Self {
            region,
            aws: AwsConfig {
                // aws-config reads AWS_ENDPOINT_URL by itself; reading it here too tells the
                // engine it runs against an emulator (and must do what global tables would).
                endpoint_url: get("AWS_ENDPOINT_URL"),
                names,
            },
        })
    }
}

/// Whether the environment holds AWS credentials (or names where to find them).
fn credentials_in_env() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Loads the SDK configuration (credentials, endpoint, retries) once, signing for `region`.
/// How every AWS call retries and times out: chosen, not inherited (`tests/faults.rs` runs the
/// handlers and the pump through injected faults with these).
///
/// - **Retries**: the standard mode, 5 attempts, backoff from 50 ms doubling to at most 2 s. A
///   throttled or failed call, or a dropped connection, is tried again within about 4 s, well
///   inside a function's 30 s timeout. What still fails fails the record, which SQS delivers
///   again: nothing is lost, and a write whose answer was lost is recognised as a duplicate.
/// - **Timeouts**: 2 s to connect and 5 s per attempt, so a call whose answer never comes is
///   abandoned and retried rather than holding the function until Lambda kills it; 20 s for all
///   attempts, so one record's calls end before the function's timeout.
pub fn sdk_retries() -> (
    aws_config::retry::RetryConfig,
    aws_config::timeout::TimeoutConfig,
) {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(std::time::Duration::from_millis(50))
        .with_max_backoff(std::time::Duration::from_secs(2));
    let timeout = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .operation_timeout(std::time::Duration::from_secs(20))
        .build();
    (retry, timeout)
}

async fn load_sdk_config(config: &AwsConfig, region: &Region) -> SdkConfig {
    let (retry, timeout) = sdk_retries();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(crate::store::http_client())
        .retry_config(retry)
        .timeout_config(timeout);
    if let Some(url) = &config.endpoint_url {
        loader = loader.endpoint_url(url.clone());
        // An emulator accepts any signature; without this, a machine with no AWS credentials
        // would fail to sign at all.
        if !credentials_in_env() {
            loader = loader.credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "moebi-emulator",
            ));
        }
    }
    loader.load().await
}

/// The same configuration signing for (and, on AWS, talking to) another region.
fn in_region(base: &SdkConfig, region: &Region) -> SdkConfig {
    base.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// What a Lambda function runs against in its region: the store and the bus, built once per
/// cold start.
pub struct FunctionPorts {
    topology: Arc<Topology>,
    store: DynamoStore,
    bus: EventBridgeBus,
}

impl FunctionPorts {
    /// Builds the clients of `config.region`, which must be one of the topology's.
    pub async fn connect(config: &FunctionConfig, topology: Topology) -> Result<Self, EngineError> {
        config.aws.names.validate()?;
        if !topology.has_region(&config.region) {
            return Err(EngineError::Config(format!(
                "region {} is not in the topology",
                config.region
            )));
        }
        let sdk = load_sdk_config(&config.aws, &config.region).await;
        let names = &config.aws.names;
        Ok(Self {
            topology: Arc::new(topology),
            store: DynamoStore::new(
                config.region.clone(),
                names.table.clone(),
                aws_sdk_dynamodb::Client::new(&sdk),
            ),
            bus: EventBridgeBus::new(
                config.region.clone(),
                names.bus.clone(),
                aws_sdk_eventbridge::Client::new(&sdk),
            ),
        })
    }

    /// The ports bundle a handler takes.
    pub fn ports(&self) -> Ports<'_> {
        Ports {
            region: self.store.region(),
            topology: &self.topology,
            inboxes: &self.store,
            stock: &self.store,
            bus: &self.bus,
        }
    }

    /// The store, for the failure records of a batch.
    pub fn store(&self) -> &DynamoStore {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn function_config_names_the_missing_variable() {
        let err = FunctionConfig::from_lookup(env(&[("MOEBI_BUS", "moebi")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MOEBI_REGION (or AWS_REGION)"), "{err}");
        let err = FunctionConfig::from_lookup(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("MOEBI_BUS", "moebi"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("MOEBI_TABLE"), "{err}");
        let err = FunctionConfig::from_lookup(env(&[
            ("MOEBI_REGION", "eu-west-1"),
            ("MOEBI_TABLE", "moebi"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("MOEBI_BUS"), "{err}");
        let err = FunctionConfig::from_lookup(env(&[
            ("MOEBI_REGION", "Mars"),
            ("MOEBI_TABLE", "moebi"),
            ("MOEBI_BUS", "moebi"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("configuration: MOEBI_REGION"), "{err}");
    }

    #[test]
    fn function_config_prefers_moebi_region_and_reads_the_endpoint() {
        let c = FunctionConfig::from_lookup(env(&[
            ("MOEBI_REGION", "eu-west-1"),
            ("AWS_REGION", "us-east-1"),
            ("MOEBI_TABLE", "moebi-x"),
            ("MOEBI_BUS", "moebi-x"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(c.region.as_str(), "eu-west-1");
        assert_eq!(c.aws.names.table, "moebi-x");
        assert!(c.aws.emulated());
        let c = FunctionConfig::from_lookup(env(&[
            ("AWS_REGION", "us-east-1"),
            ("MOEBI_TABLE", "moebi"),
            ("MOEBI_BUS", "moebi"),
            ("AWS_ENDPOINT_URL", ""),
        ]))
        .unwrap();
        assert_eq!(c.region.as_str(), "us-east-1");
        assert!(!c.aws.emulated());
    }
}
