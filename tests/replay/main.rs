//! Every fixture in `events/` replayed through `moebi replay`, as Lambda would invoke the
//! function wired for it: good ones apply once, bad records fail alone and are named.

#[path = "../support/mod.rs"]
mod support;

mod errors;
mod payloads;

use std::path::Path;

use serde_json::Value;
use support::{fixture, message_ids, moebi, ok};

fn replay(state: &Path, file: &str) -> (i32, Value, String) {
    let path = fixture(file);
    let out = moebi(state, &["replay", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let response = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        response,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("a batch response")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Asks the stock on a copy of `state`: `moebi stock status` is itself a question whose answer
/// lands in the asker's inbox, and the inboxes under test must not change by looking.
fn ask_stock(state: &Path, args: &[&str]) -> String {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(state, copy.path());
    ok(copy.path(), args)
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn status(state: &Path, product: &str, asker: &str) -> String {
    ask_stock(state, &["stock", "status", product, "--as", asker])
        .trim()
        .to_owned()
}

/// The stderr line `moebi replay` prints for a failed record of `file`.
fn record_failed(file: &str, message_id: &str, message: &str) -> String {
    format!(
        "{}: record {message_id} failed: {message}",
        fixture(file).display()
    )
}

/// Everything a fixture can change, observed through the CLI: the three inboxes and the stock.
#[derive(Debug, PartialEq)]
struct Observed {
    kate: String,
    alex: String,
    moebi: String,
    stock: String,
}

fn observe(state: &Path) -> Observed {
    Observed {
        kate: ok(state, &["inbox", "kate"]),
        alex: ok(state, &["inbox", "alex"]),
        moebi: ok(state, &["inbox", "moebi"]),
        stock: ask_stock(state, &["stock", "status", "--as", "kate"]),
    }
}

const EMPTY_STOCK: &str = "the stock is empty\n";

/// A state with these inboxes (`""` when empty) and this stock (`EMPTY_STOCK` when empty).
fn observed(kate: &str, alex: &str, moebi: &str, stock: &str) -> Observed {
    Observed {
        kate: kate.into(),
        alex: alex.into(),
        moebi: moebi.into(),
        stock: stock.into(),
    }
}

/// Exactly what each good fixture leaves in a fresh state (see the fixtures under `events/`).
fn effect(file: &str) -> Observed {
    match file {
        // alex → kate twice, moebi → kate: all in kate's inbox, in batch order.
        "chat-send/sqs-batch.json" => observed(
            "alex: hi\nalex: are you there?\nmoebi: chicken?\n",
            "",
            "",
            EMPTY_STOCK,
        ),
        // kate → alex.
        "chat-send/eventbridge.json" => observed("", "kate: how are you?\n", "", EMPTY_STOCK),
        // alex and kate write to moebi; each gets moebi's answer.
        "moebi-reply/sqs-batch.json" => observed(
            "moebi: chicken?  (reply to reply-b2)\n",
            "moebi: chicken?  (reply to reply-b1)\n",
            "alex: hi\nkate: good dog\n",
            EMPTY_STOCK,
        ),
        // alex writes to moebi.
        "moebi-reply/eventbridge.json" => observed(
            "",
            "moebi: chicken?  (reply to reply-e1)\n",
            "alex: who is a good dog?\n",
            EMPTY_STOCK,
        ),
        // store-1: nike 30 + 5, adidas 12.
        "stock-add/sqs-batch.json" => observed("", "", "", "adidas: 12, nike: 35\n"),
        // store-3: puma 7.
        "stock-add/eventbridge.json" => observed("", "", "", "puma: 7\n"),
        // kate asks about nike, then about everything, and the stock is empty.
        "stock-status/sqs-batch.json" => observed(
            "stock: there is no product nike  (reply to status-b1)\n\
             stock: the stock is empty  (reply to status-b2)\n",
            "",
            "",
            EMPTY_STOCK,
        ),
        // alex asks about puma.
        "stock-status/eventbridge.json" => observed(
            "",
            "stock: there is no product puma  (reply to status-e1)\n",
            "",
            EMPTY_STOCK,
        ),
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
        assert_eq!(
            observe(dir.path()),
            observed("", "", "", EMPTY_STOCK),
            "{file}"
        );
        let (code, response, stderr) = replay(dir.path(), file);
        assert_eq!(code, 0, "{file}: {stderr}");
        if file.ends_with("sqs-batch.json") {
            assert!(failures(&response).is_empty(), "{file}: {response}");
        } else {
            assert_eq!(response["outcome"], "applied", "{file}");
        }
        assert_eq!(observe(dir.path()), effect(file), "{file}");
        let (code, _, stderr) = replay(dir.path(), file);
        assert_eq!(code, 0, "{file} again: {stderr}");
        assert_eq!(observe(dir.path()), effect(file), "{file} applied twice");
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
    let kate = "stock: nike: 35  (reply to status-b1)\n\
                stock: adidas: 12, nike: 35, puma: 7  (reply to status-b2)\n";
    assert_eq!(ok(state, &["inbox", "kate"]), kate);
    assert_eq!(ok(state, &["inbox", "alex"]), "");

    replay(state, "moebi-reply/sqs-batch.json");
    assert_eq!(ok(state, &["inbox", "moebi"]), "alex: hi\nkate: good dog\n");
    assert_eq!(
        ok(state, &["inbox", "alex"]),
        "moebi: chicken?  (reply to reply-b1)\n"
    );
    assert_eq!(
        ok(state, &["inbox", "kate"]),
        format!("{kate}moebi: chicken?  (reply to reply-b2)\n")
    );
}

/// What the good records of a bad fixture leave: two chat messages alex → kate…
const CHAT_LEFT: (&str, &str) = ("alex: still here\nalex: still here\n", EMPTY_STOCK);
/// …or two stock additions of 1 nike to store-1.
const STOCK_LEFT: (&str, &str) = ("", "nike: 2\n");

/// Each bad fixture: the record whose event is bad, its whole error, and (kate's inbox, stock)
/// after the good records around it applied.
const BAD: [(&str, &str, &str, (&str, &str)); 11] = [
    (
        "bad/broken-json.json",
        "\"x1\"",
        "field `body`: not JSON: EOF while parsing an object at line 1 column 91",
        CHAT_LEFT,
    ),
    (
        "bad/unknown-kind.json",
        "bad-kind",
        "field `detail-type`: unknown kind \"chat.shout\" \
         (expected one of chat.send, stock.add, stock.status)",
        CHAT_LEFT,
    ),
    (
        "bad/missing-field.json",
        "bad-missing",
        "field `detail.text`: is required",
        CHAT_LEFT,
    ),
    (
        "bad/wrong-type.json",
        "bad-type",
        "field `detail.qty`: invalid type: string \"five\", expected a JSON number",
        STOCK_LEFT,
    ),
    (
        "bad/empty-text.json",
        "bad-empty",
        "field `detail.text`: must not be empty",
        CHAT_LEFT,
    ),
    (
        "bad/oversized-text.json",
        "bad-long",
        "field `detail.text`: must be at most 4096 characters, got 4100",
        CHAT_LEFT,
    ),
    (
        "bad/zero-qty.json",
        "bad-zero",
        "field `detail.qty`: must be at least 1, got 0",
        STOCK_LEFT,
    ),
    (
        "bad/negative-qty.json",
        "bad-negative",
        "field `detail.qty`: must be at least 1, got -5",
        STOCK_LEFT,
    ),
    (
        "bad/huge-qty.json",
        "bad-huge",
        "field `detail.qty`: must be a whole number from 1 to 1000000, got 1e+20",
        STOCK_LEFT,
    ),
    (
        "bad/unknown-participant.json",
        "bad-who",
        "field `detail.to`: unknown participant \"bob\"",
        CHAT_LEFT,
    ),
    (
        "bad/mixed-batch.json",
        "mix-2",
        "field `detail.qty`: must be at least 1, got 0",
        ("", "nike: 10, reebok: 5\n"),
    ),
];

#[test]
fn each_bad_record_fails_alone_and_is_named() {
    for (file, marker, message, (kate, stock)) in BAD {
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
        let line = record_failed(file, &bad[0], message);
        if file == "bad/mixed-batch.json" {
            assert!(stderr.lines().any(|l| l == line), "{file}: {stderr}");
        } else {
            assert_eq!(failed, bad, "{file}: only the bad record fails: {response}");
            assert_eq!(stderr, format!("{line}\n"), "{file}");
        }
        // The good records around it applied, and only they.
        assert_eq!(observe(dir.path()), observed(kate, "", "", stock), "{file}");
    }
}

#[test]
fn a_mixed_batch_applies_its_good_records_and_lists_exactly_its_bad_ones() {
    let file = "bad/mixed-batch.json";
    let dir = tempfile::tempdir().unwrap();
    let (code, response, stderr) = replay(dir.path(), file);
    assert_eq!(code, 2);
    let bad = message_ids(file, |b| {
        ["mix-2", "mix-4", "mix-5"].iter().any(|m| b.contains(m))
    });
    assert_eq!(failures(&response), bad);
    let lines = [
        record_failed(
            file,
            &bad[0],
            "field `detail.qty`: must be at least 1, got 0",
        ),
        record_failed(
            file,
            &bad[1],
            "field `detail.store`: unknown store \"store-9\"",
        ),
        record_failed(
            file,
            &bad[2],
            "field `detail.product`: must be at most 64 characters, got 65",
        ),
    ];
    assert_eq!(stderr, lines.join("\n") + "\n");
    assert_eq!(status(dir.path(), "nike", "kate"), "nike: 10");
    assert_eq!(status(dir.path(), "reebok", "kate"), "reebok: 5");
    // Replaying it again fails the same records and applies nothing more.
    let (_, again, _) = replay(dir.path(), file);
    assert_eq!(failures(&again), bad);
    assert_eq!(status(dir.path(), "nike", "kate"), "nike: 10");
    assert_eq!(status(dir.path(), "reebok", "kate"), "reebok: 5");
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
    assert_eq!(
        stderr,
        format!(
            "moebi: {}: not a JSON payload: EOF while parsing a value at line 2 column 0\n",
            fixture("bad/not-a-payload.json").display()
        )
    );
    let out = moebi(dir.path(), &["replay", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "moebi: cannot read /no/such/file.json: No such file or directory (os error 2)\n"
    );
    let out = moebi(
        dir.path(),
        &["replay", "--function", "chat-shout", "x.json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error is not a failed record"
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
