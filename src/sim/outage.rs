//! A region goes down and comes back: its bus takes no client, its functions and replication
//! stop; its clients fail over to the next region; after a while it is evacuated (its
//! residents' events go to its standby as well, [`Topology::evacuated`]), and when it is back
//! the evacuation ends and what its queues held is drained there.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::run::Sim;
use super::workload::Planned;
use crate::contract::{Event, Region};
use crate::engine::EngineError;
use crate::pattern::Pattern;
use crate::topology::{Function, Target, Topology};

/// Most buses an event crosses (the embedded bus's limit).
const MAX_HOPS: usize = 4;
/// In a step with every region up, the chance (in %) that one goes down.
const DOWN_PERCENT: u32 = 3;
/// In a step of an outage not yet evacuated, the chance (in %) it is evacuated now.
const EVACUATE_PERCENT: u32 = 25;
/// In a step of an evacuated outage, the chance (in %) the region comes back.
const BACK_PERCENT: u32 = 10;

/// The region that is down.
pub(super) struct Outage {
    /// Which.
    pub region: Region,
    /// Whether it is evacuated: its residents' events go to its standby as well.
    pub evacuated: bool,
    /// The good events for its residents published while it was down (indexes of the plan).
    pub wanted: Vec<usize>,
}

/// What one region's residents got during its outages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    /// Outages.
    pub outages: u64,
    /// Steps the region was down.
    pub steps_down: u64,
    /// Good events for its residents (messages to them, their questions, their stores' adds)
    /// published while it was down.
    pub events: u64,
    /// Of those, the ones applied (in the standby) before the region came back.
    pub served: u64,
}

impl Availability {
    /// Adds another's counts.
    pub fn add(&mut self, other: &Availability) {
        self.outages += other.outages;
        self.steps_down += other.steps_down;
        self.events += other.events;
        self.served += other.served;
    }
}

