//! The AWS SDK as moebi uses it, in one leaf module that imports nothing else of moebi: the HTTP
//! client every SDK client sends through, the retry and timeout policy, the SDK configuration a
//! function or the CLI loads, and [`SdkFailure`], the one sorting of the SDK's errors. The
//! store, the bus, the replicator and both engines import it; it imports none of them.

mod failure;
mod http;

#[cfg(feature = "function")]
mod config;

#[cfg(feature = "aws")]
pub use config::load_default;
#[cfg(feature = "function")]
pub use config::{lambda_credentials, load, policy};
pub use failure::SdkFailure;
pub use http::{
    http_client, https_client, loopback_http_client, TrustError, TrustRoots, CA_BUNDLE,
};
