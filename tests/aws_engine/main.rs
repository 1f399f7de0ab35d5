//! The AWS engine through the real AWS SDK, against the AWS API emulator (moto's server mode).
//!
//! The emulator's URL comes from `MOEBI_EMULATOR_URL` (`make test` starts the emulator and sets
//! it). Without it these tests fail: they never pass silently. Each test works in its own random
//! namespace, so the tests run in parallel against one emulator.
#![cfg(feature = "aws")]

mod limits;
mod load;
mod setup;
#[path = "../support/mod.rs"]
mod support;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde_json::{json, Value};

use moebi::client::Client;
use moebi::contract::{ChatSend, Event, EventId, Participant, Product, Region, Text};
use moebi::engine::aws::{AwsConfig, AwsEngine};
use moebi::engine::Engine;
use moebi::invoke::{Payload, Response};
use moebi::ports::InboxEntry;
use moebi::resources::ResourceNames;
use moebi::topology::{Function, Topology};

fn emulator_url() -> String {
    match std::env::var("MOEBI_EMULATOR_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "MOEBI_EMULATOR_URL is not set: these tests need the AWS API emulator. Run `make test`, \
             which starts it, or start `moto_server -H 127.0.0.1 -p PORT` and set \
             MOEBI_EMULATOR_URL=http://127.0.0.1:PORT"
        ),
    }
}

/// A fresh namespace: nothing another test does is visible in it.
fn namespace() -> String {
    format!("t{}", &EventId::random().as_str().replace('-', "")[..12])
}

/// An engine on the emulator, in its own namespace, set up.
async fn engine() -> (AwsEngine, String) {
    let ns = namespace();
    let config = AwsConfig::for_cli(Some(emulator_url())).with_namespace(&ns);
    let engine = AwsEngine::connect(config, Topology::builtin())
        .await
        .expect("the engine connects");
    engine.setup().await.expect("setup succeeds");
    (engine, ns)
}

/// The SDK configuration of `region` of the emulator, for plain clients that look at what
/// the engine did (or publish what no client would).
async fn emulator(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .http_client(moebi::sdk::http_client())
        .endpoint_url(emulator_url())
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A plain DynamoDB client for `region` of the emulator, to look at the items themselves.
async fn dynamo(region: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&emulator(region).await)
}

/// A plain EventBridge client for `region` of the emulator, to publish what no client would.
async fn eventbridge(region: &str) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&emulator(region).await)
}

/// A plain SQS client for `region` of the emulator, to read queue attributes back.
async fn sqs(region: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&emulator(region).await)
}

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

fn lines(entries: &[InboxEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}: {}", e.from, e.text))
        .collect()
}

/// An EventBridge envelope as a rule delivers it.
fn envelope(region: &str, kind: &str, detail: Value) -> Value {
    support::payloads::envelope(region, EventId::random().as_str(), kind, detail)
}

/// An SQS batch as Lambda's event source mapping delivers it from `queue` in `region`.
fn batch(region: &str, queue: &str, records: &[(&str, Value)]) -> Payload {
    let records: Vec<(String, Value)> = records
        .iter()
        .map(|(id, body)| ((*id).to_owned(), body.clone()))
        .collect();
    Payload::parse(support::payloads::sqs_batch(region, queue, &records)).expect("a batch parses")
}

fn stock_add(region: &str, id: &str, store: &str, product: &str, qty: i64) -> Value {
    envelope(
        region,
        "stock.add",
        json!({"id": id, "store": store, "product": product, "qty": qty}),
    )
}

