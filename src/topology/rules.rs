//! The four functions and the EventBridge rules each region's bus gets, derived from the
//! topology exactly as `infra/` derives them.

use serde_json::{json, Value};

use super::Topology;
use crate::contract::{Kind, Region};

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
    /// Records stock adds in the ledger.
    StockAdd,
    /// Answers questions about the stock.
    StockStatus,
}

/// A function is written as its short name (`chat-send`), in JSON as on a terminal.
impl serde::Serialize for Function {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
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

    /// How a rule reaches the function: through its SQS queue (the functions that write
    /// from a batch), or directly.
    pub fn target(self) -> Target {
        match self {
            Function::ChatSend | Function::StockAdd => Target::Queue(self),
            Function::MoebiReply | Function::StockStatus => Target::Function(self),
        }
    }

    /// The name of the SQS queue in front of the function (and, suffixed `-dlq`, of its DLQ).
    pub fn queue_name(self) -> String {
        format!("moebi-{}", self.name())
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
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
    /// The rules of `region`'s bus, derived exactly as `infra/` derives them: for each kind, a
    /// rule to this region's handler for names homed here (or, while their home is evacuated,
    /// standing by for it), and one to each other region's bus for names homed there (or
    /// whose home it stands by for, or who are its residents). A rule whose name list would be
    /// empty is left out.
    pub fn rules(&self, region: &Region) -> Vec<Rule> {
        let chat = Route::new(Kind::ChatSend, "to");
        let add = Route::new(Kind::StockAdd, "store");
        let status = Route::new(Kind::StockStatus, "asker");
        let mut rules = vec![
            chat.rule(
                "chat-send".into(),
                self.humans(region, region),
                Target::Queue(Function::ChatSend),
            ),
            chat.rule(
                "moebi-reply".into(),
                self.bots(region, region),
                Target::Function(Function::MoebiReply),
            ),
        ];
        rules.extend(self.forwards(region, &chat, "chat-to", |r| self.chatters(region, r)));
        rules.push(add.rule(
            "stock-add".into(),
            self.stores(region, region),
            Target::Queue(Function::StockAdd),
        ));
        rules.extend(self.forwards(region, &add, "stock-add-to", |r| self.stores(region, r)));
        rules.push(status.rule(
            "stock-status".into(),
            self.humans(region, region),
            Target::Function(Function::StockStatus),
        ));
        rules.extend(self.forwards(region, &status, "stock-status-to", |r| {
            self.humans(region, r)
        }));
        rules.into_iter().flatten().collect()
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

    /// One rule per other region, named `<prefix>-<region>`, sending that region's bus the
    /// events for the names `homed_in` it.
    fn forwards(
        &self,
        region: &Region,
        route: &Route,
        prefix: &str,
        homed_in: impl Fn(&Region) -> Vec<String>,
    ) -> Vec<Option<Rule>> {
        self.regions
            .iter()
            .filter(|r| *r != region)
            .map(|r| route.rule(format!("{prefix}-{r}"), homed_in(r), Target::Bus(r.clone())))
            .collect()
    }

    /// Of `sites` (name, home), the names whose events a rule of `from` sends to `to`, sorted:
    /// those routed to `to` ([`Topology::routes_to`]); but a region never forwards its own
    /// residents' events (it applies them), so an evacuated region and its standby never send
    /// each other the same event back and forth.
    fn names<'a>(
        &self,
        sites: impl Iterator<Item = (String, &'a Region)>,
        from: &Region,
        to: &Region,
    ) -> Vec<String> {
        let routed =
            sites.filter(|(_, home)| self.routes_to(home, to) && (from == to || *home != from));
        sorted(routed.map(|(name, _)| name))
    }

    /// The (human) participants whose events a rule of `from` sends to `to`.
    fn humans(&self, from: &Region, to: &Region) -> Vec<String> {
        let sites = self
            .participants
            .iter()
            .map(|p| (p.name.to_string(), &p.home));
        self.names(sites, from, to)
    }

    /// The bots whose events a rule of `from` sends to `to`.
    fn bots(&self, from: &Region, to: &Region) -> Vec<String> {
        let sites = self.bots.iter().map(|b| (b.name.to_string(), &b.home));
        self.names(sites, from, to)
    }

    /// Everyone with an inbox whose chats a rule of `from` sends to `to`, humans and bots.
    fn chatters(&self, from: &Region, to: &Region) -> Vec<String> {
        sorted(self.humans(from, to).into_iter().chain(self.bots(from, to)))
    }

    /// The stores whose adds a rule of `from` sends to `to`.
    fn stores(&self, from: &Region, to: &Region) -> Vec<String> {
        let sites = self.stores.iter().map(|s| (s.name.to_string(), &s.home));
        self.names(sites, from, to)
    }
}

/// What one kind's rules match on: its `detail-type` and the `detail` field naming where the
/// event goes (`to`, `store`, `asker`).
struct Route {
    kind: Kind,
    field: &'static str,
}

impl Route {
    fn new(kind: Kind, field: &'static str) -> Self {
        Self { kind, field }
    }

    /// The rule sending events whose field is one of `names` to `target`; none when `names`
    /// is empty, as EventBridge takes no empty list.
    fn rule(&self, name: String, names: Vec<String>, target: Target) -> Option<Rule> {
        (!names.is_empty()).then(|| Rule {
            name,
            pattern: json!({
                "source": [crate::contract::SOURCE],
                "detail-type": [self.kind.detail_type()],
                "detail": { self.field: names },
            }),
            target,
        })
    }
}

fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = names.collect();
    v.sort();
    v
}
