//! What a load run sends, and when: an open model. Event `i` is due `i / rate` seconds after
//! the start, whatever the system answers (k6's `constant-arrival-rate`); its latency is counted
//! from that instant, so a stall shows as the time every event waited behind it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;

use crate::contract::{
    ChatSend, Event, EventId, Participant, Product, Quantity, Region, StockAdd, StockStatus, Store,
    Text,
};
use crate::topology::Topology;

use super::LoadError;

/// What kind of work an event is, by where its effect shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A message to another participant: in the recipient's inbox, in their home region.
    Chat,
    /// A message to a bot: its answer (`chicken?`) in the sender's inbox.
    Moebi,
    /// A store's add: its share of the stock, in every region.
    Add,
    /// A question to the stock: the answer in the asker's inbox.
    Ask,
}

impl Kind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Kind; 4] = [Kind::Chat, Kind::Moebi, Kind::Add, Kind::Ask];

    /// Its name, as `--mix` and the reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Moebi => "moebi",
            Kind::Add => "add",
            Kind::Ask => "ask",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// How the events are spread over the kinds: a weight each (`chat=60,moebi=20,add=10,ask=10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix([u32; 4]);

impl Default for Mix {
    fn default() -> Self {
        Mix([60, 20, 10, 10])
    }
}

impl Mix {
    /// The weight of `kind`.
    pub fn weight(&self, kind: Kind) -> u32 {
        self.0[kind as usize]
    }

    /// The kind a draw in `0..total` falls on.
    fn pick(&self, draw: u32) -> Kind {
        let mut left = draw;
        for kind in Kind::ALL {
            if left < self.weight(kind) {
                return kind;
            }
            left -= self.weight(kind);
        }
        Kind::Ask
    }

    fn total(&self) -> u32 {
        self.0.iter().sum()
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut weights = [0u32; 4];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=weight, as chat=60"))?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| format!("unknown kind {name:?} (kinds: chat, moebi, add, ask)"))?;
            weights[kind as usize] = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
        }
        if weights.iter().sum::<u32>() == 0 {
            return Err("the mix has no weight: give at least one kind, as chat=1".into());
        }
        Ok(Mix(weights))
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| self.weight(**k) > 0)
            .map(|k| format!("{}={}", k.name(), self.weight(*k)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A load run's request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Events per second offered.
    pub rate: f64,
    /// How long events are offered.
    pub duration: Duration,
    /// The kinds' weights.
    pub mix: Mix,
    /// Who sends and asks (default: every participant of the topology).
    pub participants: Vec<Participant>,
    /// Who adds (default: every store).
    pub stores: Vec<Store>,
    /// How many products the adds and questions spread over.
    pub products: u32,
    /// The seed of who sends what, to whom (the schedule; not the timings).
    pub seed: u64,
}

/// One event of the schedule.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its place in the schedule.
    pub index: usize,
    /// When it is due, after the start.
    pub due: Duration,
    /// Its kind.
    pub kind: Kind,
    /// The region of the client that sends it (the sender's, store's or asker's home).
    pub region: Region,
    /// The event.
    pub event: Event,
}

