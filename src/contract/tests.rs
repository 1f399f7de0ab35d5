use serde_json::json;

use super::*;

fn chat(detail: serde_json::Value) -> Result<Event, ContractError> {
    Event::from_detail(Kind::ChatSend, &detail)
}

#[test]
fn names_follow_their_rule() {
    assert!(Participant::parse("alex").is_ok());
    assert!(Participant::parse("store-1").is_ok());
    for bad in ["", "Alex", "1alex", "al ex", &"a".repeat(33)] {
        let err = Participant::parse(bad).unwrap_err().to_string();
        assert!(err.starts_with("field `participant`"), "{err}");
    }
}

#[test]
fn quantity_limits_are_named() {
    let q = |v: serde_json::Value| {
        Event::from_detail(
            Kind::StockAdd,
            &json!({"id": "a", "store": "store-1", "product": "nike", "qty": v}),
        )
    };
    assert!(q(json!(1)).is_ok());
    assert!(q(json!(1_000_000)).is_ok());
    for (bad, rule) in [
        (json!(0), "must be at least 1, got 0"),
        (json!(-3), "must be at least 1, got -3"),
        (json!(1_000_001), "must be at most 1000000, got 1000001"),
        (json!(1.5), "must be a whole number"),
        (json!(1e30), "must be a whole number"),
        (json!("5"), "invalid type: string"),
    ] {
        let err = q(bad).unwrap_err().to_string();
        assert!(err.starts_with("field `detail.qty`: "), "{err}");
        assert!(err.contains(rule), "{err} should contain {rule}");
    }
}

#[test]
fn text_must_be_one_to_4096_characters() {
    let base = json!({"id": "m1", "from": "alex", "to": "kate", "sent_at": "2026-01-01T00:00:00Z"});
    let with_text = |t: &str| {
        let mut d = base.clone();
        d["text"] = json!(t);
        chat(d)
    };
    assert!(with_text("hi").is_ok());
    assert!(with_text(&"é".repeat(4096)).is_ok());
    assert_eq!(
        with_text("").unwrap_err().to_string(),
        "field `detail.text`: must not be empty"
    );
    assert_eq!(
        with_text(&"x".repeat(4097)).unwrap_err().to_string(),
        "field `detail.text`: must be at most 4096 characters, got 4097"
    );
}

#[test]
fn missing_and_unknown_fields_are_named() {
    let err =
        chat(json!({"id": "m1", "from": "alex", "to": "kate", "sent_at": "2026-01-01T00:00:00Z"}))
            .unwrap_err();
    assert_eq!(err.to_string(), "field `detail.text`: is required");
    let err = chat(
        json!({"id": "m1", "from": "alex", "to": "kate", "text": "x",
        "sent_at": "2026-01-01T00:00:00Z", "colour": "red"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
}

#[test]
fn envelope_names_kind_and_source() {
    let env = json!({"source": "moebi", "detail-type": "chat.shout", "detail": {}});
    assert!(matches!(
        Event::from_envelope(&env),
        Err(ContractError::UnknownKind(k)) if k == "chat.shout"
    ));
    let env = json!({"source": "other", "detail-type": "chat.send", "detail": {}});
    assert!(matches!(
        Event::from_envelope(&env),
        Err(ContractError::WrongSource(_))
    ));
    assert!(matches!(
        Event::from_envelope_json("{not json"),
        Err(ContractError::Malformed(_))
    ));
}

#[test]
fn derived_ids_are_stable_and_distinct() {
    let a = EventId::parse("m1").unwrap();
    assert_eq!(a.derived("reply"), a.derived("reply"));
    assert_ne!(
        a.derived("reply"),
        EventId::parse("m2").unwrap().derived("reply")
    );
    assert!(EventId::parse(a.derived("reply").as_str()).is_ok());
}

#[test]
fn events_round_trip_through_their_detail() {
    let e = chat(
        json!({"id": "m1", "from": "alex", "to": "kate", "text": "hi",
        "sent_at": "2026-01-01T00:00:00Z", "in_reply_to": "m0"}),
    )
    .unwrap();
    assert_eq!(Event::from_detail(Kind::ChatSend, &e.detail()).unwrap(), e);
}
