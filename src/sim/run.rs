//! One seed's schedule, stepped.

use std::collections::BTreeMap;
use std::path::Path;

use super::check::{check, Findings};
use super::faults::{Fuse, Fused, ShareStock};
use super::outage::{Availability, Outage};
use super::workload::{generate, Planned};
use super::Design;
use crate::contract::Region;
use crate::engine::local::{LocalEngine, MemoryState};
use crate::engine::pump;
use crate::engine::replicator::Link;
use crate::engine::{Engine, EngineError};
use crate::ports::Ports;
use crate::topology::Topology;

/// Steps after the last event is published, before the links heal and everything drains.
const TAIL_STEPS: usize = 20;
/// Most passes of the final drain; more means the run does not settle.
const MAX_DRAIN_PASSES: usize = 10_000;

/// What one seed did and what its end state broke.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Events published (duplicates included).
    pub events: u64,
    /// Crashes (of the engine, and inside handlers).
    pub crashes: u64,
    /// Partitions between two regions.
    pub partitions: u64,
    /// Publishes a client made through another region than it meant to: its region was down,
    /// or it got no answer and retried elsewhere.
    pub failed_over: u64,
    /// Per region, what its residents got during its outages.
    pub outages: BTreeMap<Region, Availability>,
    /// What the end state broke.
    pub findings: Findings,
    /// Every step, in order.
    pub trace: Vec<String>,
}

impl SeedRun {
    /// Whether every guarantee held.
    pub fn passed(&self) -> bool {
        self.findings.violations.is_empty()
    }
}

/// Runs the schedule of `seed` over `design`, on a fresh state in memory whose databases copy
/// `template` ([`MemoryState::template`]). A crash drops every engine and keeps what was
/// committed, as a SIGKILL does (`tests/crash.rs` kills real processes on files). A batch's
/// records run one at a time, so that the seed replays exactly.
pub async fn run_seed(
    seed: u64,
    design: Design,
    template: &Path,
    topology: &Topology,
) -> Result<SeedRun, EngineError> {
    crate::invoke::one_at_a_time(run_schedule(seed, design, template, topology)).await
}

async fn run_schedule(
    seed: u64,
    design: Design,
    template: &Path,
    topology: &Topology,
) -> Result<SeedRun, EngineError> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let count = rng.usize(8..=24);
    let plan = generate(&mut rng, topology, count);
    let state = MemoryState::new(topology, template)?;
    let mut sim = Sim {
        engine: LocalEngine::in_memory(&state, topology.clone())?,
        state,
        rng,
        topology: topology.clone(),
        design,
        stocks: BTreeMap::new(),
        cut: Vec::new(),
        outage: None,
        retries: Vec::new(),
        recent: Vec::new(),
        run: SeedRun {
            seed,
            events: 0,
            crashes: 0,
            partitions: 0,
            failed_over: 0,
            outages: BTreeMap::new(),
            findings: Findings::default(),
            trace: Vec::new(),
        },
    };
    sim.design_stock()?;
    let mut published = vec![0u32; plan.len()];
    let mut next = 0;
    let mut tail = 0;
    while tail < TAIL_STEPS {
        if next < plan.len() && sim.rng.u32(0..100) < 30 {
            sim.publish(&plan, next, &mut published[next])?;
            next += 1;
        } else if !sim.retries.is_empty() && sim.rng.u32(0..100) < 15 {
            sim.retry(&plan, &mut published)?;
        } else {
            sim.step(&plan).await?;
            if next == plan.len() {
                tail += 1;
            }
        }
    }
    while !sim.retries.is_empty() {
        sim.retry(&plan, &mut published)?;
    }
    sim.recover(&plan).await?;
    sim.drain().await?;
    sim.run.findings = check(&sim.engine, &plan, &published).await?;
    Ok(sim.run)
}

