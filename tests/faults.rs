//! Faults in the AWS APIs: the AWS engine (the handlers, the pump, replication) runs against the
//! emulators (dynoxide for DynamoDB, moto for SQS and EventBridge) through a proxy of ours that fails requests at a rate (errors, throttling, dropped
//! connections, responses dropped after the write happened), over a few thousand deliveries
//! with duplicates. Nothing is lost, nothing is doubled, nothing ends as a dead letter.
//!
//! Run by `make test` (`make test-faults`), which prints its figures. Seeded: it prints
//! `MOEBI_FAULT_SEED`; `MOEBI_FAULT_EVENTS` sets the events (default 1,000), `MOEBI_FAULT_RATE`
//! the faults of each kind per thousand requests (default 15).

#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::collections::BTreeMap;

use chrono::Utc;
use moebi::contract::{
    ChatSend, Event, EventId, Participant, Product, Quantity, Region, StockAdd, Store, Text,
};
use moebi::engine::aws::{AwsConfig, AwsEngine};
use moebi::engine::local::EmbeddedDynamo;
use moebi::engine::Engine;
use moebi::topology::Topology;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

fn p(name: &str) -> Participant {
    Participant::parse(name).unwrap()
}

/// Event `i` of the workload, and the region its client publishes it in.
fn event(i: u64) -> (Region, Event) {
    let id = EventId::parse(&format!("f-{i}")).unwrap();
    let chat = |from: &str, to: &str| {
        Event::ChatSend(ChatSend {
            id: id.clone(),
            from: p(from),
            to: p(to),
            text: Text::parse(&format!("m{i}")).unwrap(),
            sent_at: Utc::now(),
            in_reply_to: None,
        })
    };
    match i % 4 {
        0 => (region("us-west-2"), chat("alex", "kate")),
        1 => (region("us-east-1"), chat("kate", "alex")),
        2 => (region("us-west-2"), chat("alex", "moebi")),
        _ => {
            let store = ["store-1", "store-2", "store-3"][(i / 4 % 3) as usize];
            let home = ["us-west-2", "us-east-1", "eu-west-1"][(i / 4 % 3) as usize];
            let add = StockAdd {
                id,
                store: Store::parse(store).unwrap(),
                product: Product::parse("nike").unwrap(),
                qty: Quantity::new(i % 5 + 1).unwrap(),
            };
            (region(home), Event::StockAdd(add))
        }
    }
}

/// Publishes as a client does: a failed call is made again (which may publish twice).
async fn publish(engine: &AwsEngine, region: &Region, events: &[Event]) {
    for attempt in 1.. {
        match engine.publish(region, events).await {
            Ok(()) => return,
            Err(e) if attempt < 20 => eprintln!("publish failed, again: {}", moebi::report(&e)),
            Err(e) => panic!("publish failed 20 times: {}", moebi::report(&e)),
        }
    }
}

/// Runs until idle as an operator would: a run that fails is run again.
async fn drain(engine: &AwsEngine) {
    for attempt in 1.. {
        match engine.run_until_idle().await {
            Ok(_) => return,
            Err(e) if attempt < 50 => eprintln!("run failed, again: {}", moebi::report(&e)),
            Err(e) => panic!("the run failed 50 times: {}", moebi::report(&e)),
        }
    }
}

/// How often each id is in `who`'s inbox.
async fn counts(engine: &AwsEngine, who: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for entry in engine.inbox(&p(who)).await.unwrap() {
        *counts.entry(entry.id.as_str().to_owned()).or_default() += 1;
    }
    counts
}

/// Compares an inbox with the ids it must hold once each: (lost, doubled).
fn compare(have: &BTreeMap<String, u64>, want: &[String]) -> (u64, u64) {
    let lost = want.iter().filter(|id| !have.contains_key(*id)).count() as u64;
    let doubled = have.values().map(|n| n.saturating_sub(1)).sum::<u64>()
        + have.keys().filter(|id| !want.contains(id)).count() as u64;
    (lost, doubled)
}

