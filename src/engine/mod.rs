//! The engines: what runs the handlers. `local` (the default) on one machine, `aws` on AWS or
//! an emulator of it. The CLI and the tests drive either through [`Engine`].
//!
//! What both engines share is written once here: the event source mapping ([`pump`]) over a
//! small [`queue::Queue`] port, and replication as global tables do it ([`replicator`]). The
//! DynamoDB store they both run is [`crate::store`]. `local` and `aws` hold only what differs:
//! the bus, the queues, and how the resources come to exist.

pub mod pump;
pub mod queue;
pub mod replicator;
pub mod trace;

#[cfg(feature = "local")]
pub mod local;

#[cfg(feature = "aws")]
pub mod aws;

pub use pump::settings;
pub use trace::{Mark, Stats, Step, Trace, TraceStep};

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::contract::{ContractError, Event, Participant, Region};
use crate::invoke::{Payload, Response};
use crate::ports::{Cause, InboxEntry, PortError, Ports};
use crate::topology::{Function, Target, Topology, TopologyError};
use pump::Mapping;
use queue::Queue;

/// Why an engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's own state (its directory, its queues' database, its embedded servers) failed.
    #[error("state: {what}")]
    State {
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A queue failed.
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    /// Configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The input is invalid.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A port (the store, the bus) failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The event was handled and failed until it was set aside as a dead letter.
    #[error(
        "event {id} failed in {queue} ({region}) and was set aside as a dead letter: {reason}"
    )]
    DeadLetter {
        /// The event.
        id: crate::contract::EventId,
        /// The queue it failed in.
        queue: String,
        /// Its region.
        region: Region,
        /// Why it last failed.
        reason: String,
    },
    /// Messages stayed in the queues longer than a run waits.
    #[error("{what}: {messages} message(s) still queued after {} s", waited.as_secs())]
    Undrained {
        /// What was waiting.
        what: &'static str,
        /// How many were left.
        messages: u64,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// `moebi setup` met a resource it must not change, or an answer it cannot use.
    #[error("setup: {operation}: {why}")]
    Setup {
        /// The step.
        operation: String,
        /// What is in the way.
        why: String,
    },
    /// The engine's journal holds a step, region or function this engine never writes: it is
    /// not this engine's.
    #[error("cannot read the journal: it holds an unknown {what} {value:?}")]
    Unjournaled {
        /// `step`, `region` or `function`.
        what: &'static str,
        /// What it holds.
        value: String,
    },
    /// A question to the stock was handled, but no answer reached the asker's inbox.
    #[error("asking the stock as {asker}: no answer to stock question {id} reached the inbox (see `moebi dlq`)")]
    Unanswered {
        /// Who asked.
        asker: Participant,
        /// The question.
        id: crate::contract::EventId,
    },
    /// Events keep coming: the run does not settle.
    #[error("the run does not settle: {0}")]
    Runaway(String),
}

impl From<crate::resources::BadName> for EngineError {
    fn from(e: crate::resources::BadName) -> Self {
        EngineError::Config(e.to_string())
    }
}

impl EngineError {
    /// A failure of the engine's own state.
    pub fn state(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        EngineError::State {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// A message that failed too often and was set aside, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The region whose queue held it.
    pub region: Region,
    /// The queue it failed in.
    pub queue: String,
    /// Its message id.
    pub message_id: String,
    /// How often it was received.
    pub receive_count: u32,
    /// The last failure.
    pub reason: String,
    /// The message (an EventBridge event).
    pub body: String,
}

/// What a run until idle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Records handled successfully.
    pub handled: u64,
    /// Record failures (each retry counts).
    pub failed: u64,
    /// Of the failures, those the infrastructure caused (retrying may help).
    pub retryable: u64,
    /// Messages moved to a dead-letter queue.
    pub dead: u64,
    /// Stream records replication applied to another region.
    pub replicated: u64,
    /// Calls to a queue or a stream that failed for a while (a dropped connection, a
    /// throttled or failed request, after the SDK's own retries): tried again on the next pass.
    pub interrupted: u64,
}

impl std::ops::AddAssign for RunReport {
    fn add_assign(&mut self, other: Self) {
        self.handled += other.handled;
        self.failed += other.failed;
        self.retryable += other.retryable;
        self.dead += other.dead;
        self.replicated += other.replicated;
        self.interrupted += other.interrupted;
    }
}

impl RunReport {
    /// Whether the run did anything at all.
    pub fn progressed(&self) -> bool {
        self.handled + self.failed + self.dead + self.replicated + self.interrupted > 0
    }
}

/// One way of running moebi.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Who lives where.
    fn topology(&self) -> &Topology;

