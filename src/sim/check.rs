//! The checker: after the links heal and the queues drain, what every region holds is compared
//! with what the accepted events must have done, exactly once, and nothing else.

use std::collections::BTreeMap;

use serde_json::Value;

use super::workload::Planned;
use crate::contract::{Event, EventId, Participant, Product, Region};
use crate::engine::local::LocalEngine;
use crate::engine::{Engine, EngineError};
use crate::ports::{InboxEntry, Inboxes, StockShares};
use crate::topology::Topology;

/// What a seed's end state breaks.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    /// Effects missing (inbox entries, and units of stock), summed over the regions.
    pub lost: u64,
    /// Effects applied more than once (entries, units), summed over the regions.
    pub doubled: u64,
    /// Every broken guarantee, in words.
    pub violations: Vec<String>,
}

/// The units of the stock, per product.
type Totals = BTreeMap<Product, u64>;

/// What one region holds, as read back: every inbox (in the owners' order), the stock.
type Held = (Vec<Vec<InboxEntry>>, Totals);

/// What the accepted events must have left.
#[derive(Default)]
struct Expected {
    /// Per inbox owner, the ids of the entries it must hold once each.
    entries: BTreeMap<Participant, Vec<EventId>>,
    /// Per product, the stock's total.
    totals: Totals,
}

fn expected(topology: &Topology, plan: &[Planned]) -> Expected {
    let mut x = Expected::default();
    for event in plan.iter().filter_map(|p| p.good.as_ref()) {
        match event {
            Event::ChatSend(c) => {
                x.entries
                    .entry(c.to.clone())
                    .or_default()
                    .push(c.id.clone());
                // A bot answers every message that is not a bot's.
                if topology.bot(&c.to).is_some() && topology.bot(&c.from).is_none() {
                    x.entries
                        .entry(c.from.clone())
                        .or_default()
                        .push(c.id.derived("reply"));
                }
            }
            Event::StockAdd(a) => {
                *x.totals.entry(a.product.clone()).or_default() += u64::from(a.qty.get());
            }
            Event::StockStatus(s) => x
                .entries
                .entry(s.asker.clone())
                .or_default()
                .push(s.id.derived("answer")),
        }
    }
    x
}

/// Checks the drained engine against the plan. `published[i]` is how often `plan[i]` reached a
/// region to be applied: once per publish, twice while its home was evacuated.
pub async fn check(
    engine: &LocalEngine,
    plan: &[Planned],
    published: &[u32],
) -> Result<Findings, EngineError> {
    let topology = engine.topology();
    let x = expected(topology, plan);
    let mut findings = Findings::default();
    let owners: Vec<Participant> = topology
        .participants
        .iter()
        .map(|p| p.name.clone())
        .chain(topology.bots.iter().map(|b| b.name.clone()))
        .collect();
    let mut first: Option<(Region, Held)> = None;
    for region in &topology.regions {
        let store = engine.store(region)?;
        let mut inboxes = Vec::new();
        for owner in &owners {
            let inbox = store.inbox(owner).await?;
            let want = x.entries.get(owner).map(Vec::as_slice).unwrap_or(&[]);
            entries(&mut findings, region, owner, &inbox, want);
            answers(&mut findings, region, owner, &inbox, &x.totals);
            inboxes.push(inbox);
        }
        let mut shares = BTreeMap::new();
        for share in store.shares(None).await? {
            *shares.entry(share.product).or_default() += share.qty;
        }
        units(&mut findings, region, &shares, &x.totals);
        match &first {
            None => first = Some((region.clone(), (inboxes, shares))),
            Some((r0, (i0, s0))) => {
                if *i0 != inboxes {
                    findings
                        .violations
                        .push(format!("the inboxes in {region} differ from those in {r0}"));
                }
                if *s0 != shares {
                    findings
                        .violations
                        .push(format!("the stock in {region} differs from that in {r0}"));
                }
            }
        }
    }
    dead_letters(&mut findings, engine, plan, published).await?;
    Ok(findings)
}

