//! The embedded engine's buses: one per region, evaluating the topology's event patterns (the
//! ones Terraform writes) and delivering to a region's queue, or forwarding to another
//! region's bus, as EventBridge rules do.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Utc;
use serde_json::Value;

use super::journal::{self, Step};
use super::queues::QueueDb;
use crate::contract::{Event, Region};
use crate::engine::pump::ACCOUNT;
use crate::engine::{EngineError, Names};
use crate::pattern::Pattern;
use crate::ports::{Bus, PortError, Reason};
use crate::topology::{Target, Topology};

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
    names: Names,
    queues: Arc<QueueDb>,
}

impl Buses {
    /// The buses of every region of `topology`, delivering into `queues`.
    pub fn new(topology: &Topology, queues: Arc<QueueDb>) -> Result<Self, EngineError> {
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
            names: Names::default(),
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
        let fail = |what: String| PortError::Bus {
            operation: format!("PutEvents on {region}"),
            retryable: false,
            source: Box::new(Reason(what)),
        };
        if hops > MAX_HOPS {
            return Err(fail(format!(
                "event forwarded more than {MAX_HOPS} times: the routes loop"
            )));
        }
        let rules = self
            .rules
            .get(region)
            .ok_or_else(|| fail(format!("no bus in region {region}")))?;
        let (event_id, cause, summary) = journal::about(envelope);
        let step = |step, detail| Step {
            region: region.as_str(),
            step,
            detail,
            event_id,
            cause,
            ..Step::default()
        };
        let on = if hops == 0 { "published" } else { "arrived" };
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
                .journal(&step("unmatched", "no rule matched: dropped".into()));
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
                self.queues.journal(&Step {
                    region: region.as_str(),
                    step: "forwarded",
                    detail: format!("rule {} → {other}'s bus", rule.name),
                    event_id,
                    cause,
                    ..Step::default()
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
