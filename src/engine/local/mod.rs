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
mod queues;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

pub use bus::envelope;
pub use dynamo::EmbeddedDynamo;

use super::pump::{self, Mapping};
use super::replicator::{Link, Replica, Replicator};
use super::{unknown_region, DeadLetter, Engine, EngineError, Names, RunReport};
use crate::contract::{ContractError, Event, Participant, Region};
use crate::invoke::{self, Payload, Response};
use crate::ports::{Bus, InboxEntry, Inboxes, Ports};
use crate::store::{schema, DynamoStore};
use crate::topology::{Function, Topology};
use bus::{Buses, RegionBus};
use queues::{QueueDb, SqliteQueue};

/// Most pump passes one run makes; more means something re-publishes forever.
const MAX_PASSES: u64 = 1_000_000;

/// One region on the embedded engine.
struct LocalRegion {
    store: DynamoStore,
    bus: RegionBus,
    queues: Vec<(Mapping, SqliteQueue)>,
    _dynamo: EmbeddedDynamo,
}

/// The embedded engine.
pub struct LocalEngine {
    topology: Arc<Topology>,
    regions: BTreeMap<Region, LocalRegion>,
    replicator: Replicator,
    queues: Arc<QueueDb>,
}

impl LocalEngine {
    /// Opens (creating if needed) the state of every region of `topology` under `dir`.
    pub async fn open(dir: &Path, topology: Topology) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            EngineError::state(
                format!("cannot create state directory {}", dir.display()),
                e,
            )
        })?;
        let topology = Arc::new(topology);
        let names = Names::default();
        let queues = QueueDb::open(dir)?;
        let buses = Arc::new(Buses::new(&topology, queues.clone())?);
        let mut regions = BTreeMap::new();
        let mut replicas = Vec::new();
        for region in &topology.regions {
            let dynamo = EmbeddedDynamo::start(&dir.join(format!("{region}.dynamodb"))).await?;
            let client = dynamo.dynamo(region);
            schema::ensure_table(&client, &names.table).await?;
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
                    (m, queue)
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
        Ok(Self {
            topology,
            regions,
            replicator: Replicator::new(replicas),
            queues,
        })
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

    /// Sets the replication link from `from` to `to`.
    pub fn set_link(&self, from: &Region, to: &Region, link: Link) {
        self.replicator.set_link(from, to, link);
    }

    /// One pass over every queue of every region: each is pumped until it has nothing ready.
    async fn pump_all(&self) -> Result<RunReport, EngineError> {
        let mut report = RunReport::default();
        for (region, r) in &self.regions {
            let ports = self.ports_of(region)?;
            for (mapping, queue) in &r.queues {
                loop {
                    let pass = pump::pump(queue, mapping, &ports).await?;
                    report += pass;
                    if pass.handled + pass.failed == 0 {
                        break;
                    }
                    if report.handled + report.failed > MAX_PASSES {
                        return Err(EngineError::Runaway(format!(
                            "more than {MAX_PASSES} deliveries in one run"
                        )));
                    }
                }
            }
        }
        Ok(report)
    }
}

#[async_trait]
impl Engine for LocalEngine {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn ports(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        self.ports_of(region)
    }

    async fn publish(&self, region: &Region, events: &[Event]) -> Result<(), EngineError> {
        Ok(self.region(region)?.bus.publish(events).await?)
    }

    async fn run_until_idle(&self) -> Result<RunReport, EngineError> {
        let mut report = RunReport::default();
        loop {
            // Replication first: what a client did before (an add elsewhere) is in every
            // region before its next event (a question) is delivered, as replication usually
            // beats a person; the simulation drives lag and partitions where it does not.
            let replicated = self.replicator.run().await?;
            let mut pass = self.pump_all().await?;
            pass.replicated += replicated;
            report += pass;
            if pass.progressed() {
                continue;
            }
            if !self.queues.advance_clock()? {
                return Ok(report);
            }
        }
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, EngineError> {
        let home = self
            .topology
            .home_of(owner)
            .ok_or_else(|| ContractError::Unknown {
                field: "participant".into(),
                what: "participant",
                name: owner.to_string(),
            })?;
        Ok(self.region(home)?.store.inbox(owner).await?)
    }

    async fn dead_letters(&self, region: Option<&Region>) -> Result<Vec<DeadLetter>, EngineError> {
        if let Some(r) = region {
            self.region(r)?;
        }
        let mut out = Vec::new();
        for (name, r) in &self.regions {
            if region.is_none_or(|want| want == name) {
                for (_, queue) in &r.queues {
                    out.extend(crate::engine::queue::Queue::dead_letters(queue).await?);
                }
            }
        }
        Ok(out)
    }

    async fn invoke(
        &self,
        region: &Region,
        function: Function,
        payload: &Payload,
    ) -> Result<Response, EngineError> {
        Ok(invoke::invoke(function, &self.ports_of(region)?, payload).await)
    }
}
