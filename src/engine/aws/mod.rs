//! The AWS engine the CLI and the tests drive: every region's store, bus and queues, through
//! the official AWS SDK. The functions link none of it: what they run is [`crate::lambda`]. With an endpoint URL
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

mod engine;
mod setup;
mod sqs;

pub use engine::AwsEngine;

use aws_config::SdkConfig;

use crate::contract::Region;
use crate::resources::ResourceNames;

/// How to reach AWS (or an emulator) and what things are called there.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    /// An emulator's endpoint; `None` talks to AWS itself.
    pub endpoint_url: Option<String>,
    /// The names of the resources.
    pub names: ResourceNames,
}

impl AwsConfig {
    /// The CLI's configuration: `--endpoint-url` (or `AWS_ENDPOINT_URL`), and the namespace in
    /// `MOEBI_NAMESPACE` when set. Region and credentials come from the usual AWS sources.
    pub fn for_cli(endpoint_url: Option<String>) -> Self {
        let config = Self {
            endpoint_url: endpoint_url.filter(|u| !u.is_empty()),
            names: ResourceNames::default(),
        };
        match std::env::var("MOEBI_NAMESPACE") {
            Ok(ns) if !ns.is_empty() => config.with_namespace(&ns),
            _ => config,
        }
    }

    /// The same configuration within namespace `ns` (checked when the engine connects).
    pub fn with_namespace(mut self, ns: &str) -> Self {
        self.names = ResourceNames::namespaced(ns);
        self
    }

    /// Whether the engine talks to an emulator.
    pub fn emulated(&self) -> bool {
        self.endpoint_url.is_some()
    }
}

/// The SDK configuration of the CLI and the tests: the whole default credential chain,
/// signing for `region`.
async fn load_sdk_config(config: &AwsConfig, region: &Region) -> SdkConfig {
    crate::sdk::load_default(region.as_str(), config.endpoint_url.as_deref()).await
}

/// The same configuration signing for (and, on AWS, talking to) another region.
fn in_region(base: &SdkConfig, region: &Region) -> SdkConfig {
    base.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}
