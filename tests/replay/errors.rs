//! What a user sees when a payload or a command is wrong: the exit code, and an error naming
//! the problem.

use std::path::Path;

use crate::support::{fixture, moebi};

#[test]
fn a_payload_larger_than_lambda_takes_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    // An endless file: read as a whole, it would take every byte of memory.
    let out = moebi(dir.path(), &["replay", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "moebi: /dev/zero: larger than the 6291456 bytes Lambda accepts in one invocation\n"
    );
}

#[test]
fn usage_errors_exit_1_not_the_2_of_failed_records() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["replay"][..],
        &["replay", "--function", "nope", "x.json"],
        &["frobnicate"],
    ] {
        let out = moebi(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "moebi {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error:"),
            "moebi {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(moebi(dir.path(), &["--help"]).status.code(), Some(0));
}

/// A fixture with some of its fields changed, written to `dir`.
fn changed(dir: &Path, fixture_path: &str, change: impl Fn(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(fixture_path)).unwrap()).unwrap();
    change(&mut value);
    let path = dir.join(fixture_path.replace('/', "-"));
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn stderr_of(state: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&moebi(state, args).stderr).into_owned()
}

#[test]
fn errors_name_each_field_once_call_a_bot_a_bot_and_cut_huge_values() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let mars = changed(state, "stock-add/eventbridge.json", |v| {
        v["region"] = "Mars".into()
    });
    assert_eq!(
        stderr_of(state, &["replay", &mars]),
        format!(
            "moebi: {mars}: field `region`: must be 1 to 32 characters of a-z, 0-9 and '-', \
             starting with a letter, got \"Mars\"\n"
        )
    );
    let to_bot = changed(state, "chat-send/eventbridge.json", |v| {
        v["detail"]["to"] = "moebi".into()
    });
    assert!(
        stderr_of(state, &["replay", "--function", "chat-send", &to_bot]).contains(
            "field `detail.to`: moebi is a bot: moebi-reply answers it, chat-send delivers only to participants"
        )
    );
    let bot_asks = changed(state, "stock-status/eventbridge.json", |v| {
        v["region"] = "eu-west-1".into();
        v["detail"]["asker"] = "moebi".into()
    });
    assert!(stderr_of(state, &["replay", &bot_asks])
        .contains("field `detail.asker`: moebi is a bot: only participants ask the stock"));
    let huge = "x".repeat(100_000);
    let err = stderr_of(state, &["send", "alex", &huge, "hi"]);
    assert_eq!(
        err,
        format!(
            "moebi: field `to`: must be 1 to 32 characters of a-z, 0-9 and '-', starting with a \
             letter, got \"{}\"… (100000 characters)\n",
            "x".repeat(64)
        )
    );
}
