//! Throughput of the hot paths: parsing an event, routing it, and the embedded engine
//! delivering chat messages and stock adds end to end (`make bench`).

use std::hint::black_box;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use moebi::contract::{
    ChatSend, Event, EventId, Participant, Product, Quantity, Region, StockAdd, Store, Text,
};
use moebi::engine::local::{envelope, LocalEngine};
use moebi::engine::Engine;
use moebi::pattern::Pattern;
use moebi::topology::Topology;

/// The allocator the `moebi` CLI runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn chat(i: usize) -> Event {
    Event::ChatSend(ChatSend {
        id: EventId::parse(&format!("bench-{i}")).unwrap(),
        from: Participant::parse("alex").unwrap(),
        to: Participant::parse("kate").unwrap(),
        text: Text::parse("hi, how is the weather in us-east-1?").unwrap(),
        sent_at: Utc::now(),
        in_reply_to: None,
    })
}

fn contract(c: &mut Criterion) {
    let west = Region::parse("us-west-2").unwrap();
    let text = envelope(&west, &chat(0)).to_string();
    let mut g = c.benchmark_group("contract");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse chat.send envelope", |b| {
        b.iter(|| Event::from_envelope_json(black_box(&text)).unwrap())
    });
    let topology = Topology::builtin();
    let rules: Vec<Pattern> = topology
        .rules(&west)
        .iter()
        .map(|r| Pattern::parse(&r.pattern).unwrap())
        .collect();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    g.bench_function("route against one region's rules", |b| {
        b.iter(|| {
            rules
                .iter()
                .filter(|p| p.matches(black_box(&value)))
                .count()
        })
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    const N: usize = 100;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let west = Region::parse("us-west-2").unwrap();
    let mut g = c.benchmark_group("local engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("100 chat.send across regions, published and drained", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let engine = rt
                    .block_on(LocalEngine::open(dir.path(), Topology::builtin()))
                    .unwrap();
                (dir, engine, (0..N).map(chat).collect::<Vec<_>>())
            },
            |(dir, engine, events)| {
                rt.block_on(async {
                    engine.publish(&west, &events).await.unwrap();
                    engine.run_until_idle().await.unwrap();
                });
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("100 stock.add, published and drained", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let engine = rt
                    .block_on(LocalEngine::open(dir.path(), Topology::builtin()))
                    .unwrap();
                let events: Vec<Event> = (0..N)
                    .map(|i| {
                        Event::StockAdd(StockAdd {
                            id: EventId::parse(&format!("add-{i}")).unwrap(),
                            store: Store::parse("store-1").unwrap(),
                            product: Product::parse(&format!("p{}", i % 10)).unwrap(),
                            qty: Quantity::new(3).unwrap(),
                        })
                    })
                    .collect();
                (dir, engine, events)
            },
            |(dir, engine, events)| {
                rt.block_on(async {
                    engine.publish(&west, &events).await.unwrap();
                    engine.run_until_idle().await.unwrap();
                });
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// What the embedded engine's path costs per DynamoDB operation: the same `PutItem` through
/// the SDK handed to dynoxide in process (what the engine does), through the SDK to dynoxide
/// on a loopback listener (what it did before, and what `moebi serve-dynamodb` serves), and
/// straight into dynoxide's `Database` (the floor).
fn embedded_dynamodb(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let west = Region::parse("us-west-2").unwrap();
    let server = rt
        .block_on(moebi::engine::local::EmbeddedDynamo::start(
            &dir.path().join("sdk.dynamodb"),
        ))
        .unwrap();
    let client = server.dynamo(&west);
    rt.block_on(moebi::store::schema::ensure_table(&client, "bench"))
        .unwrap();
    let embedded =
        moebi::engine::local::EmbeddedDynamo::open(&dir.path().join("inprocess.dynamodb")).unwrap();
    let inprocess = embedded.dynamo(&west);
    rt.block_on(moebi::store::schema::ensure_table(&inprocess, "bench"))
        .unwrap();
    let direct =
        dynoxide::Database::new(dir.path().join("direct.dynamodb").to_str().unwrap()).unwrap();
    // The same sync as the engine's (see engine::local::dynamo).
    direct.disable_bulk_loading().unwrap();
    direct
        .create_table(
            serde_json::from_value(serde_json::json!({
                "TableName": "bench",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            }))
            .unwrap(),
        )
        .unwrap();
    let mut g = c.benchmark_group("embedded DynamoDB, one PutItem");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    for (name, sdk) in [
        ("SDK in process (the engine's path)", &inprocess),
        ("SDK over loopback", &client),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(
                    sdk.put_item()
                        .table_name("bench")
                        .item("pk", AttributeValue::S(format!("k{i}")))
                        .item("sk", AttributeValue::S("x".into()))
                        .send(),
                )
                .unwrap()
            })
        });
    }
    g.bench_function("dynoxide Database, no transport (floor)", |b| {
        b.iter(|| {
            i += 1;
            let request = serde_json::from_value(serde_json::json!({
                "TableName": "bench",
                "Item": {"pk": {"S": format!("k{i}")}, "sk": {"S": "x"}},
            }))
            .unwrap();
            direct.put_item(request).unwrap()
        })
    });
    g.finish();
    // A read writes nothing to disk: what is left is the transport.
    let mut g = c.benchmark_group("embedded DynamoDB, one GetItem");
    g.throughput(Throughput::Elements(1));
    for (name, sdk) in [
        ("SDK in process (the engine's path)", &inprocess),
        ("SDK over loopback", &client),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(
                    sdk.get_item()
                        .table_name("bench")
                        .key("pk", AttributeValue::S("k1".into()))
                        .key("sk", AttributeValue::S("x".into()))
                        .send(),
                )
                .unwrap()
            })
        });
    }
    g.bench_function("dynoxide Database, no transport (floor)", |b| {
        b.iter(|| {
            let request = serde_json::from_value(serde_json::json!({
                "TableName": "bench",
                "Key": {"pk": {"S": "k1"}, "sk": {"S": "x"}},
            }))
            .unwrap();
            direct.get_item(request).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, contract, engine, embedded_dynamodb);
criterion_main!(benches);