fn failed_ids(response: &Response) -> Vec<String> {
    match response {
        Response::Batch(_) => response
            .failures()
            .into_iter()
            .map(|(id, _)| id.to_owned())
            .collect(),
        Response::Event(_) => panic!("a batch answers a batch"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_plays_through_the_sdk() {
    let (engine, _) = engine().await;
    let client = Client::new(&engine);

    // 1. alex sends `hi` to kate
    let hi = client.send("alex", "kate", "hi").await.unwrap();
    let kate = client.inbox("kate").await.unwrap();
    assert_eq!(lines(&kate), ["alex: hi"]);
    assert_eq!(kate[0].id, hi);

    // 2. kate answers
    client.send("kate", "alex", "how are you?").await.unwrap();
    assert_eq!(
        lines(&client.inbox("alex").await.unwrap()),
        ["kate: how are you?"]
    );

    // 3. alex says hi to moebi, who answers alex only
    let to_moebi = client.send("alex", "moebi", "hi").await.unwrap();
    assert_eq!(lines(&client.inbox("moebi").await.unwrap()), ["alex: hi"]);
    let alex = client.inbox("alex").await.unwrap();
    assert_eq!(lines(&alex), ["kate: how are you?", "moebi: chicken?"]);
    assert_eq!(alex[1].in_reply_to.as_ref(), Some(&to_moebi));
    assert_eq!(
        lines(&client.inbox("kate").await.unwrap()),
        ["alex: hi"],
        "kate gets nothing from moebi"
    );

    // 4. stores in two regions add
    client.add_stock("store-1", "nike", 30).await.unwrap();
    client.add_stock("store-3", "adidas", 35).await.unwrap();
    client.add_stock("store-3", "nike", 5).await.unwrap();

    // 5. kate (us-east-1, where no store added anything) sums the shares copied to her region
    assert_eq!(
        client.ask_stock("kate", Some("nike")).await.unwrap(),
        "nike: 35"
    );
    assert_eq!(
        client.ask_stock("kate", Some("adidas")).await.unwrap(),
        "adidas: 35"
    );
    assert_eq!(
        client.ask_stock("kate", Some("puma")).await.unwrap(),
        "there is no product puma"
    );
    assert_eq!(
        client.ask_stock("alex", None).await.unwrap(),
        "adidas: 35, nike: 35"
    );
    let shares = engine
        .ports_of(&region("us-east-1"))
        .unwrap()
        .stock
        .shares(Some(&Product::parse("nike").unwrap()))
        .await
        .unwrap();
    let mut by_region: Vec<_> = shares
        .iter()
        .map(|s| (s.region.to_string(), s.qty))
        .collect();
    by_region.sort();
    assert_eq!(
        by_region,
        [("eu-west-1".to_owned(), 5), ("us-west-2".to_owned(), 30)]
    );
    assert!(engine.dead_letters(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_batch_changes_the_stock_once() {
    let (engine, ns) = engine().await;
    let queue = format!("moebi-{ns}-stock-add");
    // Two products whose keys share a prefix: `shoe#…` must not count `shoe#red`.
    let payload = batch(
        "us-west-2",
        &queue,
        &[
            (
                "m-1",
                stock_add("us-west-2", "replay-1", "store-1", "shoe", 7),
            ),
            (
                "m-2",
                stock_add("us-west-2", "replay-2", "store-1", "shoe#red", 3),
            ),
        ],
    );
    for _ in 0..2 {
        let response = engine
            .invoke(&region("us-west-2"), Function::StockAdd, &payload)
            .await
            .unwrap();
        assert!(failed_ids(&response).is_empty(), "{response:?}");
    }
    let client = Client::new(&engine);
    assert_eq!(
        client.ask_stock("kate", Some("shoe")).await.unwrap(),
        "shoe: 7"
    );
    assert_eq!(
        client.ask_stock("alex", Some("shoe#red")).await.unwrap(),
        "shoe#red: 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_fails_alone_and_a_bad_event_ends_in_the_dlq() {
    let (engine, ns) = engine().await;
    let client = Client::new(&engine);

    // A batch with one bad record: only that record is reported.
    let payload = batch(
        "us-west-2",
        &format!("moebi-{ns}-stock-add"),
        &[
            (
                "good-1",
                stock_add("us-west-2", "b-1", "store-1", "sock", 2),
            ),
            ("bad-1", stock_add("us-west-2", "b-2", "store-1", "sock", 0)),
            (
                "good-2",
                stock_add("us-west-2", "b-3", "store-1", "sock", 4),
            ),
        ],
    );
    let response = engine
        .invoke(&region("us-west-2"), Function::StockAdd, &payload)
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), ["bad-1"]);
    let reasons = response.failures();
    assert!(
        moebi::report(reasons[0].1).contains("detail.qty"),
        "{reasons:?}"
    );
    assert_eq!(
        client.ask_stock("alex", Some("sock")).await.unwrap(),
        "sock: 6"
    );

    // The same through the bus: the bad event is retried until SQS moves it to the DLQ.
    let bus = eventbridge("us-west-2").await;
    let entry = |detail: Value| {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("moebi")
            .detail_type("stock.add")
            .event_bus_name(format!("moebi-{ns}"))
            .detail(detail.to_string())
            .build()
    };
    let out = bus
        .put_events()
        .entries(entry(
            json!({"id": "poison-1", "store": "store-1", "product": "sock", "qty": 0}),
        ))
        .entries(entry(
            json!({"id": "fine-1", "store": "store-1", "product": "sock", "qty": 10}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_entry_count(), 0);
    let report = engine.run_until_idle().await.unwrap();
    let max = engine.topology().queues.max_receive_count;
    assert_eq!(report.failed, u64::from(max), "{report:?}");
    assert_eq!(report.dead, 1, "{report:?}");

    let dead = engine.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let d = &dead[0];
    assert_eq!(d.region.as_str(), "us-west-2");
    assert_eq!(d.queue, format!("moebi-{ns}-stock-add"));
    assert!(d.body.contains("poison-1"), "{d:?}");
    assert!(d.reason.contains("detail.qty"), "{d:?}");
    assert_eq!(d.receive_count, max);
    // Reading the dead letters leaves them where they are.
    assert_eq!(
        engine
            .dead_letters(Some(&region("us-west-2")))
            .await
            .unwrap(),
        dead
    );
    assert!(engine
        .dead_letters(Some(&region("eu-west-1")))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        client.ask_stock("alex", Some("sock")).await.unwrap(),
        "sock: 16"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_direct_invocation_is_tried_three_times() {
    let (engine, ns) = engine().await;
    // `zed` is no participant: moebi-reply (invoked by its rule, a queue in the emulator)
    // rejects the sender every time.
    let msg = Event::ChatSend(ChatSend {
        id: EventId::parse("zed-1").unwrap(),
        from: Participant::parse("zed").unwrap(),
        to: Participant::parse("moebi").unwrap(),
        text: Text::parse("boo").unwrap(),
        sent_at: Utc::now(),
        in_reply_to: None,
    });
    engine.publish(&region("eu-west-1"), &[msg]).await.unwrap();
    engine.run_until_idle().await.unwrap();
    let dead = engine.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].queue, format!("moebi-{ns}-moebi-reply"));
    assert_eq!(dead[0].receive_count, 3);
    assert!(dead[0].reason.contains("detail.from"), "{dead:?}");
    assert!(engine
        .inbox(&Participant::parse("moebi").unwrap())
        .await
        .unwrap()
        .is_empty());
}
