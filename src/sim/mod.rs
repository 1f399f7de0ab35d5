//! A deterministic simulation of the whole multi-region system on the embedded engine: one seed
//! is one schedule.
//!
//! Each step the seed picks one of: a client publishes its next event on a region's bus (now
//! and then twice, as a retrying client or EventBridge's at-least-once delivery does); a
//! region's event source mapping receives a batch of random size from one of its queues and
//! runs the function (or the process crashes in the middle of the batch, at a random call to
//! the store or bus, maybe losing the answer of a write that happened; or the batch's delete is
//! lost); replication copies a few records from one region to another (lag is replication not
//! yet stepped); a link between two regions is partitioned or healed; the whole engine crashes
//! and restarts from its state directory; time passes until the next hidden message is visible.
//!
//! After the last event the links heal and everything drains; then [`check`] compares every
//! region with what the accepted events must have done: replicas equal, each inbox entry and
//! bot reply once, each share the sum of its accepted adds, every bad event (and nothing else)
//! a dead letter, no answer of the stock above what was accepted.
//!
//! With [`Design::Naive`] the same schedules run over the design moebi rejected (one stock item
//! per product, added to from every region, replicated last writer wins): it loses updates.

mod check;
mod explore;
mod faults;
mod run;
mod workload;

pub use check::Findings;
pub use explore::{explore, one, Found, Seeds};
pub use run::{run_seed, SeedRun};

/// Which design of the stock the simulation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// moebi's: each region adds to its own share of a product; shares are summed when read.
    Shares,
    /// The rejected one: one item per product, `ADD` from every region, last writer wins.
    Naive,
}

/// What a run of many seeds did, summed.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Events published (duplicates included).
    pub events: u64,
    /// Crashes (of the engine, and inside handlers).
    pub crashes: u64,
    /// Partitions between two regions.
    pub partitions: u64,
    /// Effects lost.
    pub lost: u64,
    /// Effects applied more than once.
    pub doubled: u64,
}

impl Summary {
    /// Adds one seed's run.
    pub fn add(&mut self, run: &SeedRun) {
        self.seeds += 1;
        self.events += run.events;
        self.crashes += run.crashes;
        self.partitions += run.partitions;
        self.lost += run.findings.lost;
        self.doubled += run.findings.doubled;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "simulation: {} seeds, {} events, {} crashes, {} partitions, lost {}, doubled {}",
            self.seeds, self.events, self.crashes, self.partitions, self.lost, self.doubled
        )
    }
}
