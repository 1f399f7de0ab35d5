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
//! # The DynamoDB table
//!
//! One table: `pk` (S, hash key), `sk` (S, range key); TTL on `expires_at` (epoch seconds).
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | inbox entry | `inbox#<owner>` | `<sent_at>#<id>` | `id`, `from`, `text`, `sent_at`, `in_reply_to`? |
//! | stock share | `stock` | `<product>#<region>` | `product`, `region`, `qty` (N) |
//! | idempotency record | `applied#<function>#<event id>` | `applied` | `applied_at`, `expires_at` (+7 days) |
//! | failure record | `failure#<SQS message id>` | `failure` | `queue`, `reason`, `receive_count` (N), `expires_at` (+14 days) |
//!
//! `sent_at` is RFC 3339 in UTC with microseconds and `Z`, fixed width, so an inbox `Query`
//! returns the entries oldest first. A product name may contain `#`, so a query for one
//! product (`begins_with(sk, "<product>#")`) keeps only the items whose `product` attribute is
//! that product. A failure record keeps why an SQS message last failed: SQS moves a message to
//! its DLQ as it was sent, without the reason, and `dead_letters` reports it from here.
//!
//! # Exactly once
//!
//! Each effect (an inbox entry, a share's `ADD`) and the idempotency record of its
//! [`EffectKey`](crate::ports::EffectKey) are written in one `TransactWriteItems`, the record
//! with `attribute_not_exists(pk)`. When the transaction is cancelled because the record
//! exists, the event was applied before: [`Outcome::Duplicate`](crate::ports::Outcome). The
//! record expires after 7 days, beyond any SQS or EventBridge redelivery; an inbox entry's key
//! is derived from the message, so even a later duplicate rewrites the same item.
//!
//! # Emulator mode (an endpoint URL is set)
//!
//! The emulator is moto's server mode: one server for every region, chosen by the signing
//! region. Where it differs from AWS, this engine does what AWS would do:
//!
//! - **No global tables.** Each region gets its own table, and after a stock-add the share
//!   item is copied into the other regions' tables, as replication would copy it (see
//!   `AwsPorts::replicate_share`). Only shares need copying: an inbox is read in its owner's
//!   home region, where it is written.
//! - **No Lambda.** A rule whose target is a function (`Target::Function`) gets an SQS queue
//!   `moebi-<f>` (with a DLQ) as its target instead, and [`AwsEngine::pump_once`] hands each
//!   of its messages to the function as one EventBridge event, as an asynchronous invocation
//!   would. Its DLQ takes a message after 3 receives, the attempts Lambda makes at an
//!   asynchronous invocation (the embedded engine does the same).
//! - **No event source mappings.** [`AwsEngine::pump_once`] polls the queues and builds the
//!   SQS batches Lambda would; a failed record is made visible again at once (visibility 0)
//!   instead of after the visibility timeout, so a run does not wait minutes for retries.
//! - **No IAM.** The role a cross-region bus target needs is named but not created, and
//!   queues get no policy: the emulator checks neither.
//!
//! On AWS itself (no endpoint URL) Terraform in `infra/` creates the resources and Lambda runs
//! the functions, so [`AwsEngine::setup`] and [`AwsEngine::pump_once`] refuse to run there.

mod engine;
mod ports;
mod setup;

pub use engine::AwsEngine;
pub use ports::AwsPorts;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};

use super::EngineError;
use crate::contract::Region;
use crate::topology::Function;

/// The name everything is called by default.
const BASE: &str = "moebi";
/// Longest namespace: the longest rule name (`moebi-<ns>-stock-status-to-<region>`) must stay
/// within EventBridge's 64 characters.
const MAX_NAMESPACE: usize = 20;

/// The names of one deployment's tables, buses, rules and queues (the same in every region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsNames {
    /// The DynamoDB table.
    pub table: String,
    /// The EventBridge bus.
    pub bus: String,
    /// What rule and queue names start with (`moebi`, or `moebi-<namespace>`).
    pub prefix: String,
}

impl Default for AwsNames {
    fn default() -> Self {
        Self {
            table: BASE.into(),
            bus: BASE.into(),
            prefix: BASE.into(),
        }
    }
}

impl AwsNames {
    /// The names within namespace `ns`: `moebi-ns`, `moebi-ns-chat-send`, …
    pub fn namespaced(ns: &str) -> Self {
        let prefix = format!("{BASE}-{ns}");
        Self {
            table: prefix.clone(),
            bus: prefix.clone(),
            prefix,
        }
    }

