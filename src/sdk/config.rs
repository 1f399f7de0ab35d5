//! The SDK configuration: how every call retries and times out, and where credentials come
//! from.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

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
    // An emulator accepts any signature; without these, a machine with no AWS credentials
    // would fail to sign at all.
    let credentials = if endpoint_url.is_some() && !credentials_in_env() {
        SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "test",
            "test",
            None,
            None,
            "moebi-emulator",
        ))
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
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    if let Some(url) = endpoint_url {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The SDK's whole default chain (profiles, SSO, web identity, IMDS…): the CLI's. Not in a
/// function (feature `aws`).
#[cfg(feature = "aws")]
pub async fn default_chain(region: &str) -> SharedCredentialsProvider {
    use aws_config::default_provider::credentials::DefaultCredentialsChain;
    use aws_config::provider_config::ProviderConfig;
    SharedCredentialsProvider::new(
        DefaultCredentialsChain::builder()
            .configure(
                ProviderConfig::without_region()
                    .with_http_client(super::http_client())
                    .with_region(Some(Region::new(region.to_owned()))),
            )
            .build()
            .await,
    )
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
