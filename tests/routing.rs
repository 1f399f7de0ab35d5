//! The embedded bus's pattern matcher against the rules the topology derives (the ones
//! Terraform writes): from every region, every name is routed to its home, exactly once.

use moebi::contract::Region;
use moebi::pattern::Pattern;
use moebi::topology::{Function, Rule, Target, Topology};
use serde_json::{json, Value};

fn event(kind: &str, field: &str, name: &str) -> Value {
    json!({
        "version": "0", "id": "e1", "detail-type": kind, "source": "moebi", "account": "000000000000",
        "time": "2026-11-22T10:00:00Z", "region": "us-west-2", "resources": [],
        "detail": { field: name, "id": "m1" },
    })
}

fn targets(rules: &[Rule], event: &Value) -> Vec<Target> {
    rules
        .iter()
        .filter(|r| {
            Pattern::parse(&r.pattern)
                .expect("derived patterns are valid")
                .matches(event)
        })
        .map(|r| r.target.clone())
        .collect()
}

/// Where `event` ends up, starting at `region`'s bus and following forwards.
fn destination(t: &Topology, region: &Region, event: &Value) -> (Region, Vec<Target>) {
    let hits = targets(&t.rules(region), event);
    match hits.as_slice() {
        [Target::Bus(next)] => {
            let (home, there) = destination(t, next, event);
            assert!(
                !matches!(there.as_slice(), [Target::Bus(_)]),
                "forwarded twice: {event}"
            );
            (home, there)
        }
        _ => (region.clone(), hits),
    }
}

#[test]
fn every_participant_and_bot_is_reached_from_every_region() {
    let t = Topology::builtin();
    for from in &t.regions {
        for p in &t.participants {
            let (home, hits) = destination(&t, from, &event("chat.send", "to", p.name.as_str()));
            assert_eq!(home, p.home, "chat to {} from {from}", p.name);
            assert_eq!(
                hits,
                [Target::Queue(Function::ChatSend)],
                "chat to {} from {from}",
                p.name
            );
            let (home, hits) =
                destination(&t, from, &event("stock.status", "asker", p.name.as_str()));
            assert_eq!(home, p.home);
            assert_eq!(hits, [Target::Function(Function::StockStatus)]);
        }
        for b in &t.bots {
            let (home, hits) = destination(&t, from, &event("chat.send", "to", b.name.as_str()));
            assert_eq!(
                (home, hits),
                (b.home.clone(), vec![Target::Function(Function::MoebiReply)])
            );
        }
        for s in &t.stores {
            let (home, hits) = destination(&t, from, &event("stock.add", "store", s.name.as_str()));
            assert_eq!(
                (home, hits),
                (s.home.clone(), vec![Target::Queue(Function::StockAdd)])
            );
        }
    }
}

#[test]
fn unknown_names_other_sources_and_kinds_match_no_rule() {
    let t = Topology::builtin();
    for region in &t.regions {
        let rules = t.rules(region);
        assert!(targets(&rules, &event("chat.send", "to", "bob")).is_empty());
        assert!(targets(&rules, &event("stock.add", "store", "alex")).is_empty());
        assert!(targets(&rules, &event("chat.shout", "to", "kate")).is_empty());
        let mut foreign = event("chat.send", "to", "kate");
        foreign["source"] = json!("aws.events");
        assert!(targets(&rules, &foreign).is_empty());
    }
}

#[test]
fn patterns_are_what_eventbridge_takes() {
    let t = Topology::builtin();
    let west = Region::parse("us-west-2").unwrap();
    let rules = t.rules(&west);
    let names: Vec<_> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "chat-send",
            "chat-to-us-east-1",
            "chat-to-eu-west-1",
            "stock-add",
            "stock-add-to-us-east-1",
            "stock-add-to-eu-west-1",
            "stock-status",
            "stock-status-to-us-east-1",
        ],
        "no bot lives in us-west-2 and no participant in eu-west-1: those rules are left out"
    );
    assert_eq!(
        rules[2].pattern,
        json!({"source": ["moebi"], "detail-type": ["chat.send"], "detail": {"to": ["moebi"]}})
    );
}