    /// The queue in front of `function`.
    pub fn queue(&self, function: Function) -> String {
        format!("{}-{}", self.prefix, function.name())
    }

    /// The dead-letter queue of `function`'s queue.
    pub fn dlq(&self, function: Function) -> String {
        format!("{}-dlq", self.queue(function))
    }

    /// The EventBridge name of a topology rule.
    pub fn rule(&self, rule: &str) -> String {
        format!("{}-{rule}", self.prefix)
    }

    /// The role EventBridge assumes to forward events to another region's bus.
    pub fn forward_role(&self) -> String {
        format!("{}-forward", self.prefix)
    }

    /// Checks every name against what DynamoDB, EventBridge and SQS accept.
    pub fn validate(&self) -> Result<(), EngineError> {
        let ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 200
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        for (what, name) in [
            ("table", &self.table),
            ("bus", &self.bus),
            ("prefix", &self.prefix),
        ] {
            if !ok(name) {
                return Err(EngineError::Config(format!(
                    "invalid {what} name {name:?}: use 1 to 200 characters of A-Z, a-z, 0-9, '-', '_', '.'"
                )));
            }
        }
        if self.table.len() < 3 {
            return Err(EngineError::Config(format!(
                "invalid table name {:?}: DynamoDB needs at least 3 characters",
                self.table
            )));
        }
        if self.prefix.len() > BASE.len() + 1 + MAX_NAMESPACE {
            return Err(EngineError::Config(format!(
                "name prefix {:?} is too long: rule names would exceed 64 characters",
                self.prefix
            )));
        }
        Ok(())
    }
}

/// How to reach AWS (or an emulator) and what things are called there.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    /// An emulator's endpoint; `None` talks to AWS itself.
    pub endpoint_url: Option<String>,
    /// The names of the resources.
    pub names: AwsNames,
}

impl AwsConfig {
    /// The CLI's configuration: `--endpoint-url` (or `AWS_ENDPOINT_URL`), and the namespace in
    /// `MOEBI_NAMESPACE` when set. Region and credentials come from the usual AWS sources.
    pub fn for_cli(endpoint_url: Option<String>) -> Self {
        let config = Self {
            endpoint_url: endpoint_url.filter(|u| !u.is_empty()),
            names: AwsNames::default(),
        };
        match std::env::var("MOEBI_NAMESPACE") {
            Ok(ns) if !ns.is_empty() => config.with_namespace(&ns),
            _ => config,
        }
    }

    /// The same configuration within namespace `ns` (checked when the engine connects).
    pub fn with_namespace(mut self, ns: &str) -> Self {
        self.names = AwsNames::namespaced(ns);
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
        let names = AwsNames {
            table: required("MOEBI_TABLE", "the DynamoDB table")?,
            bus: required("MOEBI_BUS", "the EventBridge bus")?,
            prefix: BASE.into(),
        };
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
async fn load_sdk_config(config: &AwsConfig, region: &Region) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()));
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

/// Describes an SDK failure: the service's error code and message when it answered, else the
/// whole chain of causes (connection refused, timeout…).
fn sdk_error<E>(operation: &str, e: &E) -> String
where
    E: std::error::Error + ProvideErrorMetadata,
{
    match e.code() {
        Some(code) => format!(
            "{operation} failed: {code}: {}",
            e.message().unwrap_or("(no message)")
        ),
        None => format!("{operation} failed: {}", DisplayErrorContext(e)),
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
    fn names_default_to_moebi_and_take_a_namespace() {
        let n = AwsNames::default();
        assert_eq!((n.table.as_str(), n.bus.as_str()), ("moebi", "moebi"));
        assert_eq!(n.queue(Function::ChatSend), Function::ChatSend.queue_name());
        assert_eq!(n.dlq(Function::StockAdd), "moebi-stock-add-dlq");
        let n = AwsNames::namespaced("t1");
        assert_eq!(n.table, "moebi-t1");
        assert_eq!(n.queue(Function::ChatSend), "moebi-t1-chat-send");
        assert_eq!(n.rule("chat-to-us-east-1"), "moebi-t1-chat-to-us-east-1");
        assert!(n.validate().is_ok());
        assert!(AwsNames::namespaced("a b").validate().is_err());
        assert!(AwsNames::namespaced(&"x".repeat(21)).validate().is_err());
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
