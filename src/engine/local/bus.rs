//! The embedded engine's buses: one per region, evaluating the topology's event patterns (the
//! ones Terraform writes) and delivering to a region's queue, or forwarding to another
//! region's bus, as EventBridge rules do.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Utc;
use serde_json::Value;

use super::journal::{self, Entry};
use super::state::StateDb;
use crate::contract::{Event, Region};
use crate::engine::pump::ACCOUNT;
use crate::engine::{EngineError, Step};
use crate::pattern::Pattern;
use crate::ports::{Bus, PortError};
use crate::resources::ResourceNames;
use crate::topology::{Target, Topology};

/// Why the bus refused an event.
#[derive(Debug, thiserror::Error)]
enum Undeliverable {
    /// The event went round more than [`MAX_HOPS`] buses.
    #[error("event forwarded more than {MAX_HOPS} times: the routes loop")]
    Loop,
    /// The topology has no such region.
    #[error("no bus in region {0}")]
    NoBus(Region),
}

/// Most forwarding hops an event may take; more means the routes loop.
const MAX_HOPS: usize = 4;

struct CompiledRule {
    name: String,
    pattern: Pattern,
    target: Target,
}

/// Every region's bus.
pub struct Buses {
    rules: BTreeMap<Region, Vec<CompiledRule>>,
    names: ResourceNames,
    queues: Arc<StateDb>,
}

impl Buses {
    /// The buses of every region of `topology`, delivering into `queues`.
    pub fn new(topology: &Topology, queues: Arc<StateDb>) -> Result<Self, EngineError> {
        let mut rules = BTreeMap::new();
        for region in &topology.regions {
            let compiled = topology
                .rules(region)
                .into_iter()
                .map(|rule| {
                    Ok(CompiledRule {
                        name: format!("moebi-{}", rule.name),
                        pattern: Pattern::parse(&rule.pattern)?,
                        target: rule.target,
                    })
                })
                .collect::<Result<Vec<_>, crate::pattern::PatternError>>()
                .map_err(|e| {
                    EngineError::state(format!("a rule of {region} does not compile"), e)
                })?;
            rules.insert(region.clone(), compiled);
        }
        Ok(Self {
            rules,
            names: ResourceNames::default(),
            queues,
        })
    }

    /// Puts one event on `region`'s bus: every matching rule delivers it to its target.
    pub(super) fn put_event(
        &self,
        region: &Region,
        envelope: &Value,
        hops: usize,
    ) -> Result<(), PortError> {
        let fail = |why: Undeliverable| PortError::Bus {
            operation: format!("PutEvents on {region}"),
            retryable: false,
            source: Box::new(why),
        };
        if hops > MAX_HOPS {
            return Err(fail(Undeliverable::Loop));
        }
        let rules = self
            .rules
            .get(region)
            .ok_or_else(|| fail(Undeliverable::NoBus(region.clone())))?;
        let (event_id, cause, summary) = journal::about(envelope);
        let step = |step, detail| Entry {
            event_id,
            cause,
            ..Entry::new(region.as_str(), step, detail)
        };
        let on = if hops == 0 {
            Step::Published
        } else {
            Step::Arrived
        };
        self.queues
            .journal(&step(on, format!("on {region}'s bus: {summary}")));
        let mut matched = false;
        for rule in rules.iter().filter(|r| r.pattern.matches(envelope)) {
            matched = true;
            self.deliver(region, rule, envelope, hops, (event_id, cause))?;
        }
        if !matched {
            // EventBridge drops an event no rule matches; so does this bus, but says so.
            tracing::warn!(%region, event = %envelope, "no rule matched the event");
            self.queues
                .journal(&step(Step::Unmatched, "no rule matched: dropped".into()));
        }
        Ok(())
    }

