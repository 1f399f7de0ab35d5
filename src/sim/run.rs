//! One seed's schedule, stepped.

use std::collections::BTreeMap;
use std::path::Path;

use super::check::{check, Findings};
use super::faults::{Fuse, Fused, NaiveStock};
use super::workload::{generate, Planned};
use super::Design;
use crate::contract::{Event, Region};
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
        naive: BTreeMap::new(),
        cut: Vec::new(),
        run: SeedRun {
            seed,
            events: 0,
            crashes: 0,
            partitions: 0,
            findings: Findings::default(),
            trace: Vec::new(),
        },
    };
    sim.naive_stock()?;
    let mut published = vec![0u32; plan.len()];
    let mut next = 0;
    let mut tail = 0;
    while tail < TAIL_STEPS {
        if next < plan.len() && sim.rng.u32(0..100) < 30 {
            sim.publish(&plan[next], &mut published[next])?;
            next += 1;
        } else {
            sim.step().await?;
            if next == plan.len() {
                tail += 1;
            }
        }
    }
    sim.drain().await?;
    let share_region = |event: &Event| match (design, event) {
        (Design::Shares, Event::StockAdd(a)) => topology
            .store_home(&a.store)
            .cloned()
            .unwrap_or_else(|| topology.regions[0].clone()),
        _ => topology.regions[0].clone(),
    };
    sim.run.findings = check(&sim.engine, &plan, &published, &share_region).await?;
    Ok(sim.run)
}

struct Sim {
    rng: fastrand::Rng,
    state: MemoryState,
    topology: Topology,
    design: Design,
    engine: LocalEngine,
    naive: BTreeMap<Region, NaiveStock>,
    /// The pairs of regions partitioned from each other.
    cut: Vec<(Region, Region)>,
    run: SeedRun,
}

impl Sim {
    fn trace(&mut self, what: String) {
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
        if let Some(naive) = self.naive.get(region) {
            ports.stock = naive;
        }
        Ok(ports)
    }

    fn naive_stock(&mut self) -> Result<(), EngineError> {
        self.naive.clear();
        if self.design == Design::Naive {
            for region in &self.topology.regions {
                let store = self.engine.store(region)?.clone();
                let shared = self.topology.regions[0].clone();
                self.naive
                    .insert(region.clone(), NaiveStock { store, shared });
            }
        }
        Ok(())
    }

    fn publish(&mut self, planned: &Planned, published: &mut u32) -> Result<(), EngineError> {
        let times = if self.rng.u32(0..100) < 10 { 2 } else { 1 };
        for _ in 0..times {
            self.engine
                .put_envelope(&planned.origin, &planned.envelope)?;
        }
        *published += times;
        self.run.events += u64::from(times);
        self.trace(format!("publish x{times} {}", planned.describe()));
        Ok(())
    }

    async fn step(&mut self) -> Result<(), EngineError> {
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
        self.set(&a, &b, Link::Partitioned);
        self.trace(format!("partition {a} | {b}"));
        self.cut.push((a, b));
        self.run.partitions += 1;
    }

    fn heal_one(&mut self) {
        if self.cut.is_empty() {
            return;
        }
        let (a, b) = self.cut.remove(self.rng.usize(..self.cut.len()));
        self.set(&a, &b, Link::Open);
        self.trace(format!("heal {a} | {b}"));
    }

    fn set(&self, a: &Region, b: &Region, link: Link) {
        self.engine.set_link(a, b, link);
        self.engine.set_link(b, a, link);
    }

    /// The process dies and starts again from its state; the network stays as it is.
    async fn restart(&mut self) -> Result<(), EngineError> {
        self.run.crashes += 1;
        self.naive.clear();
        let fresh = LocalEngine::in_memory(&self.state, self.topology.clone())?;
        drop(std::mem::replace(&mut self.engine, fresh));
        for (a, b) in self.cut.clone() {
            self.set(&a, &b, Link::Partitioned);
        }
        self.naive_stock()
    }

    /// Heals every link and runs until nothing is left to replicate or deliver.
    async fn drain(&mut self) -> Result<(), EngineError> {
        self.engine.replicator().heal();
        self.cut.clear();
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
