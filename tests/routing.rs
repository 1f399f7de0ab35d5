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

/// Where `event` ends up, starting at `region`'s bus and following forwards: the region it
/// lands in, what matched there, and how many bus-to-bus hops it took to get there.
/// `rules_of` gives each region's rules. Panics on a forwarding loop.
fn destination(
    rules_of: &dyn Fn(&Region) -> Vec<Rule>,
    region: &Region,
    event: &Value,
) -> (Region, Vec<Target>, usize) {
    let mut here = region.clone();
    let mut seen = vec![here.clone()];
    loop {
        let hits = targets(&rules_of(&here), event);
        match hits.as_slice() {
            [Target::Bus(next)] => {
                assert!(
                    !seen.contains(next),
                    "forwarding loop {seen:?} -> {next}: {event}"
                );
                seen.push(next.clone());
                here = next.clone();
            }
            _ => return (here, hits, seen.len() - 1),
        }
    }
}

/// Asserts that `event`, published on `from`'s bus, reaches `home` and only `expected` there,
/// directly (no hop) when `from` is `home` and in exactly one hop otherwise.
fn assert_routed(
    rules_of: &dyn Fn(&Region) -> Vec<Rule>,
    from: &Region,
    event: &Value,
    home: &Region,
    expected: &[Target],
) {
    let (reached, hits, hops) = destination(rules_of, from, event);
    let what = format!("{} from {from}: {}", event["detail-type"], event["detail"]);
    assert_eq!(&reached, home, "{what}");
    assert_eq!(hits, expected, "{what}");
    let want = usize::from(from != home);
    assert_eq!(hops, want, "{what}: {hops} hops, expected {want}");
}

#[test]
fn every_participant_and_bot_is_reached_from_every_region_in_at_most_one_hop() {
    let t = Topology::builtin();
    let rules_of = |r: &Region| t.rules(r);
    for from in &t.regions {
        for p in &t.participants {
            assert_routed(
                &rules_of,
                from,
                &event("chat.send", "to", p.name.as_str()),
                &p.home,
                &[Target::Queue(Function::ChatSend)],
            );
            assert_routed(
                &rules_of,
                from,
                &event("stock.status", "asker", p.name.as_str()),
                &p.home,
                &[Target::Function(Function::StockStatus)],
            );
        }
        for b in &t.bots {
            assert_routed(
                &rules_of,
                from,
                &event("chat.send", "to", b.name.as_str()),
                &b.home,
                &[Target::Function(Function::MoebiReply)],
            );
        }
        for s in &t.stores {
            assert_routed(
                &rules_of,
                from,
                &event("stock.add", "store", s.name.as_str()),
                &s.home,
                &[Target::Queue(Function::StockAdd)],
            );
        }
    }
}

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

fn chat_rule(to: &str, target: Target) -> Rule {
    Rule {
        name: "hand-made".into(),
        pattern: json!({"source": ["moebi"], "detail-type": ["chat.send"], "detail": {"to": [to]}}),
        target,
    }
}

/// Hand-made rules where us-west-2 sends kate's chat to eu-west-1, which sends it on to her
/// home, us-east-1: two hops, which the topology must never derive.
fn two_hop_rules(r: &Region) -> Vec<Rule> {
    let target = match r.to_string().as_str() {
        "us-west-2" => Target::Bus(region("eu-west-1")),
        "eu-west-1" => Target::Bus(region("us-east-1")),
        _ => Target::Queue(Function::ChatSend),
    };
    vec![chat_rule("kate", target)]
}

#[test]
fn a_two_hop_route_is_counted_and_rejected() {
    let kate = event("chat.send", "to", "kate");
    let (home, hits, hops) = destination(&two_hop_rules, &region("us-west-2"), &kate);
    assert_eq!(
        (home, hits, hops),
        (
            region("us-east-1"),
            vec![Target::Queue(Function::ChatSend)],
            2
        )
    );
    assert_eq!(
        destination(&two_hop_rules, &region("eu-west-1"), &kate).2,
        1
    );
    let caught = std::panic::catch_unwind(|| {
        assert_routed(
            &two_hop_rules,
            &region("us-west-2"),
            &kate,
            &region("us-east-1"),
            &[Target::Queue(Function::ChatSend)],
        )
    });
    assert!(caught.is_err(), "assert_routed let a two-hop route through");
}

#[test]
#[should_panic(expected = "forwarding loop")]
fn a_forwarding_loop_is_reported() {
    let looping = |r: &Region| {
        let next = if r.to_string() == "us-west-2" {
            "us-east-1"
        } else {
            "us-west-2"
        };
        vec![chat_rule("kate", Target::Bus(region(next)))]
    };
    destination(
        &looping,
        &region("us-west-2"),
        &event("chat.send", "to", "kate"),
    );
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
