//! What the simulated clients do: chats between the participants and to the bot, stock adds by
//! every store, questions about the stock, and some bad events, each published from a random
//! region (its home or not: the buses forward it). Everything comes from the seed.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::contract::{
    ChatSend, Event, EventId, Participant, Product, Quantity, Region, StockAdd, StockStatus, Store,
    Text,
};
use crate::engine::local::envelope;
use crate::topology::Topology;

/// The products the stores deal in: few, so that adds to one product meet in every region.
const PRODUCTS: [&str; 3] = ["nike", "puma", "adidas"];

/// One event a client publishes.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The region whose bus it is published on.
    pub origin: Region,
    /// The EventBridge envelope.
    pub envelope: Value,
    /// The event, if it is valid; `None` for a bad event, which must end as a dead letter.
    pub good: Option<Event>,
    /// Why a bad event is bad (for the trace).
    pub flaw: &'static str,
}

impl Planned {
    /// A short description for the trace.
    pub fn describe(&self) -> String {
        let d = &self.envelope["detail"];
        let kind = self.envelope["detail-type"].as_str().unwrap_or("?");
        let who = match kind {
            "chat.send" => format!("{}->{}", d["from"], d["to"]),
            "stock.add" => format!("{} {} {}", d["store"], d["product"], d["qty"]),
            _ => format!("{} {}", d["asker"], d["product"]),
        };
        let flaw = if self.good.is_none() {
            format!(" BAD({})", self.flaw)
        } else {
            String::new()
        };
        format!(
            "{kind} {} {} from {}{flaw}",
            d["id"].as_str().unwrap_or("?"),
            who.replace('"', ""),
            self.origin
        )
    }
}

/// The events of one seed, in the order clients publish them.
pub fn generate(rng: &mut fastrand::Rng, topology: &Topology, count: usize) -> Vec<Planned> {
    let start: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().expect("a valid time");
    (0..count)
        .map(|i| {
            let id = EventId::parse(&format!("sim-{i}-{:08x}", rng.u32(..))).expect("valid id");
            let sent_at = start + Duration::seconds(i as i64);
            let origin = topology.regions[rng.usize(..topology.regions.len())].clone();
            let event = event(rng, topology, id, sent_at);
            let mut envelope = envelope(&origin, &event);
            match rng.u32(0..100) {
                0..=9 => {
                    let flaw = spoil(rng, &mut envelope["detail"]);
                    Planned {
                        origin,
                        envelope,
                        good: None,
                        flaw,
                    }
                }
                _ => Planned {
                    origin,
                    envelope,
                    good: Some(event),
                    flaw: "",
                },
            }
        })
        .collect()
}

fn event(rng: &mut fastrand::Rng, topology: &Topology, id: EventId, at: DateTime<Utc>) -> Event {
    let humans: Vec<&Participant> = topology.participants.iter().map(|p| &p.name).collect();
    let bots: Vec<&Participant> = topology.bots.iter().map(|b| &b.name).collect();
    let human = |rng: &mut fastrand::Rng| humans[rng.usize(..humans.len())].clone();
    let product = |rng: &mut fastrand::Rng| {
        Product::parse(PRODUCTS[rng.usize(..PRODUCTS.len())]).expect("a valid product")
    };
    match rng.u32(0..100) {
        0..=24 => {
            let from = human(rng);
            let others: Vec<&&Participant> = humans.iter().filter(|h| ***h != from).collect();
            let to = others
                .get(rng.usize(..others.len().max(1)))
                .map_or_else(|| from.clone(), |p| (**p).clone());
            chat(id, from, to, at)
        }
        25..=44 if !bots.is_empty() => {
            let bot = bots[rng.usize(..bots.len())].clone();
            chat(id, human(rng), bot, at)
        }
        45..=84 => {
            let stores: Vec<&Store> = topology.stores.iter().map(|s| &s.name).collect();
            Event::StockAdd(StockAdd {
                id,
                store: stores[rng.usize(..stores.len())].clone(),
                product: product(rng),
                qty: Quantity::new(rng.u64(1..=20)).expect("a valid quantity"),
            })
        }
        _ => Event::StockStatus(StockStatus {
            id,
            asker: human(rng),
            product: rng.bool().then(|| product(rng)),
        }),
    }
}

fn chat(id: EventId, from: Participant, to: Participant, sent_at: DateTime<Utc>) -> Event {
    Event::ChatSend(ChatSend {
        text: Text::parse(&format!("{id} from {from}")).expect("a valid text"),
        id,
        from,
        to,
        sent_at,
        in_reply_to: None,
    })
}

/// Makes a valid event's detail invalid in a way its rule still routes (the field a rule
/// matches on is left alone), so it reaches its handler and must be set aside there.
fn spoil(rng: &mut fastrand::Rng, detail: &mut Value) -> &'static str {
    let derived = EventId::parse("x").expect("valid").derived("reply");
    let flaws: [(&'static str, &str, Value); 4] = [
        ("an id in moebi's namespace", "id", json!(derived.as_str())),
        ("an unknown field", "colour", json!("red")),
        ("a number where text goes", "id", json!(12)),
        ("a missing id", "id", Value::Null),
    ];
    let specific: Option<(&'static str, &str, Value)> = if detail.get("qty").is_some() {
        Some(("qty 0", "qty", json!(0)))
    } else if detail.get("sent_at").is_some() {
        Some((
            "sent_at in year 10000",
            "sent_at",
            json!("+10000-01-01T00:00:00Z"),
        ))
    } else {
        None
    };
    let pick = rng.usize(..flaws.len() + 1);
    let (flaw, field, value) = match specific {
        Some(s) if pick == flaws.len() => s,
        _ => flaws[pick % flaws.len()].clone(),
    };
    let object = detail.as_object_mut().expect("a detail is an object");
    if value.is_null() {
        object.remove(field);
    } else {
        object.insert(field.to_owned(), value);
    }
    flaw
}
