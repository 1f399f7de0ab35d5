use serde_json::json;

use super::*;
use crate::contract::Participant;

#[test]
fn shipped_topology_is_the_seed() {
    let t = Topology::builtin();
    let names: Vec<_> = t.regions.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, ["us-west-2", "us-east-1", "eu-west-1"]);
    let moebi = Participant::parse("moebi").unwrap();
    assert_eq!(t.bot(&moebi).unwrap().answer.as_str(), "chicken?");
    assert_eq!(
        t.home_of(&Participant::parse("kate").unwrap())
            .unwrap()
            .as_str(),
        "us-east-1"
    );
}

#[test]
fn bad_topologies_are_named() {
    let base = |regions: &str, people: &str| {
        format!(
            r#"{{"regions": {regions}, "participants": {people}, "stores": [],
            "queues": {{"function_timeout_seconds": 30, "visibility_timeout_seconds": 180,
            "max_receive_count": 5, "batch_size": 10}}}}"#
        )
    };
    let err = Topology::parse(&base(
        r#"["us-west-2"]"#,
        r#"[{"name": "alex", "home": "mars-1"}]"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("alex lives in unknown region mars-1"), "{err}");
    let err = Topology::parse(&base(
        r#"["us-west-2"]"#,
        r#"[{"name": "alex", "home": "us-west-2"}, {"name": "alex", "home": "us-west-2"}]"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("name alex is used twice"), "{err}");
    let err = Topology::parse(&base(r#"["us-west-2", "us-west-2"]"#, "[]"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("region us-west-2 is listed twice"), "{err}");
    assert!(matches!(
        Topology::parse("{}"),
        Err(TopologyError::Malformed(_))
    ));
}

#[test]
fn every_region_routes_chat_for_every_participant_exactly_once() {
    let t = Topology::builtin();
    let pattern = crate::pattern::Pattern::parse;
    for region in &t.regions {
        let rules = t.rules(region);
        for who in t
            .participants
            .iter()
            .map(|p| &p.name)
            .chain(t.bots.iter().map(|b| &b.name))
        {
            let event = json!({"source": "moebi", "detail-type": "chat.send", "detail": {"to": who.as_str()}});
            let hits: Vec<_> = rules
                .iter()
                .filter(|r| pattern(&r.pattern).unwrap().matches(&event))
                .collect();
            assert_eq!(hits.len(), 1, "{who} from {region}: {hits:?}");
        }
    }
}
