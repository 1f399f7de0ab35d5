//! The AWS engine through the real AWS SDK, against the AWS API emulator (moto's server mode).
//!
//! The emulator's URL comes from `MOEBI_EMULATOR_URL` (`make test` starts the emulator and sets
//! it). Without it these tests fail: they never pass silently. Each test works in its own random
//! namespace, so the tests run in parallel against one emulator.
#![cfg(feature = "aws")]

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde_json::{json, Value};

use moebi::client::Client;
use moebi::contract::{ChatSend, Event, EventId, Participant, Product, Region, Text};
use moebi::engine::aws::{AwsConfig, AwsEngine};
use moebi::engine::Engine;
use moebi::engine::Names;
use moebi::invoke::{Payload, Response};
use moebi::ports::InboxEntry;
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
        .http_client(moebi::store::http_client())
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
    json!({
        "version": "0",
        "id": EventId::random().as_str(),
        "detail-type": kind,
        "source": "moebi",
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": region,
        "resources": [],
        "detail": detail,
    })
}

/// An SQS batch as Lambda's event source mapping delivers it from `queue` in `region`.
fn batch(region: &str, queue: &str, records: &[(&str, Value)]) -> Payload {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("handle-{id}"),
                "body": body.to_string(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1714564800000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1714564800001"
                },
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{region}:123456789012:{queue}"),
                "awsRegion": region,
            })
        })
        .collect();
    Payload::parse(json!({ "Records": records })).expect("a batch parses")
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
async fn setup_is_idempotent() {
    let (engine, ns) = engine().await;
    // WHEN setup runs again over what exists THEN it succeeds and says what is there
    let summary = engine.setup().await.expect("a second setup succeeds");
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        assert!(
            summary.contains(&format!("{r}: table moebi-{ns}, bus moebi-{ns}")),
            "{summary}"
        );
    }
    assert!(
        summary.contains(&format!("moebi-{ns}-chat-send")),
        "{summary}"
    );
    // AND an empty system stays empty
    let report = engine.run_until_idle().await.unwrap();
    assert_eq!(report.handled + report.failed, 0);
    assert!(engine.dead_letters(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_without_setup_says_to_run_it() {
    let config = AwsConfig::for_cli(Some(emulator_url())).with_namespace(&namespace());
    let engine = AwsEngine::connect(config, Topology::builtin())
        .await
        .unwrap();
    let err = engine.run_until_idle().await.unwrap_err().to_string();
    assert!(
        err.contains("run `moebi --engine aws setup` first"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_namespace_is_a_configuration_error() {
    let config = AwsConfig {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        names: Names::namespaced("no spaces"),
    };
    let err = AwsEngine::connect(config, Topology::builtin())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.starts_with("configuration:"), "{err}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_never_grows_past_a_signed_64_bit_number() {
    let (engine, ns) = engine().await;
    let max = moebi::ports::MAX_SHARE;
    // GIVEN a share two units below the limit
    dynamo("us-west-2")
        .await
        .put_item()
        .table_name(format!("moebi-{ns}"))
        .item("pk", AttributeValue::S("stock".into()))
        .item("sk", AttributeValue::S("big#us-west-2".into()))
        .item("product", AttributeValue::S("big".into()))
        .item("region", AttributeValue::S("us-west-2".into()))
        .item("qty", AttributeValue::N((max - 2).to_string()))
        .send()
        .await
        .unwrap();
    let add = |id: &str, qty: i64| {
        Payload::parse(stock_add("us-west-2", id, "store-1", "big", qty)).unwrap()
    };
    // WHEN three more units come THEN they are refused as an overflow, which no retry can fix
    let response = engine
        .invoke(&region("us-west-2"), Function::StockAdd, &add("big-1", 3))
        .await
        .unwrap();
    let Response::Event(Err(e)) = &response else {
        panic!("an overflow fails the event: {response:?}")
    };
    assert!(e.to_string().contains("would exceed"), "{e}");
    assert!(e.is_permanent());
    // AND two units still fit, exactly
    let response = engine
        .invoke(&region("us-west-2"), Function::StockAdd, &add("big-2", 2))
        .await
        .unwrap();
    assert!(response.succeeded(), "{response:?}");
    assert_eq!(
        Client::new(&engine)
            .ask_stock("alex", Some("big"))
            .await
            .unwrap(),
        format!("big: {max}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_records_expire() {
    let (engine, ns) = engine().await;
    let client = Client::new(&engine);
    let added = client.add_stock("store-1", "hat", 1).await.unwrap();
    let sent = client.send("alex", "kate", "hi").await.unwrap();
    let week = 7 * 24 * 3600;
    for (region, key) in [
        ("us-west-2", format!("applied#stock-add#{added}")),
        ("us-east-1", format!("applied#chat-send#{sent}")),
    ] {
        let item = dynamo(region)
            .await
            .get_item()
            .table_name(format!("moebi-{ns}"))
            .key("pk", AttributeValue::S(key.clone()))
            .key("sk", AttributeValue::S("applied".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no record {key} in {region}"));
        let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        let expected = Utc::now().timestamp() + week;
        assert!(
            (expected - 120..=expected).contains(&expires),
            "{key}: expires_at {expires}, expected about {expected}"
        );
    }
}

/// What setup made in one region, read back from the emulator in the shape of
/// `moebi::engine::settings` (which `tests/drift.rs` compares with Terraform's plan): the
/// table's keys, TTL and stream, each queue's visibility timeout and redrive.
async fn observed(ns: &str, r: &str) -> Value {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let table = format!("moebi-{ns}");
    let db = dynamo(r).await;
    let described = db.describe_table().table_name(&table).send().await.unwrap();
    let t = described.table().unwrap();
    let key = |kind: &str| {
        t.key_schema()
            .iter()
            .find(|k| k.key_type().as_str() == kind)
            .map(|k| k.attribute_name().to_owned())
    };
    let ttl = db
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let q = sqs(r).await;
    let mut queues = serde_json::Map::new();
    for f in Function::ALL {
        let name = format!("moebi-{ns}-{}", f.name());
        let Ok(found) = q.get_queue_url().queue_name(&name).send().await else {
            continue;
        };
        let attrs = q
            .get_queue_attributes()
            .queue_url(found.queue_url().unwrap())
            .attribute_names(A::All)
            .send()
            .await
            .unwrap();
        let a = attrs.attributes().unwrap();
        let redrive: Value = serde_json::from_str(&a[&A::RedrivePolicy]).unwrap();
        let max_receives: u64 = match &redrive["maxReceiveCount"] {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_u64().unwrap(),
        };
        queues.insert(
            f.name().into(),
            json!({
                "visibility_timeout_seconds": a[&A::VisibilityTimeout].parse::<u64>().unwrap(),
                "max_receive_count": max_receives,
            }),
        );
    }
    json!({
        "table": {
            "hash_key": key("HASH"),
            "range_key": key("RANGE"),
            "ttl_attribute": ttl.time_to_live_description().and_then(|d| d.attribute_name()),
            "stream_view_type": t.stream_specification().and_then(|s| s.stream_view_type()).map(|v| v.as_str()),
        },
        "queues": queues,
    })
}

/// `moebi setup` and Terraform cannot drift: what setup creates in the emulator is what
/// `moebi::engine::settings` says, which `tests/drift.rs` holds equal to Terraform's plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_what_the_settings_say() {
    let (_engine, ns) = engine().await;
    let settings = moebi::engine::settings(&Topology::builtin());
    for r in ["us-west-2", "us-east-1", "eu-west-1"] {
        let want = &settings["regions"][r];
        // The emulator has no Lambda: a queue stands in for each function EventBridge invokes,
        // its maxReceiveCount the attempts Lambda makes, its visibility the wait between them.
        let mut queues = serde_json::Map::new();
        for (f, q) in want["queues"].as_object().unwrap() {
            queues.insert(
                f.clone(),
                json!({
                    "visibility_timeout_seconds": q["visibility_timeout_seconds"],
                    "max_receive_count": q["max_receive_count"],
                }),
            );
        }
        for (f, a) in want["async"].as_object().unwrap() {
            queues.insert(
                f.clone(),
                json!({
                    "visibility_timeout_seconds": moebi::engine::pump::ASYNC_RETRY_SECONDS,
                    "max_receive_count": a["attempts"],
                }),
            );
        }
        let expected = json!({ "table": want["table"], "queues": queues });
        assert_eq!(observed(&ns, r).await, expected, "setup in {r}");
    }
}