    /// Publishes events on `region`'s bus, as a client homed there does.
    async fn publish(&self, region: &Region, events: &[Event]) -> Result<(), EngineError> {
        Ok(self.ports(region)?.bus.publish(events).await?)
    }

    /// Delivers and handles events until every queue is empty.
    async fn run_until_idle(&self) -> Result<RunReport, EngineError>;

    /// `owner`'s inbox (read in their home region), oldest first.
    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, EngineError> {
        let home = self.topology().home("participant", owner)?;
        Ok(self.ports(home)?.inboxes.inbox(owner).await?)
    }

    /// The queues of one region that the engine feeds to functions, with how it feeds each.
    async fn queues(&self, region: &Region) -> Result<Vec<(Mapping, Arc<dyn Queue>)>, EngineError>;

    /// The ports of one region, as a function running there sees them (its table holds the
    /// other regions' replicas too).
    fn ports(&self, region: &Region) -> Result<Ports<'_>, EngineError>;

    /// What the front door runs against in `region`: the region's bus, its replica of the
    /// inboxes and its request records (`moebi replay` of an HTTP API payload).
    fn front_ports(&self, region: &Region) -> Result<crate::front::FrontPorts<'_>, EngineError> {
        let _ = region;
        Err(EngineError::Config("this engine runs no front door".into()))
    }

    /// The dead letters of one region, or of all.
    async fn dead_letters(&self, region: Option<&Region>) -> Result<Vec<DeadLetter>, EngineError> {
        let regions: Vec<Region> = match region {
            Some(r) => {
                self.ports(r)?;
                vec![r.clone()]
            }
            None => self.topology().regions.clone(),
        };
        let mut letters = Vec::new();
        for r in &regions {
            for (_, queue) in self.queues(r).await? {
                letters.extend(queue.dead_letters().await?);
            }
        }
        Ok(letters)
    }

    /// The path event `id` took, and the paths of the events it caused; `None` when the engine
    /// never saw it. Only the embedded engine keeps a journal: on AWS, the functions' logs do.
    async fn trace(&self, id: &str) -> Result<Option<Trace>, EngineError> {
        let _ = id;
        Err(EngineError::Config(
            "this engine keeps no journal: follow the event id in the functions' logs (docs/cli.md: one event across regions)".into(),
        ))
    }

    /// What each function did in each region. Only the embedded engine counts it: on AWS the
    /// functions' metrics do (namespace `moebi`).
    async fn stats(&self) -> Result<Vec<Stats>, EngineError> {
        Err(EngineError::Config(
            "this engine keeps no counts: the functions' metrics are in CloudWatch (namespace moebi)".into(),
        ))
    }

    /// Invokes `function` in `region` with a payload, as Lambda would, and answers its response.
    async fn invoke(
        &self,
        region: &Region,
        function: Function,
        payload: &Payload,
    ) -> Result<Response, EngineError> {
        Ok(crate::invoke::invoke(function, &self.ports(region)?, payload).await)
    }
}

/// The error for a region the topology does not have, listing those it has.
pub(crate) fn unknown_region(topology: &Topology, region: &Region) -> EngineError {
    let known: Vec<&str> = topology.regions.iter().map(Region::as_str).collect();
    EngineError::Config(format!(
        "unknown region {region} (regions: {})",
        known.join(", ")
    ))
}

/// Which function a payload goes to when the caller does not say: the queue an SQS batch
/// names, else the rule of the region that matches the event, else the function of its kind.
pub fn function_for(topology: &Topology, region: &Region, payload: &Payload) -> Option<Function> {
    if let Some(f) = payload.function() {
        return Some(f);
    }
    let envelope: serde_json::Value = match payload {
        Payload::Event(e) => e.clone(),
        Payload::Batch(b) => b
            .records
            .iter()
            .find_map(|r| serde_json::from_str(r.body.as_deref()?).ok())?,
    };
    let routed = topology.rules(region).into_iter().find_map(|rule| {
        let hit = crate::pattern::Pattern::parse(&rule.pattern)
            .ok()?
            .matches(&envelope);
        match rule.target {
            Target::Queue(f) | Target::Function(f) if hit => Some(f),
            _ => None,
        }
    });
    routed.or_else(|| {
        let kind = Event::from_envelope(&envelope).ok()?.kind();
        Function::ALL.into_iter().find(|f| f.kind() == kind)
    })
}
