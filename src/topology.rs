//! The topology (`infra/topology.json`): regions, who lives where, and the routes derived
//! from it. Terraform reads the same file and derives the same rules, so routing on a laptop
//! and on AWS cannot differ.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::contract::{ContractError, Kind, Participant, Region, Store, Text};

/// Why a topology was rejected.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a topology.
    #[error("topology is malformed: {0}")]
    Malformed(String),
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
}

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

/// Where a rule sends the events it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// The SQS queue in front of a function of this region.
    Queue(Function),
    /// A function of this region, invoked by EventBridge directly.
    Function(Function),
    /// The `moebi` bus of another region.
    Bus(Region),
}

/// The four functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// Delivers chat messages into inboxes.
    ChatSend,
    /// The bots' answers.
    MoebiReply,
    /// Grows this region's share of the stock.
    StockAdd,
    /// Answers questions about the stock.
    StockStatus,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 4] = [
        Function::ChatSend,
        Function::MoebiReply,
        Function::StockAdd,
        Function::StockStatus,
    ];

    /// The function's short name (`chat-send`), also its crate and queue suffix.
    pub fn name(self) -> &'static str {
        match self {
            Function::ChatSend => "chat-send",
            Function::MoebiReply => "moebi-reply",
            Function::StockAdd => "stock-add",
            Function::StockStatus => "stock-status",
        }
    }

    /// The function a short name names.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name
            .strip_prefix("moebi-")
            .filter(|n| Self::ALL.iter().any(|f| f.name() == *n))
            .unwrap_or(name);
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The kind of event the function handles.
    pub fn kind(self) -> Kind {
        match self {
            Function::ChatSend | Function::MoebiReply => Kind::ChatSend,
            Function::StockAdd => Kind::StockAdd,
            Function::StockStatus => Kind::StockStatus,
        }
    }

    /// The name of the SQS queue in front of the function (and, suffixed `-dlq`, of its DLQ).
    pub fn queue_name(self) -> String {
        format!("moebi-{}", self.name())
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One EventBridge rule of one region's bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's name within moebi (`chat-send`, `chat-to-us-east-1`…); AWS calls it `moebi-<name>`.
    pub name: String,
    /// The event pattern, as EventBridge takes it.
    pub pattern: Value,
    /// Where matched events go.
    pub target: Target,
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
        Self::parse(include_str!("../infra/topology.json")).expect("the shipped topology is valid")
    }

    /// Parses and validates a topology.
    pub fn parse(text: &str) -> Result<Self, TopologyError> {
        let raw: RawTopology =
            serde_json::from_str(text).map_err(|e| TopologyError::Malformed(e.to_string()))?;
        let invalid = |e: ContractError| TopologyError::Invalid(e.to_string());
        let mut regions = Vec::new();
        for r in &raw.regions {
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
        let home = |owner: &str, r: &str| -> Result<Region, TopologyError> {
            let region = Region::parse(r).map_err(invalid)?;
            if regions.contains(&region) {
                Ok(region)
            } else {
                Err(TopologyError::Invalid(format!(
                    "{owner} lives in unknown region {r} (regions: {})",
                    raw.regions.join(", ")
                )))
            }
        };
        let mut names = BTreeSet::new();
        let mut unique = |n: &str| -> Result<(), TopologyError> {
            if names.insert(n.to_owned()) {
                Ok(())
            } else {
                Err(TopologyError::Invalid(format!("name {n} is used twice")))
            }
        };
        let mut participants = Vec::new();
        for p in &raw.participants {
            unique(&p.name)?;
            participants.push(Resident {
                name: Participant::parse(&p.name).map_err(invalid)?,
                home: home(&p.name, &p.home)?,
            });
        }
        let mut bots = Vec::new();
        for b in &raw.bots {
            unique(&b.name)?;
            bots.push(Bot {
                name: Participant::parse(&b.name).map_err(invalid)?,
                home: home(&b.name, &b.home)?,
                answer: Text::parse(&b.answer)
                    .map_err(|e| invalid(e.within(&format!("bot {}", b.name))))?,
            });
        }
        let mut stores = Vec::new();
        for s in &raw.stores {
            unique(&s.name)?;
            stores.push(StoreSite {
                name: Store::parse(&s.name).map_err(invalid)?,
                home: home(&s.name, &s.home)?,
            });
        }
        let q = raw.queues;
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
                "queues.visibility_timeout_seconds must be at least 6 times function_timeout_seconds".into(),
            ));
        }
        Ok(Self {
            regions,
            participants,
            bots,
            stores,
            queues: q,
        })
    }

    /// The home region of a participant or bot.
    pub fn home_of(&self, who: &Participant) -> Option<&Region> {
        self.participants
            .iter()
            .find(|p| &p.name == who)
            .map(|p| &p.home)
            .or_else(|| self.bot(who).map(|b| &b.home))
    }

    /// The bot of that name, if it is one.
    pub fn bot(&self, who: &Participant) -> Option<&Bot> {
        self.bots.iter().find(|b| &b.name == who)
    }

    /// Whether `who` is a (human) participant.
    pub fn is_participant(&self, who: &Participant) -> bool {
        self.participants.iter().any(|p| &p.name == who)
    }

    /// The home region of a store.
    pub fn store_home(&self, store: &Store) -> Option<&Region> {
        self.stores
            .iter()
            .find(|s| &s.name == store)
            .map(|s| &s.home)
    }

    /// Whether the region is one of the topology's.
    pub fn has_region(&self, region: &Region) -> bool {
        self.regions.contains(region)
    }

    /// The rules of `region`'s bus, derived exactly as `infra/` derives them: for each kind, a
    /// rule to this region's handler for names homed here, and one to each other region's bus
    /// for names homed there. A rule whose name list would be empty is left out.
    pub fn rules(&self, region: &Region) -> Vec<Rule> {
        let chat_names = |r: &Region| -> Vec<String> {
            let mut v: Vec<String> = self
                .participants
                .iter()
                .filter(|p| &p.home == r)
                .map(|p| p.name.to_string())
                .chain(
                    self.bots
                        .iter()
                        .filter(|b| &b.home == r)
                        .map(|b| b.name.to_string()),
                )
                .collect();
            v.sort();
            v
        };
        let humans = |r: &Region| -> Vec<String> {
            let mut v: Vec<String> = self
                .participants
                .iter()
                .filter(|p| &p.home == r)
                .map(|p| p.name.to_string())
                .collect();
            v.sort();
            v
        };
        let bots = |r: &Region| -> Vec<String> {
            let mut v: Vec<String> = self
                .bots
                .iter()
                .filter(|b| &b.home == r)
                .map(|b| b.name.to_string())
                .collect();
            v.sort();
            v
        };
        let stores = |r: &Region| -> Vec<String> {
            let mut v: Vec<String> = self
                .stores
                .iter()
                .filter(|s| &s.home == r)
                .map(|s| s.name.to_string())
                .collect();
            v.sort();
            v
        };
        let others: Vec<&Region> = self.regions.iter().filter(|r| *r != region).collect();
        let mut rules = Vec::new();
        let mut push =
            |name: String, kind: Kind, field: &str, values: Vec<String>, target: Target| {
                if !values.is_empty() {
                    rules.push(Rule {
                        name,
                        pattern: json!({
                            "source": [crate::contract::SOURCE],
                            "detail-type": [kind.detail_type()],
                            "detail": { field: values },
                        }),
                        target,
                    });
                }
            };
        push(
            "chat-send".into(),
            Kind::ChatSend,
            "to",
            humans(region),
            Target::Queue(Function::ChatSend),
        );
        push(
            "moebi-reply".into(),
            Kind::ChatSend,
            "to",
            bots(region),
            Target::Function(Function::MoebiReply),
        );
        for r in &others {
            push(
                format!("chat-to-{r}"),
                Kind::ChatSend,
                "to",
                chat_names(r),
                Target::Bus((*r).clone()),
            );
        }
        push(
            "stock-add".into(),
            Kind::StockAdd,
            "store",
            stores(region),
            Target::Queue(Function::StockAdd),
        );
        for r in &others {
            push(
                format!("stock-add-to-{r}"),
                Kind::StockAdd,
                "store",
                stores(r),
                Target::Bus((*r).clone()),
            );
        }
        push(
            "stock-status".into(),
            Kind::StockStatus,
            "asker",
            humans(region),
            Target::Function(Function::StockStatus),
        );
        for r in &others {
            push(
                format!("stock-status-to-{r}"),
                Kind::StockStatus,
                "asker",
                humans(r),
                Target::Bus((*r).clone()),
            );
        }
        rules
    }

    /// Every region's rules as JSON, shaped like Terraform's `local.rules`
    /// (region → rule name → {pattern, target {kind, name}}), for comparing the two.
    pub fn rules_json(&self) -> Value {
        let mut regions = serde_json::Map::new();
        for region in &self.regions {
            let mut rules = serde_json::Map::new();
            for rule in self.rules(region) {
                let (kind, name) = match &rule.target {
                    Target::Queue(f) => ("queue", f.name().to_owned()),
                    Target::Function(f) => ("function", f.name().to_owned()),
                    Target::Bus(r) => ("bus", r.to_string()),
                };
                rules.insert(
                    rule.name,
                    json!({"pattern": rule.pattern, "target": {"kind": kind, "name": name}}),
                );
            }
            regions.insert(region.to_string(), Value::Object(rules));
        }
        Value::Object(regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_topology_is_the_seed() {
        let t = Topology::builtin();
        let names: Vec<_> = t.regions.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["us-west-2", "us-east-1", "eu-west-1"]);
        let moebi = Participant::parse("moebi").unwrap();
        assert_eq!(t.bot(&moebi).unwrap().answer.as_str(), "chicken?");
        assert_eq!(
            t.home_of(&Participant::parse("kate").unwrap())
                .unwrap()
                .as_str(),
            "us-east-1"
        );
    }

    #[test]
    fn bad_topologies_are_named() {
        let base = |regions: &str, people: &str| {
            format!(
                r#"{{"regions": {regions}, "participants": {people}, "stores": [],
                "queues": {{"function_timeout_seconds": 30, "visibility_timeout_seconds": 180,
                "max_receive_count": 5, "batch_size": 10}}}}"#
            )
        };
        let err = Topology::parse(&base(
            r#"["us-west-2"]"#,
            r#"[{"name": "alex", "home": "mars-1"}]"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("alex lives in unknown region mars-1"), "{err}");
        let err = Topology::parse(&base(
            r#"["us-west-2"]"#,
            r#"[{"name": "alex", "home": "us-west-2"}, {"name": "alex", "home": "us-west-2"}]"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("name alex is used twice"), "{err}");
        let err = Topology::parse(&base(r#"["us-west-2", "us-west-2"]"#, "[]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("region us-west-2 is listed twice"), "{err}");
        assert!(matches!(
            Topology::parse("{}"),
            Err(TopologyError::Malformed(_))
        ));
    }

    #[test]
    fn every_region_routes_chat_for_every_participant_exactly_once() {
        let t = Topology::builtin();
        let pattern = crate::pattern::Pattern::parse;
        for region in &t.regions {
            let rules = t.rules(region);
            for who in t
                .participants
                .iter()
                .map(|p| &p.name)
                .chain(t.bots.iter().map(|b| &b.name))
            {
                let event = json!({"source": "moebi", "detail-type": "chat.send", "detail": {"to": who.as_str()}});
                let hits: Vec<_> = rules
                    .iter()
                    .filter(|r| pattern(&r.pattern).unwrap().matches(&event))
                    .collect();
                assert_eq!(hits.len(), 1, "{who} from {region}: {hits:?}");
            }
        }
    }
}
