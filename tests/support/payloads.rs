//! Events and Lambda payloads as AWS builds them, for the tests that hand a function a batch or
//! an engine an event.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use moebi::contract::{
    ChatSend, Event, EventId, Participant, Product, Quantity, Region, StockAdd, Store, Text,
};
use serde_json::{json, Value};

/// `chat.send` `id` from `from` to `to`, sent now.
pub fn chat(id: &str, from: &str, to: &str, text: &str) -> Event {
    Event::ChatSend(ChatSend {
        id: EventId::parse(id).unwrap(),
        from: Participant::parse(from).unwrap(),
        to: Participant::parse(to).unwrap(),
        text: Text::parse(text).unwrap(),
        sent_at: Utc::now(),
        in_reply_to: None,
    })
}

/// `stock.add` `id`: `qty` of `product` by `store`.
pub fn stock_add(id: &str, store: &str, product: &str, qty: u64) -> Event {
    Event::StockAdd(StockAdd {
        id: EventId::parse(id).unwrap(),
        store: Store::parse(store).unwrap(),
        product: Product::parse(product).unwrap(),
        qty: Quantity::new(qty).unwrap(),
    })
}

/// The EventBridge envelope `id` of a `kind` event from `region`, as a rule delivers it.
pub fn envelope(region: &str, id: &str, kind: &str, detail: Value) -> Value {
    json!({
        "version": "0", "id": id, "detail-type": kind, "source": "moebi",
        "account": "000000000000", "time": "2026-11-22T10:00:00Z", "region": region,
        "resources": [], "detail": detail,
    })
}

/// The SQS batch Lambda's event source mapping on `queue` in `region` delivers: one record
/// per `(message id, body)`, each received once.
pub fn sqs_batch(region: &str, queue: &str, records: &[(String, Value)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"),
                "body": body.to_string(), "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{region}:000000000000:{queue}"),
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// An SQS batch of stock adds by store-2 (us-east-1), one per `(event id, product, qty)`,
/// message ids `m0`, `m1`…
pub fn stock_add_batch(adds: &[(&str, &str, u64)]) -> SqsEvent {
    let east = Region::parse("us-east-1").unwrap();
    let mut event = SqsEvent::default();
    event.records = adds
        .iter()
        .enumerate()
        .map(|(i, (id, product, qty))| {
            let add = stock_add(id, "store-2", product, *qty);
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(moebi::engine::local::envelope(&east, &add).to_string());
            m
        })
        .collect();
    event
}