pub(super) struct Sim {
    pub(super) rng: fastrand::Rng,
    pub(super) state: MemoryState,
    /// The topology as shipped (no region evacuated).
    pub(super) topology: Topology,
    design: Design,
    pub(super) engine: LocalEngine,
    stocks: BTreeMap<Region, ShareStock>,
    /// The pairs of regions partitioned from each other.
    cut: Vec<(Region, Region)>,
    /// The region that is down, if one is.
    pub(super) outage: Option<Outage>,
    /// Clients waiting to publish again (they got no answer): the event, and the region
    /// they published it through.
    pub(super) retries: Vec<(usize, Region)>,
    /// The last few publishes: the event, and the region it went through.
    pub(super) recent: Vec<(usize, Region)>,
    pub(super) run: SeedRun,
}

impl Sim {
    pub(super) fn trace(&mut self, what: String) {
        let step = self.run.trace.len();
        self.run.trace.push(format!("{step:>4} {what}"));
    }

    fn region(&mut self) -> Region {
        let regions = &self.topology.regions;
        regions[self.rng.usize(..regions.len())].clone()
    }

    /// Two different regions.
    fn pair(&mut self) -> (Region, Region) {
        let a = self.region();
        let others: Vec<&Region> = self.topology.regions.iter().filter(|r| **r != a).collect();
        let b = others[self.rng.usize(..others.len())].clone();
        (a, b)
    }

    /// The ports a function sees in `region`, with the design's stock.
    fn ports(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        let mut ports = self.engine.ports_of(region)?;
        if let Some(stock) = self.stocks.get(region) {
            ports.stock = stock;
        }
        Ok(ports)
    }

    fn design_stock(&mut self) -> Result<(), EngineError> {
        self.stocks.clear();
        let shared = match self.design {
            Design::Ledger => return Ok(()),
            Design::Shares => None,
            Design::Naive => Some(self.topology.regions[0].clone()),
        };
        for region in &self.topology.regions {
            let store = self.engine.store(region)?.clone();
            let shared = shared.clone();
            self.stocks
                .insert(region.clone(), ShareStock { store, shared });
        }
        Ok(())
    }

    async fn step(&mut self, plan: &[Planned]) -> Result<(), EngineError> {
        if self.outage_turn(plan).await? {
            return Ok(());
        }
        match self.rng.u32(0..100) {
            0..=54 => self.deliver().await,
            55..=74 => self.replicate().await,
            75..=79 => {
                self.partition();
                Ok(())
            }
            80..=86 => {
                self.heal_one();
                Ok(())
            }
            87..=90 => {
                self.trace("crash: the engine restarts from its state".into());
                self.restart().await
            }
            _ => {
                self.engine.tick()?;
                Ok(())
            }
        }
    }

    /// One receive of one queue of one region, and the function run on what it got.
    async fn deliver(&mut self) -> Result<(), EngineError> {
        let region = self.region();
        if self.is_down(&region) {
            return Ok(());
        }
        let queues = self.engine.queues(&region).await?;
        let (mapping, queue) = queues[self.rng.usize(..queues.len())].clone();
        let max = self.rng.u32(1..=mapping.batch_size);
        let batch = queue.receive(max).await?;
        if batch.is_empty() {
            return Ok(());
        }
        // A fault costs a receive: only where the message keeps a receive to succeed with, as
        // a message faulted until its redrive limit is lost to any system.
        let faultable = batch
            .iter()
            .all(|m| m.receive_count + 2 <= mapping.max_receives);
        let roll = if faultable { self.rng.u32(0..100) } else { 100 };
        let what = format!("{region} {} x{}", queue.name(), batch.len());
        if roll < 10 {
            let calls = self.rng.usize(0..=2 * batch.len());
            let drop_response = self.rng.bool();
            let fuse = Fuse::new(calls, drop_response);
            {
                let fused = Fused {
                    ports: self.ports(&region)?,
                    fuse: &fuse,
                };
                let ports = Ports {
                    region: fused.ports.region,
                    topology: fused.ports.topology,
                    inboxes: &fused,
                    stock: &fused,
                    bus: &fused,
                };
                pump::handle(queue.as_ref(), &mapping, &ports, &batch).await;
            }
            let lost = if drop_response {
                ", its answer lost"
            } else {
                ""
            };
            self.trace(format!("deliver {what}: crash after {calls} calls{lost}"));
            return self.restart().await;
        }
        let results = pump::handle(queue.as_ref(), &mapping, &self.ports(&region)?, &batch).await;
        if roll < 20 {
            self.trace(format!("deliver {what}: handled, the delete lost"));
            return Ok(());
        }
        let report = pump::settle(queue.as_ref(), &mapping, &batch, &results).await?;
        self.trace(format!(
            "deliver {what}: {} handled, {} failed",
            report.handled, report.failed
        ));
        Ok(())
    }

