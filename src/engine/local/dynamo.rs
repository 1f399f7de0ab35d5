//! The embedded DynamoDB: one dynoxide database per region (`<state>/<region>.dynamodb`),
//! served on a loopback port for this process, and the SDK clients that talk to it. The store
//! and the replicator reach it exactly as they reach DynamoDB.
//!
//! Why a loopback listener rather than an SDK HTTP client calling the server in-process:
//! dynoxide keeps its router private, so in-process dispatch would mean rewriting its request
//! routing; `make bench` measures what the socket costs per operation (see the README).

use std::path::Path;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region as SdkRegion};
use tokio::sync::oneshot;

use crate::contract::Region;
use crate::engine::EngineError;

/// One region's embedded DynamoDB, served until dropped.
pub struct EmbeddedDynamo {
    url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl EmbeddedDynamo {
    /// Opens (creating if needed) the database at `path` and serves it on a free loopback port.
    pub async fn start(path: &Path) -> Result<Self, EngineError> {
        let name = path.to_string_lossy();
        let db = dynoxide::Database::new(&name)
            .map_err(|e| EngineError::state(format!("cannot open {name}"), e))?;
        // dynoxide opens its file with SQLite's FULL sync, an fsync per write (3 ms here); its
        // normal profile is WAL with NORMAL sync, which survives a crash of the process (what
        // tests/crash.rs kills), not of the machine: the same trade as the queues make.
        db.disable_bulk_loading()
            .map_err(|e| EngineError::state(format!("cannot tune {name}"), e))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| EngineError::state("cannot bind a loopback port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| EngineError::state("cannot read the bound port", e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = dynoxide::server::serve_with_shutdown(listener, db, shutdown).await {
                tracing::error!(error = %e, "the embedded DynamoDB stopped");
            }
        });
        Ok(Self {
            url: format!("http://{addr}"),
            stop: Some(stop),
        })
    }

    /// Where it listens.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A DynamoDB client for `region`'s database.
    pub fn dynamo(&self, region: &Region) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(SdkRegion::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(credentials())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// A DynamoDB Streams client for `region`'s database.
    pub fn streams(&self, region: &Region) -> aws_sdk_dynamodbstreams::Client {
        let config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(
                region.to_string(),
            ))
            .endpoint_url(&self.url)
            .credentials_provider(credentials())
            .build();
        aws_sdk_dynamodbstreams::Client::from_conf(config)
    }
}

/// The embedded server checks no signature; the SDK insists on signing with something.
fn credentials() -> Credentials {
    Credentials::new("moebi", "embedded", None, None, "moebi-embedded")
}

impl Drop for EmbeddedDynamo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
