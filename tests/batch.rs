//! A batch's records in flight together: records run at once, those of one product too (the
//! store sends their total as one action: tests/coalesce.rs), a record delivered twice in one
//! batch one after the other, a record that panics fails alone, and the simulation's
//! `one_at_a_time` runs them one by one.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use moebi::contract::{Event, Participant, Product, Quantity, Region};
use moebi::invoke::{self, RECORDS_AT_ONCE};
use moebi::ports::{
    Bus, EffectKey, InboxEntry, Inboxes, Outcome, PortError, Ports, StockShare, StockShares,
};
use moebi::topology::{Function, Topology};

/// A stock that takes a while per add and remembers what ran when.
#[derive(Default)]
struct Slow {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_flight: BTreeMap<String, usize>,
    most_at_once: usize,
    most_per_product: usize,
    order: BTreeMap<String, Vec<u32>>,
}

#[async_trait]
impl StockShares for Slow {
    async fn add(
        &self,
        _: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError> {
        let name = product.to_string();
        assert_ne!(name, "grenade", "a bug in the store");
        {
            let mut s = self.state.lock().unwrap();
            *s.in_flight.entry(name.clone()).or_default() += 1;
            let total: usize = s.in_flight.values().sum();
            let here = s.in_flight[&name];
            s.most_at_once = s.most_at_once.max(total);
            s.most_per_product = s.most_per_product.max(here);
            s.order.entry(name.clone()).or_default().push(qty.get());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        *self.state.lock().unwrap().in_flight.get_mut(&name).unwrap() -= 1;
        Ok(Outcome::Applied)
    }

    async fn shares(&self, _: Option<&Product>) -> Result<Vec<StockShare>, PortError> {
        unreachable!("stock-add never reads the shares")
    }
}

#[async_trait]
impl Inboxes for Slow {
    async fn deliver(
        &self,
        _: &EffectKey,
        _: &Participant,
        _: &InboxEntry,
    ) -> Result<Outcome, PortError> {
        unreachable!("stock-add writes no inbox")
    }
    async fn inbox(&self, _: &Participant) -> Result<Vec<InboxEntry>, PortError> {
        unreachable!("stock-add reads no inbox")
    }
}

#[async_trait]
impl Bus for Slow {
    async fn publish(&self, _: &[Event]) -> Result<(), PortError> {
        unreachable!("stock-add publishes nothing")
    }
}

/// An SQS batch of stock adds by store-2 (us-east-1): (product, qty) each.
fn batch(adds: &[(&str, u32)]) -> SqsEvent {
    let ids: Vec<String> = (0..adds.len()).map(|i| format!("add-{i}")).collect();
    let adds: Vec<(&str, &str, u64)> = adds
        .iter()
        .zip(&ids)
        .map(|((product, qty), id)| (id.as_str(), *product, u64::from(*qty)))
        .collect();
    support::payloads::stock_add_batch(&adds)
}

async fn run(slow: &Slow, batch: &SqsEvent) -> Vec<invoke::RecordResult> {
    let topology = Topology::builtin();
    let east = Region::parse("us-east-1").unwrap();
    let ports = Ports {
        region: &east,
        topology: &topology,
        inboxes: slow,
        stock: slow,
        bus: slow,
    };
    invoke::batch_of(Function::StockAdd, &ports, batch).await
}

#[tokio::test]
async fn records_run_together_and_one_event_delivered_twice_in_order() {
    let mut adds = Vec::new();
    for n in 1..=4 {
        adds.extend([("nike", n), ("puma", 10 + n), ("adidas", 20 + n)]);
    }
    for p in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"] {
        adds.push((p, 1));
    }
    let slow = Slow::default();
    let results = run(&slow, &batch(&adds)).await;
    let ids: Vec<&str> = results.iter().map(|r| r.message_id.as_str()).collect();
    let expected: Vec<String> = (0..adds.len()).map(|i| format!("m{i}")).collect();
    assert_eq!(ids, expected, "results in the batch's order");
    assert!(results.iter().all(|r| r.result.is_ok()));
    {
        let s = slow.state.lock().unwrap();
        assert!(s.most_at_once > 1, "records ran one at a time");
        assert!(
            s.most_at_once <= RECORDS_AT_ONCE,
            "{} in flight",
            s.most_at_once
        );
        assert!(
            s.most_per_product > 1,
            "one product's adds ran one at a time: the store cannot sum them"
        );
    }

    // One event delivered twice in a batch: the second waits for the first (its idempotency
    // record decides), whatever else runs.
    let twice = support::payloads::stock_add_batch(&[
        ("same", "nike", 1),
        ("other", "nike", 2),
        ("same", "nike", 1),
    ]);
    let slow = Slow::default();
    let results = run(&slow, &twice).await;
    assert!(results.iter().all(|r| r.result.is_ok()));
    let s = slow.state.lock().unwrap();
    assert_eq!(s.most_per_product, 2, "the other add ran beside the first");
    assert_eq!(
        s.order["nike"],
        [1, 2, 1],
        "the redelivery ran after the first"
    );
}

#[tokio::test]
async fn one_at_a_time_runs_the_records_one_by_one() {
    let slow = Slow::default();
    let results = invoke::one_at_a_time(run(
        &slow,
        &batch(&[("nike", 1), ("puma", 2), ("adidas", 3)]),
    ))
    .await;
    assert!(results.iter().all(|r| r.result.is_ok()));
    assert_eq!(slow.state.lock().unwrap().most_at_once, 1);
}

#[tokio::test]
async fn a_record_that_panics_fails_alone() {
    let slow = Slow::default();
    let results = run(&slow, &batch(&[("nike", 1), ("grenade", 2), ("puma", 3)])).await;
    let failed: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|r| Some((r.message_id.as_str(), r.result.as_ref().err()?.error_type())))
        .collect();
    assert_eq!(failed, [("m1", "Permanent.Panic")]);
    let err = results[1].result.as_ref().unwrap_err().to_string();
    assert!(err.contains("a bug in the store"), "{err}");
    assert_eq!(
        invoke::batch_response(&results).batch_item_failures.len(),
        1
    );
}
