//! Reading `infra/topology.json`: every name valid and used once, every home a listed region,
//! queue settings Lambda and SQS accept.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Bot, QueueSettings, Resident, StoreSite, Topology, TopologyError};
use crate::contract::{ContractError, Participant, Region, Store, Text};

/// The file as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    regions: Vec<String>,
    participants: Vec<RawSite>,
    #[serde(default)]
    bots: Vec<RawBot>,
    stores: Vec<RawSite>,
    queues: QueueSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
    home: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBot {
    name: String,
    home: String,
    answer: String,
}

impl Topology {
    /// Parses and validates a topology.
    pub fn parse(text: &str) -> Result<Self, TopologyError> {
        let raw: RawTopology = serde_json::from_str(text).map_err(TopologyError::Malformed)?;
        let regions = parse_regions(&raw.regions)?;
        let mut census = Census {
            regions: &regions,
            listed: &raw.regions,
            names: BTreeSet::new(),
        };
        let participants = raw
            .participants
            .iter()
            .map(|p| census.resident(p))
            .collect::<Result<_, _>>()?;
        let bots = raw
            .bots
            .iter()
            .map(|b| census.bot(b))
            .collect::<Result<_, _>>()?;
        let stores = raw
            .stores
            .iter()
            .map(|s| census.store(s))
            .collect::<Result<_, _>>()?;
        check_queues(&raw.queues)?;
        Ok(Self {
            regions,
            participants,
            bots,
            stores,
            queues: raw.queues,
            evacuated: Vec::new(),
        })
    }
}

/// A name or text of the file breaks its contract rule.
fn invalid(e: ContractError) -> TopologyError {
    TopologyError::Contract(e)
}

/// The regions, each valid and listed once; at least one.
fn parse_regions(listed: &[String]) -> Result<Vec<Region>, TopologyError> {
    let mut regions = Vec::new();
    for r in listed {
        let region = Region::parse(r).map_err(invalid)?;
        if regions.contains(&region) {
            return Err(TopologyError::Invalid(format!(
                "region {r} is listed twice"
            )));
        }
        regions.push(region);
    }
    if regions.is_empty() {
        return Err(TopologyError::Invalid(
            "at least one region is required".into(),
        ));
    }
    Ok(regions)
}

/// Counts participants, bots and stores as they are read: each name once, each home a region
/// of the topology.
struct Census<'a> {
    regions: &'a [Region],
    listed: &'a [String],
    names: BTreeSet<String>,
}

impl Census<'_> {
    fn resident(&mut self, raw: &RawSite) -> Result<Resident, TopologyError> {
        self.count(&raw.name)?;
        Ok(Resident {
            name: Participant::parse(&raw.name).map_err(invalid)?,
            home: self.home(&raw.name, &raw.home)?,
        })
    }

    fn bot(&mut self, raw: &RawBot) -> Result<Bot, TopologyError> {
        self.count(&raw.name)?;
        Ok(Bot {
            name: Participant::parse(&raw.name).map_err(invalid)?,
            home: self.home(&raw.name, &raw.home)?,
            answer: Text::parse(&raw.answer)
                .map_err(|e| invalid(e.within(&format!("bot {}", raw.name))))?,
        })
    }

    fn store(&mut self, raw: &RawSite) -> Result<StoreSite, TopologyError> {
        self.count(&raw.name)?;
        Ok(StoreSite {
            name: Store::parse(&raw.name).map_err(invalid)?,
            home: self.home(&raw.name, &raw.home)?,
        })
    }

    /// Participants, bots and stores share one namespace: a name may appear once.
    fn count(&mut self, name: &str) -> Result<(), TopologyError> {
        if self.names.insert(name.to_owned()) {
            Ok(())
        } else {
            Err(TopologyError::Invalid(format!("name {name} is used twice")))
        }
    }

    /// The region `owner` lives in, which must be one of the topology's.
    fn home(&self, owner: &str, region: &str) -> Result<Region, TopologyError> {
        let home = Region::parse(region).map_err(invalid)?;
        if self.regions.contains(&home) {
            Ok(home)
        } else {
            Err(TopologyError::Invalid(format!(
                "{owner} lives in unknown region {region} (regions: {})",
                self.listed.join(", ")
            )))
        }
    }
}

/// Settings SQS would reject, or that would let a message be received again while a function
/// still works on it.
fn check_queues(q: &QueueSettings) -> Result<(), TopologyError> {
    if q.batch_size == 0 || q.batch_size > 10 {
        return Err(TopologyError::Invalid(
            "queues.batch_size must be 1 to 10".into(),
        ));
    }
    if q.max_receive_count == 0 {
        return Err(TopologyError::Invalid(
            "queues.max_receive_count must be at least 1".into(),
        ));
    }
    if q.visibility_timeout_seconds < 6 * q.function_timeout_seconds {
        return Err(TopologyError::Invalid(
            "queues.visibility_timeout_seconds must be at least 6 times function_timeout_seconds"
                .into(),
        ));
    }
    Ok(())
}
