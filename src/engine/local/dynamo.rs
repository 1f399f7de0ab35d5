//! The embedded DynamoDB: one dynoxide database per region (`<state>/<region>.dynamodb`), and
//! the SDK clients that talk to it. The store and the replicator reach it exactly as they
//! reach DynamoDB, through the SDK; the engine's clients hand the requests to dynoxide in
//! process ([`super::inprocess`]), as a loopback socket cost ten times the operation itself
//! (`make bench`). It can also be served on a loopback port, for other processes.

use std::path::Path;

use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region as SdkRegion, SharedCredentialsProvider, SharedHttpClient,
};
use tokio::sync::oneshot;

use crate::contract::Region;
use crate::engine::EngineError;

/// One region's embedded DynamoDB: reached in process by the engine, or also served on a
/// loopback port (`moebi serve-dynamodb`, the fault-injection test) until dropped.
pub struct EmbeddedDynamo {
    db: dynoxide::Database,
    url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
}

impl EmbeddedDynamo {
    /// Opens (creating if needed) the database at `path`, reached in process.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let name = path.to_string_lossy();
        let db = dynoxide::Database::new(&name)
            .map_err(|e| EngineError::state(format!("cannot open {name}"), e))?;
        // dynoxide opens its file with SQLite's FULL sync, an fsync per write (3 ms here); its
        // normal profile is WAL with NORMAL sync, which survives a crash of the process (what
        // tests/crash.rs kills), not of the machine: the same trade as the queues make.
        db.disable_bulk_loading()
            .map_err(|e| EngineError::state(format!("cannot tune {name}"), e))?;
        index_streams(path).map_err(|e| EngineError::state(format!("cannot index {name}"), e))?;
        Ok(Self {
            db,
            url: None,
            stop: None,
        })
    }

    /// Opens the database of `table` at `path`; a new one is built aside (`<path>.new`: the
    /// table, its stream and TTL, the stream indexes) and renamed into place, so a process
    /// killed at any moment leaves either no database there or a whole one. An existing one
    /// is opened as it is, with no schema work.
    pub async fn open_table(
        path: &Path,
        table: &str,
        region: &Region,
    ) -> Result<Self, EngineError> {
        if !path.exists() {
            let aside = path.with_extension("dynamodb.new");
            let what = || format!("cannot create {}", path.display());
            remove_leftovers(&aside).map_err(|e| EngineError::state(what(), e))?;
            {
                let building = Self::open(&aside)?;
                crate::store::schema::ensure_table(&building.dynamo(region), table).await?;
            }
            checkpoint(&aside)
                .map_err(|e| EngineError::state(what(), e))
                .and_then(|()| {
                    std::fs::rename(&aside, path).map_err(|e| EngineError::state(what(), e))
                })?;
        }
        Self::open_existing(path)
    }

    /// An in-memory database, a copy of the one at `template` (a database [`Self::open_table`]
    /// made): what the simulation runs on, where a crash keeps what was committed.
    pub fn memory(template: &Path) -> Result<Self, EngineError> {
        let what = || format!("cannot copy {} into memory", template.display());
        let db = dynoxide::Database::memory().map_err(|e| EngineError::state(what(), e))?;
        db.restore_from(&template.to_string_lossy())
            .map_err(|e| EngineError::state(what(), e))?;
        Ok(Self::of(db))
    }

    /// This handle's database, shared: another handle on the same data.
    pub fn share(&self) -> Self {
        Self::of(self.db.clone())
    }

    fn of(db: dynoxide::Database) -> Self {
        Self {
            db,
            url: None,
            stop: None,
        }
    }

    fn open_existing(path: &Path) -> Result<Self, EngineError> {
        let name = path.to_string_lossy();
        let db = dynoxide::Database::new(&name)
            .map_err(|e| EngineError::state(format!("cannot open {name}"), e))?;
        db.disable_bulk_loading()
            .map_err(|e| EngineError::state(format!("cannot tune {name}"), e))?;
        Ok(Self::of(db))
    }

    /// Opens the database at `path` and also serves it on a free loopback port.
    pub async fn start(path: &Path) -> Result<Self, EngineError> {
        let mut dynamo = Self::open(path)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| EngineError::state("cannot bind a loopback port", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| EngineError::state("cannot read the bound port", e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let db = dynamo.db.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = dynoxide::server::serve_with_shutdown(listener, db, shutdown).await {
                tracing::error!(error = %e, "the embedded DynamoDB stopped");
            }
        });
        dynamo.url = Some(format!("http://{addr}"));
        dynamo.stop = Some(stop);
        Ok(dynamo)
    }

    /// Where it listens, when served.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// How the SDK reaches it: over loopback when served, else in process.
    fn http_client(&self) -> SharedHttpClient {
        match &self.url {
            Some(_) => crate::sdk::loopback_http_client(),
            None => super::inprocess::client(self.db.clone()),
        }
    }

    /// The endpoint the SDK addresses: the server, or a name the in-process client ignores.
    fn endpoint(&self) -> &str {
        self.url.as_deref().unwrap_or("http://dynamodb.embedded")
    }

    /// A DynamoDB client for `region`'s database. In process, its requests are not signed (no
    /// credentials: the SDK's no-auth scheme), as nothing checks them and SigV4 was 6% of the
    /// simulation's time (perf); dynoxide's server wants an `Authorization` header, so requests
    /// over loopback carry a signature it does not check.
    pub fn dynamo(&self, region: &Region) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(SdkRegion::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .http_client(self.http_client());
        match self.url {
            Some(_) => config.set_credentials_provider(Some(credentials())),
            None => config.set_allow_no_auth(),
        };
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// A DynamoDB Streams client for `region`'s database, signed as [`Self::dynamo`]'s.
    pub fn streams(&self, region: &Region) -> aws_sdk_dynamodbstreams::Client {
        let mut config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new(
                region.to_string(),
            ))
            .endpoint_url(self.endpoint())
            .http_client(self.http_client());
        match self.url {
            Some(_) => config.set_credentials_provider(Some(credentials())),
            None => config.set_allow_no_auth(),
        };
        aws_sdk_dynamodbstreams::Client::from_conf(config.build())
    }
}

/// Dynoxide finds the next stream sequence number, and a shard's records, by casting every
/// stream record's sequence number (`MAX(CAST(sequence_number AS INTEGER))`): a scan of the
/// whole stream on every write, which made the engine slower with every event it had handled.
/// Indexes on those very expressions turn both into lookups (31 ms to 4 µs at 100,000 records).
const STREAM_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS moebi_stream_seq
        ON _stream_records (table_name, CAST(sequence_number AS INTEGER));
    CREATE INDEX IF NOT EXISTS moebi_stream_shard_seq
        ON _stream_records (table_name, shard_id, CAST(sequence_number AS INTEGER));";

/// Moves everything a closed database wrote into its main file, so that the file alone is
/// the whole database and can be renamed.
pub(super) fn checkpoint(path: &Path) -> Result<(), rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    conn.close().map_err(|(_, e)| e)
}

/// What signs the requests to the served database (which checks no signature).
fn credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        "moebi",
        "embedded",
        None,
        None,
        "moebi-embedded",
    ))
}

/// Removes a database file cut short and its journal files, if there.
pub(super) fn remove_leftovers(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn index_streams(path: &Path) -> Result<(), rusqlite::Error> {
    rusqlite::Connection::open(path)?.execute_batch(STREAM_INDEXES)
}

impl Drop for EmbeddedDynamo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