/// What a front door would do to a retried message: stamp its `sent_at` anew (a millisecond on).
pub(super) fn restamp(envelope: &mut Value) {
    let detail = &mut envelope["detail"];
    let Some(at) = detail["sent_at"].as_str() else {
        return;
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(at) {
        let later = at.with_timezone(&Utc) + Duration::milliseconds(1);
        detail["sent_at"] = Value::String(crate::store::item::timestamp(&later));
    }
}

/// How many functions `envelope`, put on `region`'s bus, reaches through `topology`'s rules.
fn deliveries(topology: &Topology, region: &Region, envelope: &Value, hops: usize) -> u32 {
    if hops > MAX_HOPS {
        return 0;
    }
    let matching = topology
        .rules(region)
        .into_iter()
        .filter(|rule| Pattern::parse(&rule.pattern).is_ok_and(|p| p.matches(envelope)));
    matching
        .map(|rule| match &rule.target {
            Target::Bus(next) => deliveries(topology, next, envelope, hops + 1),
            _ => 1,
        })
        .sum()
}

/// Whose home an event goes to, and which function applies it there.
fn destination(topology: &Topology, event: &Event) -> Option<(Region, Function)> {
    match event {
        Event::ChatSend(c) if topology.bot(&c.to).is_some() => topology
            .home_of(&c.to)
            .map(|h| (h.clone(), Function::MoebiReply)),
        Event::ChatSend(c) => topology
            .home_of(&c.to)
            .map(|h| (h.clone(), Function::ChatSend)),
        Event::StockAdd(a) => topology
            .store_home(&a.store)
            .map(|h| (h.clone(), Function::StockAdd)),
        Event::StockStatus(s) => topology
            .home_of(&s.asker)
            .map(|h| (h.clone(), Function::StockStatus)),
    }
}

impl Sim {
    /// Whether `region` is down.
    pub(super) fn is_down(&self, region: &Region) -> bool {
        self.outage.as_ref().is_some_and(|o| &o.region == region)
    }

    /// The region a client meaning `region` reaches: it, or the next one if it is down.
    pub(super) fn reachable(&self, region: &Region) -> Region {
        if self.is_down(region) {
            self.topology.standby(region).clone()
        } else {
            region.clone()
        }
    }

    /// How many times an event published now on `region`'s bus reaches a function: once, or,
    /// while the home of whom it is for is evacuated, also at its standby (and at its home
    /// from each region that forwards it there). A bad event is set aside each time, so the
    /// checker expects that many dead letters of it.
    pub(super) fn copies(&self, region: &Region, envelope: &Value) -> u32 {
        deliveries(&self.routing(), region, envelope, 0)
    }

    /// The topology the buses route by: the shipped one, or the down region evacuated.
    pub(super) fn routing(&self) -> Topology {
        match &self.outage {
            Some(o) if o.evacuated => self.topology.evacuated(&o.region),
            _ => self.topology.clone(),
        }
    }

    /// Notes `plan[i]`, just published, if it is for a resident of the region that is down.
    pub(super) fn note_during_outage(&mut self, plan: &[Planned], i: usize) {
        let Some(event) = &plan[i].good else { return };
        let home = destination(&self.topology, event).map(|(h, _)| h);
        if let Some(o) = self.outage.as_mut() {
            if home.as_ref() == Some(&o.region) && !o.wanted.contains(&i) {
                o.wanted.push(i);
            }
        }
    }

    /// Maybe a region goes down, is evacuated, or comes back; true if so.
    pub(super) async fn outage_turn(&mut self, plan: &[Planned]) -> Result<bool, EngineError> {
        let roll = self.rng.u32(0..100);
        let (region, evacuated) = match &self.outage {
            None if roll < DOWN_PERCENT => {
                let region =
                    self.topology.regions[self.rng.usize(..self.topology.regions.len())].clone();
                self.outage = Some(Outage {
                    region: region.clone(),
                    evacuated: false,
                    wanted: Vec::new(),
                });
                self.run.outages.entry(region.clone()).or_default().outages += 1;
                self.set_links();
                // The clients that just published through it may have got no answer: they
                // will try again, through the next region.
                let recent: Vec<(usize, Region)> = self.recent.clone();
                for (i, through) in recent.into_iter().filter(|(_, r)| *r == region) {
                    if self.rng.bool() && !self.retries.iter().any(|(j, _)| *j == i) {
                        self.retries.push((i, through));
                    }
                }
                self.trace(format!(
                    "{region} down: its bus takes no client, its functions and replication stop"
                ));
                return Ok(true);
            }
            None => return Ok(false),
            Some(o) => (o.region.clone(), o.evacuated),
        };
        self.run
            .outages
            .entry(region.clone())
            .or_default()
            .steps_down += 1;
        if !evacuated && roll < EVACUATE_PERCENT {
            if let Some(o) = self.outage.as_mut() {
                o.evacuated = true;
            }
            self.reopen()?;
            let standby = self.topology.standby(&region).clone();
            self.trace(format!(
                "evacuate {region}: its residents' events go to {standby} as well"
            ));
            return Ok(true);
        }
        if evacuated && roll < BACK_PERCENT {
            self.recover(plan).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The region that is down, if one is, comes back: what its residents got meanwhile is
    /// counted, the evacuation ends, replication resumes.
    pub(super) async fn recover(&mut self, plan: &[Planned]) -> Result<(), EngineError> {
        let Some(outage) = self.outage.take() else {
            return Ok(());
        };
        let mut served = 0;
        for &i in &outage.wanted {
            let Some(event) = &plan[i].good else { continue };
            if self.applied_anywhere(event).await? {
                served += 1;
            }
        }
        let counts = self.run.outages.entry(outage.region.clone()).or_default();
        counts.events += outage.wanted.len() as u64;
        counts.served += served;
        self.reopen()?;
        self.trace(format!(
            "{} back: {served} of the {} events for its residents were applied meanwhile",
            outage.region,
            outage.wanted.len()
        ));
        Ok(())
    }

    /// Whether some region has applied `event` (holds its idempotency record).
    async fn applied_anywhere(&self, event: &Event) -> Result<bool, EngineError> {
        let Some((_, function)) = destination(&self.topology, event) else {
            return Ok(false);
        };
        let pk = format!("applied#{function}#{}", event.id());
        for region in &self.topology.regions {
            let store = self.engine.store(region)?;
            let out = store
                .client()
                .get_item()
                .table_name(store.table())
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S("applied".into()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| EngineError::state("reading an idempotency record", e))?;
            if out.item().is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
