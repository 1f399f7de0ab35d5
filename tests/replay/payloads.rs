//! Every fixture is a payload Lambda delivers: it parses as the aws_lambda_events type of its
//! delivery, and writes back to itself.

use std::path::Path;

use serde_json::Value;

use crate::support::fixture;

/// Where each fixture is delivered: the region, and the function whose queue an SQS batch
/// comes from.
fn delivered_to(file: &str) -> (&'static str, &'static str) {
    match file {
        "chat-send/sqs-batch.json" => ("us-east-1", "chat-send"),
        "chat-send/eventbridge.json" => ("us-west-2", "chat-send"),
        "moebi-reply/sqs-batch.json" | "moebi-reply/eventbridge.json" => {
            ("eu-west-1", "moebi-reply")
        }
        "stock-add/sqs-batch.json" => ("us-west-2", "stock-add"),
        "stock-add/eventbridge.json" => ("eu-west-1", "stock-add"),
        "stock-status/sqs-batch.json" | "bad/eventbridge-unknown-asker.json" => {
            ("us-east-1", "stock-status")
        }
        "stock-status/eventbridge.json" => ("us-west-2", "stock-status"),
        "bad/broken-json.json"
        | "bad/empty-text.json"
        | "bad/missing-field.json"
        | "bad/oversized-text.json"
        | "bad/unknown-kind.json"
        | "bad/unknown-participant.json" => ("us-east-1", "chat-send"),
        "bad/huge-qty.json"
        | "bad/mixed-batch.json"
        | "bad/negative-qty.json"
        | "bad/wrong-type.json"
        | "bad/zero-qty.json" => ("us-west-2", "stock-add"),
        other => panic!("no delivery known for fixture {other}"),
    }
}

/// Parses `original` into `T`, serializes it back and parses that again, as aws_lambda_events'
/// own tests do: both typed values must be equal, and the JSON written back must be the
/// original (less the `null`s `T` writes for absent optional fields), so no field was dropped.
fn round_trip<T>(original: &Value, what: &str) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let typed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{what}: not a {}: {e}", std::any::type_name::<T>()));
    let written = serde_json::to_string(&typed).unwrap();
    let reparsed: T = serde_json::from_str(&written).unwrap();
    assert_eq!(
        typed, reparsed,
        "{what}: the typed value changed on a round-trip"
    );
    let mut back: Value = serde_json::from_str(&written).unwrap();
    drop_nulls(&mut back);
    assert_eq!(
        &back, original,
        "{what}: the round-trip lost or changed fields"
    );
    typed
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[test]
fn every_fixture_is_a_payload_lambda_delivers() {
    use aws_lambda_events::event::{eventbridge::EventBridgeEvent, sqs::SqsEvent};
    let events = fixture("");
    let files = walk(&events);
    assert_eq!(files.len(), 31, "{files:?}");
    for entry in files {
        let file = entry.strip_prefix(&events).unwrap().to_str().unwrap();
        if file.starts_with("front-door/") {
            continue; // HTTP API requests: tests/front_door.rs
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        if file == "bad/not-a-payload.json" {
            assert!(serde_json::from_str::<Value>(&text).is_err());
            continue;
        }
        let value: Value = serde_json::from_str(&text).unwrap();
        let (region, function) = delivered_to(file);
        if value.get("Records").is_some() {
            let batch: SqsEvent = round_trip(&value, file);
            assert!(
                !batch.records.is_empty() && batch.records.len() <= 10,
                "{file}"
            );
            let arn = format!("arn:aws:sqs:{region}:123456789012:moebi-{function}");
            for r in &batch.records {
                assert_eq!(r.event_source.as_deref(), Some("aws:sqs"), "{file}");
                assert_eq!(r.event_source_arn.as_deref(), Some(arn.as_str()), "{file}");
                assert_eq!(r.aws_region.as_deref(), Some(region), "{file}");
                // A body that is JSON is the EventBridge event the rule put on the queue.
                let body = r.body.as_deref().expect("a body");
                if let Ok(body) = serde_json::from_str::<Value>(body) {
                    let event: EventBridgeEvent<Value> = round_trip(&body, file);
                    assert_eq!(event.source, "moebi", "{file}");
                } else {
                    assert_eq!(file, "bad/broken-json.json", "only that body is broken");
                }
            }
        } else {
            let event: EventBridgeEvent<Value> = round_trip(&value, file);
            assert_eq!(event.source, "moebi", "{file}");
            assert_eq!(event.region.as_deref(), Some(region), "{file}");
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    out
}