    async fn replicate(&mut self) -> Result<(), EngineError> {
        let (from, to) = self.pair();
        let limit = self.rng.usize(1..=8);
        let copied = self.engine.replicator().step(&from, &to, limit).await?;
        if copied > 0 {
            self.trace(format!("replicate {from} -> {to}: {copied} records"));
        }
        Ok(())
    }

    fn partition(&mut self) {
        let (a, b) = self.pair();
        if self
            .cut
            .iter()
            .any(|(x, y)| (x, y) == (&a, &b) || (x, y) == (&b, &a))
        {
            return;
        }
        self.trace(format!("partition {a} | {b}"));
        self.cut.push((a, b));
        self.set_links();
        self.run.partitions += 1;
    }

    fn heal_one(&mut self) {
        if self.cut.is_empty() {
            return;
        }
        let (a, b) = self.cut.remove(self.rng.usize(..self.cut.len()));
        self.set_links();
        self.trace(format!("heal {a} | {b}"));
    }

    /// Sets every link: partitioned if cut, or if either end is down; else open.
    pub(super) fn set_links(&self) {
        for a in &self.topology.regions {
            for b in self.topology.regions.iter().filter(|b| *b != a) {
                let cut = self
                    .cut
                    .iter()
                    .any(|(x, y)| (x, y) == (a, b) || (x, y) == (b, a));
                let link = if cut || self.is_down(a) || self.is_down(b) {
                    Link::Partitioned
                } else {
                    Link::Open
                };
                self.engine.set_link(a, b, link);
            }
        }
    }

    /// The process dies and starts again from its state; the network stays as it is.
    async fn restart(&mut self) -> Result<(), EngineError> {
        self.run.crashes += 1;
        self.reopen()
    }

    /// A fresh engine on the state, routing as the current homes say (a region evacuated or
    /// not), with the links as they are.
    pub(super) fn reopen(&mut self) -> Result<(), EngineError> {
        self.stocks.clear();
        let fresh = LocalEngine::in_memory(&self.state, self.routing())?;
        drop(std::mem::replace(&mut self.engine, fresh));
        self.set_links();
        self.design_stock()
    }

    /// Heals every link and runs until nothing is left to replicate or deliver.
    async fn drain(&mut self) -> Result<(), EngineError> {
        self.cut.clear();
        self.set_links();
        self.trace("heal everything, drain".into());
        for _ in 0..MAX_DRAIN_PASSES {
            let mut progressed = self.engine.replicator().run().await? > 0;
            for region in self.topology.regions.clone() {
                for (mapping, queue) in self.engine.queues(&region).await? {
                    loop {
                        let pass =
                            pump::pump(queue.as_ref(), &mapping, &self.ports(&region)?).await?;
                        if pass.handled + pass.failed == 0 {
                            break;
                        }
                        progressed = true;
                    }
                }
            }
            if !progressed && !self.engine.tick()? {
                return Ok(());
            }
        }
        Err(EngineError::Runaway(format!(
            "seed {}: still busy after {MAX_DRAIN_PASSES} passes",
            self.run.seed
        )))
    }
}