/// What the workload must have left, compared with what the engine holds: (lost, doubled).
async fn tally(engine: &AwsEngine, all: &[(Region, Event)]) -> (u64, u64) {
    let mut want: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut units = 0u64;
    for (_, e) in all {
        match e {
            Event::ChatSend(c) => {
                want.entry(c.to.as_str())
                    .or_default()
                    .push(c.id.to_string());
                if c.to.as_str() == "moebi" {
                    let reply = c.id.derived("reply").to_string();
                    want.entry(c.from.as_str()).or_default().push(reply);
                }
            }
            Event::StockAdd(a) => units += u64::from(a.qty.get()),
            Event::StockStatus(_) => {}
        }
    }
    let (mut lost, mut doubled) = (0, 0);
    for who in ["alex", "kate", "moebi"] {
        let (l, d) = compare(
            &counts(engine, who).await,
            want.get(who).map_or(&[][..], Vec::as_slice),
        );
        lost += l;
        doubled += d;
    }
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        let held: u64 = support::shares(engine, r).await.iter().map(|s| s.2).sum();
        lost += units.saturating_sub(held);
        doubled += held.saturating_sub(units);
    }
    (lost, doubled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `make test` (make test-faults), which prints its figures"]
async fn nothing_is_lost_or_doubled_when_the_aws_apis_fail() {
    let seed = env("MOEBI_FAULT_SEED", Utc::now().timestamp_micros() as u64);
    let events = env("MOEBI_FAULT_EVENTS", 1000);
    let rate = env("MOEBI_FAULT_RATE", 15) as u32;
    eprintln!("MOEBI_FAULT_SEED={seed} MOEBI_FAULT_EVENTS={events} MOEBI_FAULT_RATE={rate}");
    // DynamoDB on dynoxide (one per region, as tables are per region), SQS and EventBridge on
    // moto (whose DynamoDB copies whole tables on every transaction and grows without bound).
    let dir = tempfile::tempdir().unwrap();
    let mut dynamos = Vec::new();
    let mut urls = BTreeMap::new();
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        let db = dir.path().join(format!("{r}.dynamodb"));
        let dynamo = EmbeddedDynamo::start(&db).await.unwrap();
        urls.insert(r.to_owned(), dynamo.url().unwrap().to_owned());
        dynamos.push(dynamo);
    }
    let proxy = proxy::Proxy::start(&support::emulator_url(), urls, seed, rate).await;
    // A message whose receive or delete was lost comes back after 2 s, not three minutes: the
    // suite's waits are those timeouts, so they are short (the faults are not fewer).
    let mut topology = Topology::builtin();
    topology.queues.visibility_timeout_seconds = 2;
    let ns = format!("f{}", seed % 1_000_000);
    let config = AwsConfig::for_cli(Some(proxy.url.clone())).with_namespace(&ns);
    let engine = AwsEngine::connect(config, topology).await.unwrap();
    engine.setup().await.unwrap();
    proxy.inject(true);
    let mut published = 0;
    let all: Vec<(Region, Event)> = (0..events).map(event).collect();
    for (n, chunk) in all.chunks(10).enumerate() {
        for (r, e) in chunk {
            // Every fifth chunk twice, as an at-least-once client does.
            let times = if n % 5 == 0 { 2 } else { 1 };
            for _ in 0..times {
                publish(&engine, r, std::slice::from_ref(e)).await;
                published += 1;
            }
        }
        if n % 20 == 19 {
            drain(&engine).await;
        }
    }
    drain(&engine).await;
    proxy.inject(false);
    drain(&engine).await;
    let injected = proxy.injected();

    let (lost, doubled) = tally(&engine, &all).await;
    let dead = engine.dead_letters(None).await.unwrap();
    let figures: Vec<String> = proxy::KINDS
        .iter()
        .zip(injected)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    println!(
        "faults: {events} events ({published} published), {} requests forwarded, injected {}; lost {lost}, doubled {doubled}, dead letters {}",
        proxy.forwarded(),
        figures.join(", "),
        dead.len()
    );
    assert!(
        injected.iter().all(|n| *n > 0),
        "every kind of fault was injected: {injected:?}"
    );
    assert_eq!((lost, doubled), (0, 0));
    assert!(dead.is_empty(), "{dead:?}");
}
