//! Every fixture in `events/` replayed through `moebi replay`, as Lambda would invoke the
//! function wired for it: good ones apply once, bad records fail alone and are named.

mod support;

use std::path::Path;

use support::{fixture, message_ids, moebi, ok};

fn replay(state: &Path, file: &str) -> (i32, serde_json::Value, String) {
    let path = fixture(file);
    let out = moebi(state, &["replay", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let response = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        response,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn failures(response: &serde_json::Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("a batch response")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

fn status(state: &Path, product: &str, asker: &str) -> String {
    ok(state, &["stock", "status", product, "--as", asker])
        .trim()
        .to_owned()
}

/// What each good fixture must change, observed through the CLI.
fn effect(state: &Path, file: &str) -> String {
    match file {
        "chat-send/sqs-batch.json" | "chat-send/eventbridge.json" => {
            ok(state, &["inbox", "kate"]) + &ok(state, &["inbox", "alex"])
        }
        "moebi-reply/sqs-batch.json" | "moebi-reply/eventbridge.json" => {
            ok(state, &["inbox", "moebi"])
                + &ok(state, &["inbox", "alex"])
                + &ok(state, &["inbox", "kate"])
        }
        "stock-add/sqs-batch.json" | "stock-add/eventbridge.json" => {
            ok(state, &["stock", "status", "--as", "kate"])
        }
        "stock-status/sqs-batch.json" => ok(state, &["inbox", "kate"]),
        "stock-status/eventbridge.json" => ok(state, &["inbox", "alex"]),
        other => panic!("no effect known for {other}"),
    }
}

const GOOD: [&str; 8] = [
    "chat-send/sqs-batch.json",
    "chat-send/eventbridge.json",
    "moebi-reply/sqs-batch.json",
    "moebi-reply/eventbridge.json",
    "stock-add/sqs-batch.json",
    "stock-add/eventbridge.json",
    "stock-status/sqs-batch.json",
    "stock-status/eventbridge.json",
];

#[test]
fn every_good_fixture_applies_and_a_second_replay_changes_nothing() {
    for file in GOOD {
        let dir = tempfile::tempdir().unwrap();
        let before = effect(dir.path(), file);
        let (code, response, stderr) = replay(dir.path(), file);
        assert_eq!(code, 0, "{file}: {stderr}");
        if file.ends_with("sqs-batch.json") {
            assert!(failures(&response).is_empty(), "{file}: {response}");
        } else {
            assert_eq!(response["outcome"], "applied", "{file}");
        }
        let once = effect(dir.path(), file);
        assert_ne!(once, before, "{file} changed nothing");
        let (code, _, stderr) = replay(dir.path(), file);
        assert_eq!(code, 0, "{file} again: {stderr}");
        assert_eq!(effect(dir.path(), file), once, "{file} applied twice");
    }
}

#[test]
fn fixture_effects_are_the_ones_expected() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    replay(state, "stock-add/sqs-batch.json");
    replay(state, "stock-add/eventbridge.json");
    assert_eq!(status(state, "nike", "kate"), "nike: 35");
    assert_eq!(status(state, "adidas", "alex"), "adidas: 12");
    assert_eq!(status(state, "puma", "kate"), "puma: 7");
    replay(state, "stock-status/sqs-batch.json");
    let kate = ok(state, &["inbox", "kate"]);
    assert!(
        kate.contains("stock: nike: 35  (reply to status-b1)"),
        "{kate}"
    );
    assert!(
        kate.contains("stock: adidas: 12, nike: 35, puma: 7  (reply to status-b2)"),
        "{kate}"
    );

    replay(state, "moebi-reply/sqs-batch.json");
    assert_eq!(ok(state, &["inbox", "moebi"]), "alex: hi\nkate: good dog\n");
    assert!(ok(state, &["inbox", "alex"]).ends_with("\nmoebi: chicken?  (reply to reply-b1)\n"));
    assert!(ok(state, &["inbox", "kate"]).contains("moebi: chicken?  (reply to reply-b2)"));
}

/// Each bad fixture: the record whose event is bad, and words its error must contain.
const BAD: [(&str, &str, &str); 11] = [
    (
        "bad/broken-json.json",
        "\"x1\"",
        "malformed payload: not JSON",
    ),
    (
        "bad/unknown-kind.json",
        "bad-kind",
        "field `detail-type`: unknown kind \"chat.shout\"",
    ),
    (
        "bad/missing-field.json",
        "bad-missing",
        "field `detail.text`: is required",
    ),
    (
        "bad/wrong-type.json",
        "bad-type",
        "field `detail.qty`: invalid type: string \"five\"",
    ),
    (
        "bad/empty-text.json",
        "bad-empty",
        "field `detail.text`: must not be empty",
    ),
    (
        "bad/oversized-text.json",
        "bad-long",
        "field `detail.text`: must be at most 4096 characters, got 4100",
    ),
    (
        "bad/zero-qty.json",
        "bad-zero",
        "field `detail.qty`: must be at least 1, got 0",
    ),
    (
        "bad/negative-qty.json",
        "bad-negative",
        "field `detail.qty`: must be at least 1, got -5",
    ),
    (
        "bad/huge-qty.json",
        "bad-huge",
        "field `detail.qty`: must be a whole number from 1 to 1000000",
    ),
    (
        "bad/unknown-participant.json",
        "bad-who",
        "field `detail.to`: unknown participant \"bob\"",
    ),
    (
        "bad/mixed-batch.json",
        "mix-2",
        "field `detail.qty`: must be at least 1, got 0",
    ),
];

#[test]
fn each_bad_record_fails_alone_and_is_named() {
    for (file, marker, message) in BAD {
        let dir = tempfile::tempdir().unwrap();
        let (code, response, stderr) = replay(dir.path(), file);
        assert_eq!(code, 2, "{file}: {stderr}");
        let bad = message_ids(file, |body| body.contains(marker));
        assert_eq!(bad.len(), 1, "{file}: marker {marker} must pick one record");
        let failed = failures(&response);
        assert!(
            failed.contains(&bad[0]),
            "{file}: {failed:?} should list {}",
            bad[0]
        );
        assert!(
            stderr.contains(&format!("record {} failed: {message}", bad[0])),
            "{file}: {stderr}"
        );
        if file != "bad/mixed-batch.json" {
            assert_eq!(
                failed.len(),
                1,
                "{file}: only the bad record fails: {response}"
            );
            // The good records around it applied.
            let effect = if file.contains("qty") || file.contains("wrong-type") {
                status(dir.path(), "nike", "kate")
            } else {
                ok(dir.path(), &["inbox", "kate"])
            };
            assert!(
                effect == "nike: 2" || effect == "alex: still here\nalex: still here\n",
                "{file}: {effect}"
            );
        }
    }
}

#[test]
fn a_mixed_batch_applies_its_good_records_and_lists_exactly_its_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (code, response, stderr) = replay(dir.path(), "bad/mixed-batch.json");
    assert_eq!(code, 2);
    let bad = message_ids("bad/mixed-batch.json", |b| {
        ["mix-2", "mix-4", "mix-5"].iter().any(|m| b.contains(m))
    });
    assert_eq!(failures(&response), bad);
    assert!(
        stderr.contains("field `detail.store`: unknown store \"store-9\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("field `detail.product`: must be at most 64 characters, got 65"),
        "{stderr}"
    );
    assert_eq!(status(dir.path(), "nike", "kate"), "nike: 10");
    assert_eq!(status(dir.path(), "reebok", "kate"), "reebok: 5");
    // Replaying it again fails the same records and applies nothing more.
    let (_, again, _) = replay(dir.path(), "bad/mixed-batch.json");
    assert_eq!(failures(&again), bad);
    assert_eq!(status(dir.path(), "nike", "kate"), "nike: 10");
}

#[test]
fn a_bad_single_event_fails_with_exit_2_and_a_broken_file_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, response, stderr) = replay(dir.path(), "bad/eventbridge-unknown-asker.json");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        response["errorMessage"],
        "field `detail.asker`: unknown participant \"zoe\""
    );
    let (code, _, stderr) = replay(dir.path(), "bad/not-a-payload.json");
    assert_eq!(code, 1);
    assert!(stderr.contains("not a JSON payload"), "{stderr}");
    let out = moebi(dir.path(), &["replay", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /no/such/file.json"));
    let out = moebi(
        dir.path(),
        &["replay", "--function", "chat-shout", "x.json"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap reports usage errors with 2"
    );
}

#[test]
fn function_flag_overrides_the_route_and_a_wrong_kind_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("stock-add/eventbridge.json");
    let out = moebi(
        dir.path(),
        &["replay", "--function", "chat-send", path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("function chat-send does not handle stock.add"));
}

#[test]
fn every_fixture_is_a_payload_lambda_delivers() {
    // Round-trip through aws_lambda_events' own types, as the runtime deserializes them.
    for entry in walk(&support::root().join("events")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        if entry.ends_with("bad/not-a-payload.json") {
            assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        if value.get("Records").is_some() {
            let batch: aws_lambda_events::event::sqs::SqsEvent =
                serde_json::from_value(value.clone()).unwrap();
            assert!(
                !batch.records.is_empty() && batch.records.len() <= 10,
                "{entry:?}"
            );
            for r in &batch.records {
                assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
                let arn = r.event_source_arn.as_deref().unwrap();
                assert!(arn.ends_with(&format!(":{}", arn.rsplit(':').next().unwrap())));
                assert_eq!(arn.split(':').nth(3), r.aws_region.as_deref(), "{entry:?}");
            }
        } else {
            let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
                serde_json::from_value(value).unwrap();
            assert_eq!(event.source, "moebi");
            assert!(event.region.is_some(), "{entry:?}");
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
