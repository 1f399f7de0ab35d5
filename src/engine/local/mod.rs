//! The embedded engine: every region of the topology on one machine, under a state directory.
//!
//! - **Store**: the DynamoDB store of [`crate::store`], on an embedded DynamoDB (dynoxide),
//!   one database per region (`<state>/<region>.dynamodb`): the same code that runs on AWS.
//! - **Replication**: the shared [`Replicator`] reads each region's table stream and applies
//!   what that region wrote to the others, as global tables do.
//! - **Bus and queues**: an in-process bus per region evaluating the rules Terraform writes,
//!   and SQLite queues (`<state>/queues.sqlite`) that the shared event source mapping
//!   ([`crate::engine::pump`]) feeds to the functions.
//!
//! Several processes may share one state directory: SQLite and dynoxide lock their files, and
//! every write is conditional, so two processes draining the same queues apply each effect once.

mod bus;
mod dynamo;
mod inprocess;
mod journal;
mod queues;
mod state;
mod timeline;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

pub use bus::envelope;
pub use dynamo::EmbeddedDynamo;

use super::pump::{self, Mapping};
use super::queue::Queue;
use super::replicator::{Link, Replica, Replicator};
use super::{unknown_region, Engine, EngineError, RunReport};
use crate::contract::Region;
use crate::ports::Ports;
use crate::resources::ResourceNames;
use crate::store::DynamoStore;
use crate::topology::Topology;
use bus::{Buses, RegionBus};
use queues::SqliteQueue;
use state::StateDb;

/// One region on the embedded engine.
struct LocalRegion {
    store: DynamoStore,
    bus: RegionBus,
    queues: Vec<(Mapping, Arc<SqliteQueue>)>,
    _dynamo: EmbeddedDynamo,
}

/// The embedded engine.
pub struct LocalEngine {
    topology: Arc<Topology>,
    regions: BTreeMap<Region, LocalRegion>,
    replicator: Replicator,
    queues: Arc<StateDb>,
    /// The lock on the state directory, held while the engine lives ([`LocalEngine::exclusive`]).
    _lock: Option<std::fs::File>,
}

impl LocalEngine {
    /// Opens (creating if needed) the state of every region of `topology` under `dir`.
    ///
    /// Each file of the state is made whole or not at all (built aside, then renamed), under a
    /// lock on `<dir>/init.lock` while any is missing: a command killed at any moment, the
    /// first included, leaves a state the next one completes. Existing files are opened as
    /// they are, with no schema work.
    pub async fn open(dir: &Path, topology: Topology) -> Result<Self, EngineError> {
        create_dir(dir)?;
        let names = ResourceNames::default();
        let path = |region: &Region| dir.join(format!("{region}.dynamodb"));
        let complete =
            dir.join("queues.sqlite").exists() && topology.regions.iter().all(|r| path(r).exists());
        let _init = if complete {
            None
        } else {
            Some(lock(&dir.join("init.lock")).await?)
        };
        let queues = StateDb::open(dir)?;
        let mut dynamos = Vec::new();
        for region in &topology.regions {
            dynamos.push(EmbeddedDynamo::open_table(&path(region), &names.table, region).await?);
        }
        Self::assemble(topology, queues, dynamos)
    }

    /// The engine on `state`, in memory: what the simulation runs on. Dropping the engine and
    /// opening it again on the same state is a crash: only what was committed is left.
    pub fn in_memory(state: &MemoryState, topology: Topology) -> Result<Self, EngineError> {
        let dynamos = state.dynamos.iter().map(EmbeddedDynamo::share).collect();
        Self::assemble(topology, state.queues.clone(), dynamos)
    }

    fn assemble(
        topology: Topology,
        queues: Arc<StateDb>,
        dynamos: Vec<EmbeddedDynamo>,
    ) -> Result<Self, EngineError> {
        let topology = Arc::new(topology);
        let names = ResourceNames::default();
        let buses = Arc::new(Buses::new(&topology, queues.clone())?);
        let mut regions = BTreeMap::new();
        let mut replicas = Vec::new();
        for (region, dynamo) in topology.regions.iter().zip(dynamos) {
            let client = dynamo.dynamo(region);
            replicas.push(Replica {
                region: region.clone(),
                table: names.table.clone(),
                dynamo: client.clone(),
                streams: dynamo.streams(region),
            });
            let region_queues = pump::mappings(&topology, region)
                .into_iter()
                .map(|m| {
                    let queue =
                        SqliteQueue::new(queues.clone(), region, names.queue(m.function), m);
                    (m, Arc::new(queue))
                })
                .collect();
            regions.insert(
                region.clone(),
                LocalRegion {
                    store: DynamoStore::new(region.clone(), names.table.clone(), client),
                    bus: RegionBus::new(buses.clone(), region.clone()),
                    queues: region_queues,
                    _dynamo: dynamo,
                },
            );
        }
        let journal = queues.clone();
        let witness: super::replicator::Witness =
            Arc::new(move |from, to, keys| journal.replicated(from, to, keys));
        Ok(Self {
            topology,
            regions,
            replicator: Replicator::new(replicas).witnessed(witness),
            queues,
            _lock: None,
        })
    }

    /// Opens the state under `dir` once no other process holds it, and holds it until dropped:
    /// commands on one state directory take turns (as cargo does with its target directory).
    ///
    /// SQLite and dynoxide lock their files too, but each wait has a limit (5 s for a dynoxide
    /// request): a thousand commands at once would time out some of theirs half-way and leave
    /// the caller unable to tell what happened. Taking turns, each command runs whole.
    pub async fn exclusive(dir: &Path, topology: Topology) -> Result<Self, EngineError> {
        create_dir(dir)?;
        let file = lock(&dir.join("lock")).await?;
        let mut engine = Self::open(dir, topology).await?;
        engine._lock = Some(file);
        Ok(engine)
    }

