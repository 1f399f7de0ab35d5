//! Property tests of the decoders: random JSON, and valid events and batches mutated at a random
//! place, through `Payload::parse`, `Event::from_envelope` and a function invoked on the batch
//! (the replay path). Nothing panics, and every error names the field (or the path) at fault.
//!
//! Bounded here (proptest's 256 cases per property); `make fuzz` runs many more
//! (`PROPTEST_CASES`). A failure prints the input, shrunk, and proptest keeps its seed under
//! `tests/decoders.proptest-regressions`, which replays it first on every later run.

mod support;

use moebi::contract::Event;
use moebi::invoke::{Payload, Response};
use moebi::topology::Function;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        "[a-z0-9:+-]{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_-]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid envelope of each kind.
fn envelopes() -> Vec<Value> {
    let envelope = |kind: &str, detail: Value| {
        json!({
            "version": "0", "id": "e-1", "detail-type": kind, "source": "moebi",
            "account": "000000000000", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail,
        })
    };
    vec![
        envelope(
            "chat.send",
            json!({"id": "m-1", "from": "alex", "to": "kate", "text": "hi",
                   "sent_at": "2026-11-22T10:00:00Z"}),
        ),
        envelope(
            "stock.add",
            json!({"id": "a-1", "store": "store-2", "product": "nike", "qty": 3}),
        ),
        envelope(
            "stock.status",
            json!({"id": "s-1", "asker": "kate", "product": "nike"}),
        ),
    ]
}

/// Every path to a value inside `v` (object keys and array indices).
fn paths(v: &Value, here: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            let mut p = here.clone();
            p.push(k.clone());
            paths(c, p, out);
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
            let mut p = here.clone();
            p.push(i.to_string());
            paths(c, p, out);
        }),
        _ => {}
    }
}

/// `v` with the value at the `pick`-th path replaced by `with`, or removed when `with` is
/// `None` (the root is replaced, never removed).
fn mutate(mut v: Value, pick: usize, with: Option<Value>) -> Value {
    let mut all = Vec::new();
    paths(&v, Vec::new(), &mut all);
    let path = &all[pick % all.len()];
    let Some((last, parent)) = path.split_last() else {
        return with.unwrap_or(Value::Null);
    };
    let mut at = &mut v;
    for key in parent {
        at = match at {
            Value::Object(m) => m.get_mut(key).unwrap(),
            Value::Array(a) => &mut a[key.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    match (at, with) {
        (Value::Object(m), None) => {
            m.remove(last);
        }
        (Value::Object(m), Some(w)) => {
            m.insert(last.clone(), w);
        }
        (Value::Array(a), None) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        (Value::Array(a), Some(w)) => a[last.parse::<usize>().unwrap()] = w,
        _ => unreachable!(),
    }
    v
}

/// What an error of a decoder must say: the field, or the path, at fault.
fn names_a_field(message: &str) -> bool {
    message.contains("field `") || message.contains("at `")
}

/// An SQS batch of `bodies`, as an event source mapping builds it.
fn batch(bodies: &[Value]) -> Value {
    let records: Vec<(String, Value)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("m{i}"), b.clone()))
        .collect();
    support::payloads::sqs_batch("us-east-1", "moebi-stock-add", &records)
}

/// Failures are kept beside this file (`tests/decoders.proptest-regressions`) and run first.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(ProptestConfig::default().cases))]

    #[test]
    fn random_json_never_panics_and_errors_name_a_field(v in any_json()) {
        if let Err(e) = Event::from_envelope(&v) {
            let m = e.to_string();
            prop_assert!(!v.is_object() || names_a_field(&m), "{m}");
        }
        let _ = Payload::parse(v);
    }

    #[test]
    fn a_mutated_event_is_read_or_refused_by_name(
        which in 0usize..3, pick in any::<usize>(), with in prop::option::of(any_json())
    ) {
        let v = mutate(envelopes()[which].clone(), pick, with);
        if let Err(e) = Event::from_envelope(&v) {
            let m = e.to_string();
            prop_assert!(!v.is_object() || names_a_field(&m), "{m} for {v}");
        }
    }

    #[test]
    fn a_mutated_batch_is_read_or_refused_by_path(
        pick in any::<usize>(), with in prop::option::of(any_json())
    ) {
        let v = mutate(batch(&envelopes()), pick, with);
        if let Err(e) = Payload::parse(v.clone()) {
            let m = e.to_string();
            prop_assert!(names_a_field(&m) || !v.get("Records").is_some_and(Value::is_array), "{m} for {v}");
        }
    }
}

/// The replay path: a batch with one mutated record, invoked on the embedded engine. The other
/// records succeed, and a failure names its field. A tenth of the cases, at most 500: each
/// writes the store.
#[test]
fn a_mutated_record_fails_alone_and_named() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = config((ProptestConfig::default().cases / 10).clamp(1, 500));
    let dir = tempfile::tempdir().unwrap();
    let engine = runtime
        .block_on(moebi::engine::local::LocalEngine::open(
            dir.path(),
            moebi::topology::Topology::builtin(),
        ))
        .unwrap();
    let add = |id: &str| {
        let mut e = envelopes()[1].clone();
        e["detail"]["id"] = json!(id);
        e
    };
    proptest!(config, |(n in any::<u32>(), pick in any::<usize>(), with in prop::option::of(any_json()))| {
        let bad = mutate(add(&format!("x-{n}")), pick, with);
        let bodies = [add(&format!("g-{n}")), bad, add(&format!("h-{n}"))];
        let payload = Payload::parse(batch(&bodies)).unwrap();
        let region = moebi::contract::Region::parse("us-east-1").unwrap();
        let response = runtime
            .block_on(moebi::engine::Engine::invoke(&engine, &region, Function::StockAdd, &payload))
            .unwrap();
        prop_assert!(matches!(response, Response::Batch(_)));
        let failures = response.failures();
        prop_assert!(failures.len() <= 1, "{failures:?}");
        for (id, error) in &failures {
            prop_assert_eq!(*id, "m1");
            let reason = moebi::report(*error);
            prop_assert!(names_a_field(&reason), "{}", reason);
        }
    });
}
