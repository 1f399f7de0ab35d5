//! The HTTP clients the SDK clients send through.

use aws_sdk_dynamodb::config::SharedHttpClient;

/// The HTTP client of every SDK client that talks to AWS: hyper with rustls on ring (the SDK's
/// default is aws-lc, which made each function about 6 MB larger together with the other
/// dependencies dropped then; README, "Speed, size and cost"). Built once per process.
pub fn http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    static CLIENT: std::sync::OnceLock<SharedHttpClient> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https()
        })
        .clone()
}

/// A plain HTTP client, for an endpoint on loopback (the embedded DynamoDB): no TLS, no
/// certificates to load.
pub fn loopback_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}