    fn region(&self, region: &Region) -> Result<&LocalRegion, EngineError> {
        self.regions
            .get(region)
            .ok_or_else(|| unknown_region(&self.topology, region))
    }

    /// The ports of one region, as a handler running there sees them.
    pub fn ports_of(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        let r = self.region(region)?;
        Ok(Ports {
            region: r.store.region(),
            topology: &self.topology,
            inboxes: &r.store,
            stock: &r.store,
            bus: &r.bus,
        })
    }

    /// The store of one region (what its table holds, replicas included).
    pub fn store(&self, region: &Region) -> Result<&DynamoStore, EngineError> {
        Ok(&self.region(region)?.store)
    }

    /// The replication between the regions: its links can be lagged or partitioned.
    pub fn replicator(&self) -> &Replicator {
        &self.replicator
    }

    /// Puts a raw EventBridge envelope on `region`'s bus, valid or not, as any producer may.
    pub fn put_envelope(
        &self,
        region: &Region,
        envelope: &serde_json::Value,
    ) -> Result<(), EngineError> {
        Ok(self.region(region)?.bus.put_envelope(envelope)?)
    }

    /// Moves the queues' clock to the next visibility deadline when no message is visible
    /// (what waiting does); false when no message waits at all.
    pub fn tick(&self) -> Result<bool, EngineError> {
        self.queues.advance_clock()
    }

    /// Every step the journal holds, each with its event, in order (`moebi load`).
    pub fn marks(&self) -> Result<Vec<super::Mark>, EngineError> {
        self.queues.marks()
    }

    /// Sets the replication link from `from` to `to`.
    pub fn set_link(&self, from: &Region, to: &Region, link: Link) {
        self.replicator.set_link(from, to, link);
    }
}

fn create_dir(dir: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        EngineError::state(
            format!("cannot create state directory {}", dir.display()),
            e,
        )
    })
}

/// Waits for and takes the lock on `path`, held until the file is dropped.
async fn lock(path: &Path) -> Result<std::fs::File, EngineError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| EngineError::state(format!("cannot open {}", path.display()), e))?;
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| EngineError::state("cannot wait for the state's lock", e))?
        .map_err(|e| EngineError::state(format!("cannot lock {shown}"), e))
}

/// The state of the embedded engine in memory (the simulation's): every region's DynamoDB and
/// the queues. It outlives the engines opened on it, as a state directory outlives processes.
pub struct MemoryState {
    dynamos: Vec<EmbeddedDynamo>,
    queues: Arc<StateDb>,
}

impl MemoryState {
    /// A fresh state for `topology`, each region's database a copy of `template` (made once
    /// by [`MemoryState::template`]: copying it costs far less than creating a table).
    pub fn new(topology: &Topology, template: &Path) -> Result<Self, EngineError> {
        let dynamos = topology
            .regions
            .iter()
            .map(|_| EmbeddedDynamo::memory(template))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            dynamos,
            queues: StateDb::memory()?,
        })
    }

    /// Makes the region database every in-memory state copies, at `<dir>/template.dynamodb`.
    pub async fn template(dir: &Path) -> Result<std::path::PathBuf, EngineError> {
        let path = dir.join("template.dynamodb");
        let region = Region::parse("us-east-1")
            .map_err(|e| EngineError::state("the template's region", e))?;
        EmbeddedDynamo::open_table(&path, &ResourceNames::default().table, &region).await?;
        Ok(path)
    }
}

#[async_trait]
impl Engine for LocalEngine {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn front_ports(&self, region: &Region) -> Result<crate::front::FrontPorts<'_>, EngineError> {
        let ports = self.ports(region)?;
        let r = self.region(region)?;
        Ok(crate::front::FrontPorts {
            site: ports.site(),
            bus: &r.bus,
            inboxes: &r.store,
            requests: &r.store,
        })
    }

    fn ports(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        self.ports_of(region)
    }

    async fn run_until_idle(&self) -> Result<RunReport, EngineError> {
        let mut report = RunReport::default();
        loop {
            // Replication first: what a client did before (an add elsewhere) is in every
            // region before its next event (a question) is delivered, as replication usually
            // beats a person; the simulation drives lag and partitions where it does not.
            let replicated = self.replicator.run().await?;
            let mut pass = pump::pump_all(self).await?;
            pass.replicated += replicated;
            report += pass;
            if pass.progressed() {
                continue;
            }
            if !self.tick()? {
                return Ok(report);
            }
        }
    }

    async fn invoke(
        &self,
        region: &Region,
        function: crate::topology::Function,
        payload: &crate::invoke::Payload,
    ) -> Result<crate::invoke::Response, EngineError> {
        let started = std::time::Instant::now();
        let response = crate::invoke::invoke(function, &self.ports_of(region)?, payload).await;
        let elapsed = started.elapsed();
        self.queues
            .invoked(region.as_str(), function.name(), &response, elapsed);
        Ok(response)
    }

    async fn trace(&self, id: &str) -> Result<Option<super::Trace>, EngineError> {
        self.queues.trace(id)
    }

    async fn stats(&self) -> Result<Vec<super::Stats>, EngineError> {
        self.queues.stats()
    }

    async fn queues(&self, region: &Region) -> Result<Vec<(Mapping, Arc<dyn Queue>)>, EngineError> {
        Ok(self
            .region(region)?
            .queues
            .iter()
            .map(|(m, q)| (*m, q.clone() as Arc<dyn Queue>))
            .collect())
    }
}
