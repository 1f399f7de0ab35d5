//! The topology (`infra/topology.json`): regions, who lives where, and the routes derived
//! from it. Terraform reads the same file and derives the same rules, so routing on a laptop
//! and on AWS cannot differ.
//!
//! - `parse`: the file read and validated into a [`Topology`].
//! - `rules`: the four [`Function`]s and each region's EventBridge [`Rule`]s.

mod parse;
mod rules;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Deserialize;

use crate::contract::{ContractError, Participant, Region, Store, Text};

pub use rules::{Function, Rule, Target};

/// Why a topology was rejected.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a topology.
    #[error("topology is malformed")]
    Malformed(#[source] serde_json::Error),
    /// A name or text of the file breaks its contract rule.
    #[error("topology")]
    Contract(#[source] crate::contract::ContractError),
    /// The topology breaks one of its rules.
    #[error("topology: {0}")]
    Invalid(String),
}

/// A participant and the region it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resident {
    /// The participant.
    pub name: Participant,
    /// Its home region.
    pub home: Region,
}

/// A bot: a participant that answers every message with a fixed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    /// The bot's name.
    pub name: Participant,
    /// Its home region.
    pub home: Region,
    /// What it answers to every message.
    pub answer: Text,
}

/// A store and its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSite {
    /// The store.
    pub name: Store,
    /// Its home region.
    pub home: Region,
}

/// Queue settings shared by both engines and Terraform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// The functions' timeout.
    pub function_timeout_seconds: u32,
    /// How long a received message stays invisible.
    pub visibility_timeout_seconds: u32,
    /// Receives after which a message goes to the DLQ.
    pub max_receive_count: u32,
    /// Largest batch given to a function.
    pub batch_size: u32,
}

/// The validated topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The regions, in file order.
    pub regions: Vec<Region>,
    /// The (human) participants.
    pub participants: Vec<Resident>,
    /// The bots.
    pub bots: Vec<Bot>,
    /// The stores.
    pub stores: Vec<StoreSite>,
    /// Queue settings.
    pub queues: QueueSettings,
    /// The regions evacuated ([`Topology::evacuated`]): not in the file, an operator's choice.
    pub evacuated: Vec<Region>,
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The topology this crate ships with (`infra/topology.json`).
    pub fn builtin() -> Self {
        Self::parse(include_str!("../../infra/topology.json"))
            .expect("the shipped topology is valid")
    }

    /// The home region of a participant or bot.
    pub fn home_of(&self, who: &Participant) -> Option<&Region> {
        self.participants
            .iter()
            .find(|p| &p.name == who)
            .map(|p| &p.home)
            .or_else(|| self.bot(who).map(|b| &b.home))
    }

    /// The home region of participant or bot `who`, given in `field`: an unknown name is an
    /// error naming the field.
    pub fn home(&self, field: &str, who: &Participant) -> Result<&Region, ContractError> {
        self.home_of(who)
            .ok_or_else(|| unknown_participant(field, who))
    }

    /// The home region of `who`, given in `field`, who must be a participant, not a bot.
    pub fn participant_home(
        &self,
        field: &str,
        who: &Participant,
    ) -> Result<&Region, ContractError> {
        self.participants
            .iter()
            .find(|p| &p.name == who)
            .map(|p| &p.home)
            .ok_or_else(|| unknown_participant(field, who))
    }

    /// The bot of that name, if it is one.
    pub fn bot(&self, who: &Participant) -> Option<&Bot> {
        self.bots.iter().find(|b| &b.name == who)
    }

    /// The home region of a store.
    pub fn store_home(&self, store: &Store) -> Option<&Region> {
        self.stores
            .iter()
            .find(|s| &s.name == store)
            .map(|s| &s.home)
    }

    /// The region that stands by for `region`: the next one in file order (the last region's
    /// is the first). When `region` is evacuated its residents' events go there as well.
    pub fn standby(&self, region: &Region) -> &Region {
        let at = self.regions.iter().position(|r| r == region).unwrap_or(0);
        &self.regions[(at + 1) % self.regions.len()]
    }

    /// Whether a function running in `here` applies events for whoever is homed in `home`: its
    /// own residents, and those of the region it stands by for (when that one is evacuated,
    /// or when its queue is drained here after the evacuation ended).
    pub fn serves(&self, here: &Region, home: &Region) -> bool {
        here == home || self.standby(home) == here
    }

    /// This topology with `region` evacuated: the events of everyone homed there (participants,
    /// bots, stores) are routed to its standby as well as to it. Nothing is taken away, so no
    /// event ever falls between two rules while the rules change, and an event applied in both
    /// regions is applied once (every effect is keyed by its event id). Terraform's `evacuated`
    /// variable derives the same rules (`infra/main.tf`).
    pub fn evacuated(&self, region: &Region) -> Topology {
        let mut moved = self.clone();
        if !moved.evacuated.contains(region) {
            moved.evacuated.push(region.clone());
        }
        moved
    }

    /// Whether events for someone homed in `home` are routed to `region`: their home's, or,
    /// while their home is evacuated, its standby's.
    pub fn routes_to(&self, home: &Region, region: &Region) -> bool {
        home == region || (self.evacuated.contains(home) && self.standby(home) == region)
    }

    /// Whether the region is one of the topology's.
    pub fn has_region(&self, region: &Region) -> bool {
        self.regions.contains(region)
    }
}

/// `who`, given in `field`, is no participant or bot of the topology.
fn unknown_participant(field: &str, who: &Participant) -> ContractError {
    ContractError::Unknown {
        field: field.to_owned(),
        what: "participant",
        name: who.to_string(),
    }
}
