//! The SDK configuration: how every call retries and times out, and where credentials come
//! from.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// How every AWS call retries and times out: chosen, not inherited (`tests/faults.rs` runs
/// the handlers and the pump through injected faults with these).
///
/// - **Retries**: the standard mode, 5 attempts, backoff from 50 ms doubling to at most 2 s. A
///   throttled or failed call, or a dropped connection, is tried again within about 4 s, well
///   inside a function's 30 s timeout. What still fails fails the record, which SQS delivers
///   again: nothing is lost, and a write whose answer was lost is recognised as a duplicate.
/// - **Timeouts**: 2 s to connect and 5 s per attempt, so a call whose answer never comes is
///   abandoned and retried rather than holding the function until Lambda kills it; 20 s for
///   all attempts, so one record's calls end before the function's timeout.
pub fn policy() -> (RetryConfig, TimeoutConfig) {
    let retry = RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(2));
    let timeout = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(20))
        .build();
    (retry, timeout)
}

/// The SDK configuration signing for `region` with `credentials`, through
/// [`super::http_client`], with [`policy`]; at `endpoint_url` (an emulator) when given. A
/// function passes [`lambda_credentials`], the CLI [`default_chain`]: each links only its own.
pub fn load(
    region: &str,
    endpoint_url: Option<&str>,
    credentials: SharedCredentialsProvider,
) -> SdkConfig {
    let (retry, timeout) = policy();
    let credentials = if endpoint_url.is_some() && !credentials_in_env() {
        SharedCredentialsProvider::new(stand_in())
    } else {
        credentials
    };
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .http_client(super::http_client())
        .retry_config(retry)
        .timeout_config(timeout)
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio's sleep"))
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .service_config(EnvServiceConfig(|name| std::env::var(name).ok()));
    if let Some(url) = endpoint_url {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// What the SDK reads per service from the environment: `AWS_ENDPOINT_URL_DYNAMODB` before
/// `AWS_ENDPOINT_URL`, and so on, unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true; as
/// aws-config's loader does, without its profile files.
#[derive(Debug)]
struct EnvServiceConfig(fn(&str) -> Option<String>);

impl LoadServiceConfig for EnvServiceConfig {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let get = |name: &str| (self.0)(name).filter(|v| !v.is_empty());
        let ignored = get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if ignored && key.env() == "AWS_ENDPOINT_URL" {
            return None;
        }
        let service = key
            .service_id()
            .to_ascii_uppercase()
            .replace([' ', '-'], "_");
        get(&format!("{}_{service}", key.env())).or_else(|| get(key.env()))
    }
}

/// The CLI's configuration: aws-config's loader whole (profiles, SSO, web identity, IMDS…),
/// with the same client, policy and emulator stand-in as [`load`]. Not in a function (feature
/// `aws`).
#[cfg(feature = "aws")]
pub async fn load_default(region: &str, endpoint_url: Option<&str>) -> SdkConfig {
    let (retry, timeout) = policy();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .http_client(super::http_client())
        .retry_config(retry)
        .timeout_config(timeout);
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        if !credentials_in_env() {
            loader = loader.credentials_provider(stand_in());
        }
    }
    loader.load().await
}

/// Credentials for an emulator, which accepts any signature: without them, a machine with no
/// AWS credentials would fail to sign at all.
fn stand_in() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("test", "test", None, None, "moebi-emulator")
}

/// What Lambda gives a function: the environment (`AWS_ACCESS_KEY_ID`…), else the container
/// endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, as on Managed Instances). Nothing else is
/// linked into a function: no profile files, SSO, STS or IMDS.
pub fn lambda_credentials() -> SharedCredentialsProvider {
    use aws_config::ecs::EcsCredentialsProvider;
    use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
    use aws_config::meta::credentials::CredentialsProviderChain;
    use aws_config::provider_config::ProviderConfig;
    let container = EcsCredentialsProvider::builder()
        .configure(&ProviderConfig::without_region().with_http_client(super::http_client()))
        .build();
    SharedCredentialsProvider::new(
        CredentialsProviderChain::first_try(
            "Environment",
            EnvironmentVariableCredentialsProvider::new(),
        )
        .or_else("EcsContainer", container),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str) -> ServiceConfigKey<'_> {
        ServiceConfigKey::builder()
            .service_id(service)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .unwrap()
    }

    #[test]
    fn a_service_endpoint_comes_before_the_global_one_unless_endpoints_are_ignored() {
        let env = EnvServiceConfig(|name| match name {
            "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://dynamo".into()),
            "AWS_ENDPOINT_URL" => Some("http://all".into()),
            _ => None,
        });
        assert_eq!(
            env.load_config(key("DynamoDB")).as_deref(),
            Some("http://dynamo")
        );
        assert_eq!(
            env.load_config(key("EventBridge")).as_deref(),
            Some("http://all")
        );
        let ignored = EnvServiceConfig(|name| match name {
            "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://dynamo".into()),
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" => Some("true".into()),
            _ => None,
        });
        assert_eq!(ignored.load_config(key("DynamoDB")), None);
    }
}
