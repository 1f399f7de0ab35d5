//! The front door, played as API Gateway invokes it: every fixture in `events/front-door/`
//! replayed through `moebi replay` on the embedded engine. GIVEN a token's claims and a body,
//! WHEN the front door answers, THEN the sender is the token's user, and a refusal writes
//! nothing anywhere.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;
use support::{fixture, moebi, ok};

/// Replays `file`; answers the exit code, the HTTP status and the parsed body.
fn replay(state: &Path, file: &Path) -> (i32, i64, Value) {
    let out = moebi(state, &["replay", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let response: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{}: not a response ({e}): {stdout}", file.display()));
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let status = response["statusCode"].as_i64().unwrap();
    (out.status.code().unwrap_or(-1), status, body)
}

/// What kate's inbox shows once events/front-door/send.json is in.
const KATE_SEES: &str = "alex: hi, through the front door";

fn front(file: &str) -> std::path::PathBuf {
    fixture(&format!("front-door/{file}"))
}

/// Everything a request could change: the three inboxes and the whole stock (asked on a copy,
/// since asking writes an answer into the asker's inbox).
fn observe(state: &Path) -> Vec<String> {
    let copy = tempfile::tempdir().unwrap();
    let mut seen: Vec<String> = ["alex", "kate", "moebi"]
        .iter()
        .map(|p| ok(state, &["inbox", p]))
        .collect();
    for e in std::fs::read_dir(state).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
        }
    }
    seen.push(ok(copy.path(), &["stock", "status", "--as", "kate"]));
    seen
}

#[test]
fn the_sender_is_the_tokens_user_and_a_retry_is_answered_as_before() {
    let state = tempfile::tempdir().unwrap();
    let (code, status, body) = replay(state.path(), &front("send.json"));
    assert_eq!((code, status), (0, 202), "{body}");
    assert_eq!(body["id"], "api-msg-1");
    assert_eq!(ok(state.path(), &["inbox", "kate"]).trim(), KATE_SEES);

    // The same request again (a client's retry): the same answer, and still one message.
    assert_eq!(replay(state.path(), &front("send.json")).1, 202);
    assert_eq!(ok(state.path(), &["inbox", "kate"]).trim(), KATE_SEES);

    // Kate reads her inbox through the API.
    let (code, status, body) = replay(state.path(), &front("inbox.json"));
    assert_eq!((code, status), (0, 200), "{body}");
    assert_eq!(body["participant"], "kate");
    assert_eq!(body["entries"][0]["from"], "alex");
    assert_eq!(body["entries"][0]["text"], "hi, through the front door");
}

#[test]
fn a_store_adds_stock_and_a_participant_asks_it() {
    let state = tempfile::tempdir().unwrap();
    assert_eq!(replay(state.path(), &front("add-stock.json")).1, 202);
    let (_, status, body) = replay(state.path(), &front("ask-stock.json"));
    assert_eq!(status, 202, "{body}");
    let inbox = ok(state.path(), &["inbox", "kate"]);
    assert!(inbox.contains("stock: nike: 30"), "{inbox}");
}

#[test]
fn an_id_used_again_for_another_request_is_a_conflict_and_publishes_nothing() {
    let state = tempfile::tempdir().unwrap();
    assert_eq!(replay(state.path(), &front("send.json")).1, 202);
    let before = observe(state.path());
    let mut other: Value =
        serde_json::from_str(&std::fs::read_to_string(front("send.json")).unwrap()).unwrap();
    other["body"] = r#"{"id":"api-msg-1","to":"kate","text":"something else"}"#.into();
    let file = state.path().join("other.json");
    std::fs::write(&file, other.to_string()).unwrap();
    let (code, status, body) = replay(state.path(), &file);
    assert_eq!((code, status), (2, 409), "{body}");
    assert_eq!(body["type"], "IdConflict");
    assert_eq!(observe(state.path()), before);
}

#[test]
fn every_refusal_has_its_status_names_its_cause_and_writes_nothing() {
    let state = tempfile::tempdir().unwrap();
    // Something in every inbox and the stock, so a write anywhere would show.
    for file in ["send.json", "add-stock.json"] {
        assert_eq!(replay(state.path(), &front(file)).1, 202);
    }
    let before = observe(state.path());
    for (file, want, kind, says) in [
        (
            "no-claims.json",
            401,
            "Unauthenticated",
            "no verified token claims",
        ),
        (
            "forged-sender.json",
            403,
            "Forbidden",
            "alex cannot act as \"kate\"",
        ),
        (
            "participant-adds-stock.json",
            403,
            "Forbidden",
            "participant alex cannot add stock",
        ),
        (
            "malformed.json",
            400,
            "InvalidField",
            "the body is not JSON",
        ),
        ("zero-qty.json", 400, "InvalidField", "field `qty`: must be"),
        (
            "oversized.json",
            413,
            "TooLarge",
            "a request takes at most 65536",
        ),
    ] {
        let (code, status, body) = replay(state.path(), &front(file));
        assert_eq!((code, status), (2, want), "{file}: {body}");
        assert_eq!(body["type"], kind, "{file}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{file}: {error}");
    }
    assert_eq!(body_field("zero-qty.json", &state), "qty");
    assert_eq!(
        observe(state.path()),
        before,
        "a refused request wrote something"
    );
}

fn body_field(file: &str, state: &tempfile::TempDir) -> String {
    let (_, _, body) = replay(state.path(), &front(file));
    body["field"].as_str().unwrap_or_default().to_owned()
}

/// Every front-door fixture is a payload API Gateway delivers: it parses as
/// `ApiGatewayV2httpRequest` and writes back what it read.
#[test]
fn every_front_door_fixture_round_trips_as_an_http_api_request() {
    let dir = fixture("front-door");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 10, "{files:?}");
    for file in files {
        let original: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let typed: ApiGatewayV2httpRequest = serde_json::from_value(original.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let again: ApiGatewayV2httpRequest =
            serde_json::from_str(&serde_json::to_string(&typed).unwrap()).unwrap();
        assert_eq!(typed, again, "{}", file.display());
        assert_eq!(
            typed.body.as_deref(),
            original["body"].as_str(),
            "{}",
            file.display()
        );
        assert_eq!(
            typed.request_context.route_key,
            original["routeKey"].as_str().map(String::from)
        );
    }
}
