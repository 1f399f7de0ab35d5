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
//! Regions go down ([`outage`]): a region's bus takes no client, its functions and replication
//! stop; its clients publish through the next region; a while later it is evacuated (its
//! residents' events go to its standby as well); when it comes back the evacuation ends and its
//! queues drain. Clients that
//! got no answer retry through another region. So one event may be applied in two regions.
//!
//! The same schedules run over the designs moebi rejected: [`Design::Naive`] (one stock item
//! per product, added to from every region, replicated last writer wins) loses updates;
//! [`Design::Shares`] (one share per product and region, moebi's design before failover)
//! counts an add applied in two regions twice.

mod check;
mod clients;
mod explore;
mod faults;
mod outage;
mod run;
mod workload;

pub use check::Findings;
pub use explore::{explore, one, Found, Seeds};
pub use outage::Availability;
pub use run::{run_seed, SeedRun};

use std::collections::BTreeMap;

use crate::contract::Region;

/// Which design of the stock the simulation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// moebi's: a ledger of adds keyed by event id, summed when read.
    Ledger,
    /// The one before failover: each region adds to its own share of a product.
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
    /// Publishes made through another region than the client meant.
    pub failed_over: u64,
    /// Per region, what its residents got during its outages.
    pub outages: BTreeMap<Region, Availability>,
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
        self.failed_over += run.failed_over;
        for (region, a) in &run.outages {
            self.outages.entry(region.clone()).or_default().add(a);
        }
        self.lost += run.findings.lost;
        self.doubled += run.findings.doubled;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outages: u64 = self.outages.values().map(|a| a.outages).sum();
        write!(
            f,
            "simulation: {} seeds, {} events, {} crashes, {} partitions, {outages} outages, {} publishes failed over, lost {}, doubled {}",
            self.seeds, self.events, self.crashes, self.partitions, self.failed_over, self.lost, self.doubled
        )
    }
}

impl Summary {
    /// One line per region: its outages, and the share of its residents' events applied (by
    /// its standby) while it was down.
    pub fn availability(&self) -> Vec<String> {
        self.outages
            .iter()
            .map(|(region, a)| {
                let percent = if a.events == 0 {
                    100.0
                } else {
                    100.0 * a.served as f64 / a.events as f64
                };
                format!(
                    "{region} down {} times ({} steps): {} of {} events for its residents applied during the outage ({percent:.1}%), the rest after it",
                    a.outages, a.steps_down, a.served, a.events
                )
            })
            .collect()
    }
}