/// Each wanted entry once, nothing else.
fn entries(
    findings: &mut Findings,
    region: &Region,
    owner: &Participant,
    inbox: &[InboxEntry],
    want: &[EventId],
) {
    let mut counts: BTreeMap<&EventId, u64> = BTreeMap::new();
    for entry in inbox {
        *counts.entry(&entry.id).or_default() += 1;
    }
    for id in want {
        match counts.remove(id) {
            None | Some(0) => {
                findings.lost += 1;
                findings
                    .violations
                    .push(format!("lost: {owner}'s inbox in {region} lacks {id}"));
            }
            Some(1) => {}
            Some(n) => {
                findings.doubled += n - 1;
                findings.violations.push(format!(
                    "doubled: {owner}'s inbox in {region} holds {id} {n} times"
                ));
            }
        }
    }
    for (id, n) in counts {
        findings.doubled += n;
        findings.violations.push(format!(
            "{owner}'s inbox in {region} holds {id}, which no accepted event made"
        ));
    }
}

/// An answer of the stock never tells of more than was accepted.
fn answers(
    findings: &mut Findings,
    region: &Region,
    owner: &Participant,
    inbox: &[InboxEntry],
    totals: &BTreeMap<Product, u64>,
) {
    for entry in inbox.iter().filter(|e| e.from == InboxEntry::STOCK) {
        for part in entry.text.split(", ") {
            let Some((product, qty)) = part.split_once(": ") else {
                continue;
            };
            let accepted = Product::parse(product)
                .ok()
                .and_then(|p| totals.get(&p).copied())
                .unwrap_or(0);
            if qty.parse::<u64>().map_or(true, |q| q > accepted) {
                findings.violations.push(format!(
                    "{owner}'s answer {} in {region} says {part:?}, but {accepted} were accepted",
                    entry.id
                ));
            }
        }
    }
}

/// The stock of each product is exactly the units of its accepted adds.
fn units(findings: &mut Findings, region: &Region, held: &Totals, want: &Totals) {
    let keys: std::collections::BTreeSet<_> = held.keys().chain(want.keys()).collect();
    for product in keys {
        let have = held.get(product).copied().unwrap_or(0);
        let need = want.get(product).copied().unwrap_or(0);
        if have < need {
            findings.lost += need - have;
            findings.violations.push(format!(
                "lost updates: {region} holds {have} of {product}, accepted {need}"
            ));
        } else if have > need {
            findings.doubled += have - need;
            findings.violations.push(format!(
                "doubled: {region} holds {have} of {product}, accepted {need}"
            ));
        }
    }
}

/// Every bad event is a dead letter, as often as it was published; nothing else is.
async fn dead_letters(
    findings: &mut Findings,
    engine: &LocalEngine,
    plan: &[Planned],
    published: &[u32],
) -> Result<(), EngineError> {
    let mut dead: Vec<Value> = Vec::new();
    for letter in engine.dead_letters(None).await? {
        let body: Value = serde_json::from_str(&letter.body).unwrap_or(Value::Null);
        dead.push(body["detail"].clone());
    }
    for (planned, times) in plan.iter().zip(published) {
        let detail = &planned.envelope["detail"];
        // Two bad events may be the same event (the same flaw on the same fields): each takes
        // as many dead letters as it was published, the next the rest. A good one takes all.
        let wanted = if planned.good.is_some() {
            u32::MAX
        } else {
            *times
        };
        let mut found = 0u32;
        dead.retain(|d| {
            if found < wanted && d == detail {
                found += 1;
                false
            } else {
                true
            }
        });
        match (&planned.good, found) {
            (Some(_), 0) => {}
            (Some(_), n) => findings.violations.push(format!(
                "{} was accepted, yet is a dead letter {n} times",
                planned.describe()
            )),
            (None, n) if n == *times => {}
            (None, n) => findings.violations.push(format!(
                "{} was published {times} times and is a dead letter {n} times",
                planned.describe()
            )),
        }
    }
    for detail in dead {
        findings
            .violations
            .push(format!("a dead letter no client published: {detail}"));
    }
    Ok(())
}