impl Plan {
    /// The schedule: `rate × duration` events, event `i` due at `i / rate` s. Who does what is
    /// drawn from `seed`; ids are unique to this call (`load-<run>-<i>`).
    pub fn schedule(&self, topology: &Topology) -> Result<Vec<Planned>, LoadError> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(LoadError::Plan(format!(
                "the rate must be above 0 events/s, got {}",
                self.rate
            )));
        }
        let count = (self.rate * self.duration.as_secs_f64()).floor() as usize;
        if count == 0 {
            return Err(LoadError::Plan(format!(
                "{} events/s for {:?} is no event at all",
                self.rate, self.duration
            )));
        }
        let people = self.people(topology)?;
        let stores = self.stores(topology)?;
        let bot = topology.bots.first();
        for kind in Kind::ALL.into_iter().filter(|k| self.mix.weight(*k) > 0) {
            let missing = match kind {
                Kind::Chat if people.len() < 2 => Some("two participants"),
                Kind::Moebi if bot.is_none() => Some("a bot"),
                Kind::Add if stores.is_empty() => Some("a store"),
                _ => None,
            };
            if let Some(what) = missing {
                return Err(LoadError::Plan(format!(
                    "the mix has {kind} but the topology or the options give no {what}"
                )));
            }
        }
        let run_id = EventId::random();
        let run = &run_id.as_str()[..8];
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let mut out = Vec::with_capacity(count);
        for index in 0..count {
            let due = Duration::from_secs_f64(index as f64 / self.rate);
            let kind = self.mix.pick(rng.u32(0..self.mix.total()));
            let id = EventId::parse(&format!("load-{run}-{index}")).map_err(plan_error)?;
            let text = || Text::parse(&format!("load {index}")).map_err(plan_error);
            let product = |rng: &mut fastrand::Rng| {
                Product::parse(&format!("load-{run}-{}", rng.u32(0..self.products.max(1))))
                    .map_err(plan_error)
            };
            let (region, event) = match kind {
                Kind::Chat | Kind::Moebi => {
                    let (from, home) = people[rng.usize(0..people.len())].clone();
                    let to = match (kind, bot) {
                        (Kind::Moebi, Some(b)) => b.name.clone(),
                        _ => loop {
                            let (to, _) = &people[rng.usize(0..people.len())];
                            if *to != from {
                                break to.clone();
                            }
                        },
                    };
                    let msg = ChatSend {
                        id,
                        from,
                        to,
                        text: text()?,
                        sent_at: Utc::now(),
                        in_reply_to: None,
                    };
                    (home, Event::ChatSend(msg))
                }
                Kind::Add => {
                    let (store, home) = stores[rng.usize(0..stores.len())].clone();
                    let qty = Quantity::new(rng.u64(1..=10)).map_err(plan_error)?;
                    let product = product(&mut rng)?;
                    let add = StockAdd {
                        id,
                        store,
                        product,
                        qty,
                    };
                    (home, Event::StockAdd(add))
                }
                Kind::Ask => {
                    let (asker, home) = people[rng.usize(0..people.len())].clone();
                    let product = Some(product(&mut rng)?);
                    (home, Event::StockStatus(StockStatus { id, asker, product }))
                }
            };
            out.push(Planned {
                index,
                due,
                kind,
                region,
                event,
            });
        }
        Ok(out)
    }

    fn people(&self, topology: &Topology) -> Result<Vec<(Participant, Region)>, LoadError> {
        let names: Vec<Participant> = if self.participants.is_empty() {
            topology
                .participants
                .iter()
                .map(|p| p.name.clone())
                .collect()
        } else {
            self.participants.clone()
        };
        names
            .into_iter()
            .map(|p| {
                let home = topology
                    .participant_home("participants", &p)
                    .map_err(plan_error)?;
                Ok((p, home.clone()))
            })
            .collect()
    }

    fn stores(&self, topology: &Topology) -> Result<Vec<(Store, Region)>, LoadError> {
        let names: Vec<Store> = if self.stores.is_empty() {
            topology.stores.iter().map(|s| s.name.clone()).collect()
        } else {
            self.stores.clone()
        };
        names
            .into_iter()
            .map(|s| match topology.store_home(&s) {
                Some(home) => Ok((s, home.clone())),
                None => Err(LoadError::Plan(format!(
                    "stores: {s} is no store of the topology"
                ))),
            })
            .collect()
    }
}

fn plan_error(e: crate::contract::ContractError) -> LoadError {
    LoadError::Plan(crate::report(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(mix: &str) -> Plan {
        Plan {
            rate: 100.0,
            duration: Duration::from_secs(2),
            mix: mix.parse().unwrap(),
            participants: Vec::new(),
            stores: Vec::new(),
            products: 5,
            seed: 7,
        }
    }

    #[test]
    fn events_are_due_on_schedule_and_the_seed_replays_who_sends_what() {
        let topology = Topology::builtin();
        let a = plan("chat=1,moebi=1,add=1,ask=1")
            .schedule(&topology)
            .unwrap();
        let b = plan("chat=1,moebi=1,add=1,ask=1")
            .schedule(&topology)
            .unwrap();
        assert_eq!(a.len(), 200);
        assert_eq!(a[150].due, Duration::from_millis(1500));
        let kinds = |s: &[Planned]| {
            s.iter()
                .map(|p| (p.kind, p.region.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&a), kinds(&b));
        for kind in Kind::ALL {
            assert!(a.iter().any(|p| p.kind == kind), "no {kind} in 200 events");
        }
        assert_ne!(a[0].event.id(), b[0].event.id(), "ids are unique to a run");
    }

    #[test]
    fn a_bad_mix_or_rate_is_refused_by_name() {
        assert!("chat=1,dance=2"
            .parse::<Mix>()
            .unwrap_err()
            .contains("dance"));
        assert!("chat=0".parse::<Mix>().is_err());
        let mut p = plan("chat=1");
        p.rate = 0.0;
        let e = p.schedule(&Topology::builtin()).unwrap_err().to_string();
        assert!(e.contains("rate"), "{e}");
    }
}