    /// Delivers an event a rule matched to the rule's target: a queue, or another region's bus.
    fn deliver(
        &self,
        region: &Region,
        rule: &CompiledRule,
        envelope: &Value,
        hops: usize,
        (event_id, cause): (Option<&str>, Option<&str>),
    ) -> Result<(), PortError> {
        match &rule.target {
            Target::Queue(f) | Target::Function(f) => {
                let queue = self.names.queue(*f);
                self.queues
                    .send(region, &queue, &envelope.to_string(), event_id, &rule.name)
                    .map_err(|e| PortError::Bus {
                        operation: format!("PutEvents on {region}"),
                        retryable: e.retryable,
                        source: Box::new(e),
                    })?;
                Ok(())
            }
            Target::Bus(other) => {
                let detail = format!("rule {} → {other}'s bus", rule.name);
                self.queues.journal(&Entry {
                    event_id,
                    cause,
                    ..Entry::new(region.as_str(), Step::Forwarded, detail)
                });
                self.put_event(other, envelope, hops + 1)
            }
        }
    }
}

/// One region's bus, as a handler or client there publishes to it.
pub struct RegionBus {
    buses: Arc<Buses>,
    region: Region,
}

impl RegionBus {
    /// `region`'s bus.
    pub fn new(buses: Arc<Buses>, region: Region) -> Self {
        Self { buses, region }
    }

    /// Puts an envelope on the bus as it is, valid or not, as any producer may.
    pub fn put_envelope(&self, envelope: &Value) -> Result<(), PortError> {
        self.buses.put_event(&self.region, envelope, 0)
    }
}

#[async_trait]
impl Bus for RegionBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        self.buses.queues.atomically(|| {
            for event in events {
                self.buses
                    .put_event(&self.region, &envelope(&self.region, event), 0)?;
            }
            Ok(())
        })
    }
}

/// The envelope EventBridge wraps a published event in.
pub fn envelope(region: &Region, event: &Event) -> Value {
    let mut e: EventBridgeEvent<Value> = EventBridgeEvent::default();
    e.version = Some("0".into());
    e.id = Some(uuid::Uuid::new_v4().to_string());
    e.detail_type = event.kind().detail_type().into();
    e.source = crate::contract::SOURCE.into();
    e.account = Some(ACCOUNT.into());
    e.time = Some(Utc::now());
    e.region = Some(region.to_string());
    e.resources = Some(Vec::new());
    e.detail = event.detail();
    serde_json::to_value(e).expect("an EventBridge event serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Buses over regions `r0`…`r<n>` where each `r<i>` forwards every moebi event to
    /// `r<i+1>`, and the last one delivers it to its stock-add queue.
    fn chain(n: usize, queues: &Arc<StateDb>) -> Buses {
        let region = |i: usize| Region::parse(&format!("r{i}")).unwrap();
        let pattern = || Pattern::parse(&json!({ "source": [crate::contract::SOURCE] })).unwrap();
        let rules = (0..=n)
            .map(|i| {
                let target = if i == n {
                    Target::Queue(crate::topology::Function::StockAdd)
                } else {
                    Target::Bus(region(i + 1))
                };
                let name = format!("rule-{i}");
                (
                    region(i),
                    vec![CompiledRule {
                        name,
                        pattern: pattern(),
                        target,
                    }],
                )
            })
            .collect();
        Buses {
            rules,
            names: ResourceNames::default(),
            queues: Arc::clone(queues),
        }
    }

    fn queued(queues: &StateDb) -> i64 {
        let conn = queues.conn();
        conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap()
    }

    fn put(buses: &Buses) -> Result<(), PortError> {
        let event = json!({ "source": "moebi", "detail-type": "x", "detail": { "id": "e-1" } });
        buses.put_event(&Region::parse("r0").unwrap(), &event, 0)
    }

    #[test]
    fn an_event_crosses_as_many_buses_as_the_hop_limit_allows() {
        let queues = StateDb::memory().unwrap();
        put(&chain(MAX_HOPS, &queues)).unwrap();
        assert_eq!(queued(&queues), 1);
        let trace = queues.trace("e-1").unwrap().unwrap();
        let forwarded = trace.steps.iter().filter(|s| s.step == Step::Forwarded);
        assert_eq!(forwarded.count(), MAX_HOPS);
    }

    #[test]
    fn an_event_forwarded_past_the_hop_limit_is_refused_and_queued_nowhere() {
        let queues = StateDb::memory().unwrap();
        let err = put(&chain(MAX_HOPS + 1, &queues)).unwrap_err();
        assert_eq!(
            crate::report(&err),
            "publishing: PutEvents on r5 failed: event forwarded more than 4 times: the routes loop"
        );
        assert_eq!(queued(&queues), 0);
    }
}
