//! Watching the embedded engine run: `moebi trace ID` follows one event across regions,
//! `moebi stats` counts what each function did, the figures the Lambda functions emit as
//! metrics.

mod support;

use std::path::Path;

use serde_json::Value;

/// The id `moebi send` printed (`sent <id>`).
fn sent(state: &Path, from: &str, to: &str) -> String {
    let out = support::ok(state, &["send", from, to, "hi"]);
    out.trim()
        .strip_prefix("sent ")
        .expect("send prints its id")
        .to_owned()
}

fn trace(state: &Path, id: &str) -> Value {
    serde_json::from_str(&support::ok(state, &["trace", id, "--json"])).expect("trace is JSON")
}

/// Each step as `region step` (with the function for a handling step).
fn steps(trace: &Value) -> Vec<String> {
    trace["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| match s["function"].as_str() {
            Some(f) => format!(
                "{} {} {f}",
                s["region"].as_str().unwrap(),
                s["step"].as_str().unwrap()
            ),
            None => format!(
                "{} {}",
                s["region"].as_str().unwrap(),
                s["step"].as_str().unwrap()
            ),
        })
        .collect()
}

#[test]
fn a_message_to_another_region_is_traced_from_its_bus_to_its_handler() {
    let dir = tempfile::tempdir().unwrap();
    let id = sent(dir.path(), "alex", "kate");
    let t = trace(dir.path(), &id);
    assert_eq!(t["event_id"], id.as_str());
    assert_eq!(
        steps(&t),
        [
            "us-west-2 published",
            "us-west-2 forwarded",
            "us-east-1 arrived",
            "us-east-1 queued",
            "us-east-1 received",
            "us-east-1 applied chat-send",
            // The inbox entry reached the other regions: global tables' replication.
            "us-west-2 replicated",
            "eu-west-1 replicated",
        ]
    );
    assert!(t["steps"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("moebi-chat-to-us-east-1"));
    assert_eq!(t["caused"], serde_json::json!([]));
    let text = support::ok(dir.path(), &["trace", &id]);
    assert!(text.contains("handled by chat-send: applied"), "{text}");
    let unknown = support::moebi(dir.path(), &["trace", "no-such-event"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no event no-such-event"));
}

#[test]
fn a_bots_answer_is_traced_as_caused_by_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let id = sent(dir.path(), "alex", "moebi");
    let t = trace(dir.path(), &id);
    assert!(
        steps(&t).contains(&"eu-west-1 applied moebi-reply".to_owned()),
        "{t}"
    );
    let reply = &t["caused"][0];
    assert!(
        reply["event_id"]
            .as_str()
            .unwrap()
            .starts_with("moebi:reply:"),
        "{reply}"
    );
    assert_eq!(
        steps(reply),
        [
            "eu-west-1 published",
            "eu-west-1 forwarded",
            "us-west-2 arrived",
            "us-west-2 queued",
            "us-west-2 received",
            "us-west-2 applied chat-send",
            "us-east-1 replicated",
            "eu-west-1 replicated",
        ]
    );
    let demo = support::ok(dir.path(), &["demo", "--trace"]);
    assert!(
        demo.contains("forwarded rule moebi-chat-to-us-east-1 → us-east-1's bus"),
        "{demo}"
    );
    assert!(demo.contains("which caused:"), "{demo}");
}

#[test]
fn stats_count_what_each_function_did_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let batch = support::fixture("chat-send/sqs-batch.json");
    let mixed = support::fixture("bad/mixed-batch.json");
    for file in [&batch, &batch] {
        support::ok(dir.path(), &["replay", file.to_str().unwrap()]);
    }
    // Exits 2: three of its records fail, for good.
    support::moebi(dir.path(), &["replay", mixed.to_str().unwrap()]);
    let stats: Vec<Value> =
        serde_json::from_str(&support::ok(dir.path(), &["stats", "--json"])).unwrap();
    let of = |region: &str, function: &str| {
        stats
            .iter()
            .find(|s| s["region"] == region && s["function"] == function)
            .unwrap_or_else(|| panic!("no stats for {function} in {region}: {stats:?}"))
    };
    let chat = of("us-east-1", "chat-send");
    assert_eq!(
        (chat["invocations"].as_u64(), chat["records"].as_u64()),
        (Some(2), Some(6))
    );
    assert_eq!(
        (chat["handled"].as_u64(), chat["duplicates"].as_u64()),
        (Some(6), Some(3))
    );
    let add = of("us-west-2", "stock-add");
    assert_eq!(
        (
            add["records"].as_u64(),
            add["handled"].as_u64(),
            add["permanent"].as_u64(),
            add["retryable"].as_u64()
        ),
        (Some(6), Some(3), Some(3), Some(0))
    );
    assert!(add["latency_p99_ms"].as_f64().unwrap() > 0.0);
    let table = support::ok(dir.path(), &["stats"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("us-west-2") && l.contains("stock-add")),
        "{table}"
    );
}
