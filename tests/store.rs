//! What the store accepts it reads back, and one unreadable entry never hides the others.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use moebi::contract::{Event, EventId, Participant, Product, Quantity, Region, StockAdd, Store};
use moebi::engine::local::LocalEngine;
use moebi::engine::Engine;
use moebi::topology::Topology;

#[test]
fn a_time_the_store_could_not_read_back_is_refused_and_the_inbox_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    for (i, sent_at) in ["+10000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z"]
        .iter()
        .enumerate()
    {
        let mut event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(support::fixture("chat-send/eventbridge.json")).unwrap(),
        )
        .unwrap();
        event["detail"]["sent_at"] = (*sent_at).into();
        event["detail"]["id"] = format!("far-{i}").into();
        event["region"] = "us-east-1".into();
        event["detail"]["to"] = "kate".into();
        event["detail"]["from"] = "alex".into();
        let file = dir.path().join(format!("far-{i}.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let out = support::moebi(dir.path(), &["replay", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{sent_at} is refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("field `detail.sent_at`: must be from year 1 to 9999"),
            "{err}"
        );
    }
    support::ok(dir.path(), &["send", "alex", "kate", "still readable"]);
    assert_eq!(
        support::ok(dir.path(), &["inbox", "kate"]),
        "alex: still readable\n"
    );
}

#[tokio::test]
async fn one_unreadable_inbox_entry_never_hides_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::open(dir.path(), Topology::builtin())
        .await
        .unwrap();
    let client = moebi::client::Client::new(&engine);
    client.send("alex", "kate", "before").await.unwrap();
    // GIVEN an entry nobody could read (written behind moebi's back)
    engine
        .store(&Region::parse("us-east-1").unwrap())
        .unwrap()
        .client()
        .put_item()
        .table_name("moebi")
        .item("pk", AttributeValue::S("inbox#kate".into()))
        .item(
            "sk",
            AttributeValue::S("2026-01-01T00:00:00.000000Z#broken".into()),
        )
        .item("id", AttributeValue::S("broken".into()))
        .item("sent_at", AttributeValue::S("not a time".into()))
        .send()
        .await
        .unwrap();
    client.send("alex", "kate", "after").await.unwrap();
    // THEN kate still reads every other entry
    let texts: Vec<String> = engine
        .inbox(&Participant::parse("kate").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(texts, ["before", "after"]);
}

#[tokio::test]
async fn an_add_that_ends_in_the_dlq_is_reported_as_failed_not_added() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::open(dir.path(), Topology::builtin())
        .await
        .unwrap();
    // GIVEN event id `taken`, applied by stock-add before for other content (its idempotency
    // record's digest is another event's): the ledger takes any add, so only the store can
    // refuse one
    let west = Region::parse("us-west-2").unwrap();
    engine
        .store(&west)
        .unwrap()
        .client()
        .put_item()
        .table_name("moebi")
        .item("pk", AttributeValue::S("applied#stock-add#taken".into()))
        .item("sk", AttributeValue::S("applied".into()))
        .item("digest", AttributeValue::S("another event's".into()))
        .send()
        .await
        .unwrap();
    // WHEN store-1 adds under that id THEN the command says its event failed, and why
    let add = StockAdd {
        id: EventId::parse("taken").unwrap(),
        store: Store::parse("store-1").unwrap(),
        product: Product::parse("nike").unwrap(),
        qty: Quantity::new(2).unwrap(),
    };
    engine
        .publish(&west, &[Event::StockAdd(add)])
        .await
        .unwrap();
    let client = moebi::client::Client::new(&engine);
    let err = client
        .settle(&EventId::parse("taken").unwrap())
        .await
        .unwrap_err();
    let message = moebi::report(&err);
    assert!(message.contains("set aside as a dead letter"), "{message}");
    assert!(message.contains("for other content"), "{message}");
    // AND nothing was added
    assert_eq!(
        client.ask_stock("alex", Some("nike")).await.unwrap(),
        "there is no product nike"
    );
}
