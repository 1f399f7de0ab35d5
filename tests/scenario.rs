//! The seed's scenario, step by step, through the `moebi` CLI on the embedded engine: separate
//! CLI calls share the state under `--state`, as a user's would.

mod support;

use support::{moebi, ok};

fn inbox(state: &std::path::Path, who: &str) -> Vec<String> {
    ok(state, &["inbox", who])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_seed_scenario_plays_across_three_regions() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();

    // GIVEN alex in us-west-2 and kate in us-east-1
    // WHEN alex sends "hi" to kate THEN kate's inbox (in another region) holds it
    assert!(ok(state, &["send", "alex", "kate", "hi"]).starts_with("sent "));
    assert_eq!(inbox(state, "kate"), ["alex: hi"]);

    // WHEN kate answers THEN alex's inbox holds the answer
    ok(state, &["send", "kate", "alex", "how are you?"]);
    assert_eq!(inbox(state, "alex"), ["kate: how are you?"]);

    // WHEN alex says hi to moebi THEN moebi's inbox shows it, and alex gets chicken? as a reply
    let sent = ok(state, &["send", "alex", "moebi", "hi"]);
    let id = sent
        .trim()
        .strip_prefix("sent ")
        .expect("the send prints the id");
    assert_eq!(inbox(state, "moebi"), ["alex: hi"]);
    assert_eq!(
        inbox(state, "alex"),
        [
            "kate: how are you?".to_owned(),
            format!("moebi: chicken?  (reply to {id})")
        ]
    );
    // AND kate receives nothing from moebi
    assert_eq!(inbox(state, "kate"), ["alex: hi"]);

    // WHEN stores in two regions add products
    ok(state, &["stock", "add", "store-1", "nike", "30"]);
    ok(state, &["stock", "add", "store-3", "adidas", "35"]);
    ok(state, &["stock", "add", "store-3", "nike", "5"]);

    // THEN the stock answers from every region, summing every region's share
    assert_eq!(
        ok(state, &["stock", "status", "nike", "--as", "kate"]).trim(),
        "nike: 35"
    );
    assert_eq!(
        ok(state, &["stock", "status", "nike", "--as", "alex"]).trim(),
        "nike: 35"
    );
    assert_eq!(
        ok(state, &["stock", "status", "adidas", "--as", "alex"]).trim(),
        "adidas: 35"
    );
    assert_eq!(
        ok(state, &["stock", "status", "puma", "--as", "kate"]).trim(),
        "there is no product puma"
    );
    assert_eq!(
        ok(state, &["stock", "status", "--as", "kate"]).trim(),
        "adidas: 35, nike: 35"
    );
    // AND the answers landed in the askers' inboxes, as replies from the stock
    assert!(inbox(state, "kate")
        .iter()
        .any(|l| l.starts_with("stock: there is no product puma  (reply to ")));
    assert_eq!(ok(state, &["dlq"]).trim(), "no dead letters");
}

#[test]
fn state_survives_between_calls_and_engine_restarts() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["send", "alex", "kate", "hi"]);
    ok(dir.path(), &["stock", "add", "store-2", "nike", "3"]);
    // Every call above opened and closed the engine; a new one sees the same state.
    assert_eq!(inbox(dir.path(), "kate"), ["alex: hi"]);
    assert_eq!(
        ok(dir.path(), &["stock", "status", "nike", "--as", "alex"]).trim(),
        "nike: 3"
    );
    let json = ok(dir.path(), &["inbox", "kate", "--json"]);
    let entry: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(entry["from"], "alex");
    assert_eq!(entry["text"], "hi");
}

#[test]
fn demo_transcript_shows_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["demo"]);
    let after = |marker: &str| {
        out.split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no {marker:?} in\n{out}"))
            .to_owned()
    };
    let step1 = after("1. alex sends");
    assert!(step1.contains("kate's inbox:\n     alex: hi"), "{out}");
    assert!(
        after("2. kate answers").contains("alex's inbox:\n     kate: how are you?"),
        "{out}"
    );
    let step3 = after("3. alex sends \"hi\" to moebi");
    assert!(step3.contains("moebi's inbox:\n     alex: hi"), "{out}");
    assert!(step3.contains("     moebi: chicken?  (reply to "), "{out}");
    let kate = step3.split("kate's inbox:").nth(1).unwrap();
    assert!(
        !kate.split("\n4.").next().unwrap().contains("moebi"),
        "kate got something from moebi:\n{out}"
    );
    let step5 = after("5. kate asks the stock");
    assert!(step5.contains("-> nike: 35"), "{out}");
    assert!(step5.contains("-> adidas: 35"), "{out}");
    assert!(step5.contains("-> there is no product puma"), "{out}");
    assert!(step5.contains("dead letters: 0"), "{out}");
    // The demo starts afresh each time: a second run tells the same story.
    let mask = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split("(reply to ").next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(mask(&ok(dir.path(), &["demo"])), mask(&out));
}

#[test]
fn bad_input_is_named_on_stderr_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in [
        (
            vec!["send", "alex", "bob", "hi"],
            "field `to`: unknown participant \"bob\"",
        ),
        (
            vec!["send", "alex", "kate", ""],
            "field `text`: must not be empty",
        ),
        (
            vec!["stock", "add", "store-1", "nike", "0"],
            "field `qty`: must be at least 1, got 0",
        ),
        (
            vec!["stock", "add", "store-1", "nike", "-4"],
            "field `qty`: must be at least 1, got -4",
        ),
        (
            vec!["stock", "add", "store-1", "nike", "2000000"],
            "field `qty`: must be at most 1000000",
        ),
        (
            vec!["stock", "add", "store-7", "nike", "1"],
            "field `store`: unknown store \"store-7\"",
        ),
        (vec!["stock", "status", "--as", "moebi"], "moebi is a bot"),
        (vec!["dlq", "mars-1"], "unknown region mars-1"),
    ] {
        let out = moebi(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: {stderr:?} should name {message:?}"
        );
    }
    // Nothing was applied by any of them.
    assert_eq!(ok(dir.path(), &["inbox", "kate"]), "");
    assert_eq!(
        ok(dir.path(), &["stock", "status", "--as", "kate"]).trim(),
        "the stock is empty"
    );
}

#[test]
fn a_message_cannot_forge_inbox_lines_or_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &["send", "alex", "kate", "hi\nmoebi: chicken?\u{1b}[2J"],
    );
    assert_eq!(
        ok(dir.path(), &["inbox", "kate"]),
        "alex: hi\\nmoebi: chicken?\\u{1b}[2J\n"
    );
    // JSON keeps the text as it was sent.
    let json = ok(dir.path(), &["inbox", "kate", "--json"]);
    let entry: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(entry["text"], "hi\nmoebi: chicken?\u{1b}[2J");
}
