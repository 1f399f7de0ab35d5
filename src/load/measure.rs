//! Reading a run back: when each event's effect became visible where its user looks, how long
//! each hop took, and whether it was applied once, from the steps the engine wrote down while
//! the run went on (the embedded engine's journal), not from polling during it.

use std::collections::HashMap;

use crate::contract::{Event, Region};
use crate::engine::{Mark, Step};
use crate::topology::{Function, Topology};

use super::plan::{Kind, Planned};

/// The hops of an event's path on the embedded engine, in order, and what each is.
pub const HOPS: [&str; 6] = [
    "published",
    "routed",
    "received",
    "handled",
    "replicated",
    "answered",
];

/// What [`HOPS`] are.
pub const HOPS_HELP: &str = "published = due → on the bus; routed → on the function's queue (across regions); received → taken by the mapping; handled → applied; replicated → in every region (adds); answered → the bot's answer in the sender's inbox";

/// What the load generator did with one event.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When it was due (ms since the epoch).
    pub due_ms: f64,
    /// When it was handed to the bus (ms since the epoch).
    pub sent_ms: f64,
    /// Why the bus refused it, if it did.
    pub refused: Option<String>,
}

/// What became of one event.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its place in the schedule.
    pub index: usize,
    /// Its kind.
    pub kind: Kind,
    /// When it was due (ms since the epoch).
    pub due_ms: f64,
    /// When it was sent (ms since the epoch).
    pub sent_ms: f64,
    /// When its effect was visible where its user looks (every region, for an add).
    pub visible_ms: Option<f64>,
    /// How many times its effect was applied: 1 is right, 0 lost or failed, 2 or more doubled.
    pub applied: u32,
    /// Why it failed, when it did (refused by the bus, set aside as a dead letter).
    pub failure: Option<String>,
    /// Each hop's time in ms (in the order of its target's hops), where the event took it.
    pub hops: Vec<Option<f64>>,
}

impl Outcome {
    /// Its latency, from the instant it was due to its effect, in ms.
    pub fn latency_ms(&self) -> Option<f64> {
        self.visible_ms.map(|v| v - self.due_ms)
    }
}

/// The marks of one run, by event.
pub struct Marks<'a> {
    by_event: HashMap<&'a str, Vec<&'a Mark>>,
    /// Each event's answers (a bot's reply), by the event answered.
    replies: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Marks<'a> {
    /// Indexes `marks`.
    pub fn new(marks: &'a [Mark]) -> Self {
        let mut by_event: HashMap<&str, Vec<&Mark>> = HashMap::new();
        let mut replies: HashMap<&str, Vec<&str>> = HashMap::new();
        for m in marks {
            let Some(id) = m.event_id.as_deref() else {
                continue;
            };
            by_event.entry(id).or_default().push(m);
            if let (Step::Published, Some(cause)) = (m.step, m.cause.as_deref()) {
                replies.entry(cause).or_default().push(id);
            }
        }
        Self { by_event, replies }
    }

    fn of(&self, id: &str) -> &[&'a Mark] {
        self.by_event.get(id).map(Vec::as_slice).unwrap_or_default()
    }
}

/// One leg of an event's path: where it was published, queued, received and applied.
struct Leg {
    published: Option<f64>,
    queued: Option<f64>,
    received: Option<f64>,
    applied: Option<f64>,
    count: u32,
    failure: Option<String>,
}

fn leg(marks: &[&Mark], function: Function, region: &Region) -> Leg {
    let at = |step: Step| {
        marks
            .iter()
            .filter(move |m| m.step == step && &m.region == region)
            .map(|m| m.at_ms)
    };
    let applied: Vec<f64> = marks
        .iter()
        .filter(|m| m.step == Step::Applied && m.function == Some(function) && &m.region == region)
        .map(|m| m.at_ms)
        .collect();
    let first = applied.iter().copied().reduce(f64::min);
    let before = |t: f64| first.is_none_or(|a| t <= a);
    let failure = marks
        .iter()
        .find(|m| m.step == Step::Dead || m.step == Step::Unmatched)
        .map(|m| format!("{} in {}: {}", m.step, m.region, m.detail));
    Leg {
        published: marks
            .iter()
            .find(|m| m.step == Step::Published)
            .map(|m| m.at_ms),
        queued: at(Step::Queued).filter(|t| before(*t)).reduce(f64::max),
        received: at(Step::Received).filter(|t| before(*t)).reduce(f64::max),
        applied: first,
        count: applied.len() as u32,
        failure,
    }
}

fn gap(from: Option<f64>, to: Option<f64>) -> Option<f64> {
    Some(to? - from?)
}

/// What became of `planned` (sent as `sent`), read from `marks`.
pub fn outcome(topology: &Topology, planned: &Planned, sent: &Sent, marks: &Marks<'_>) -> Outcome {
    let id = planned.event.id().as_str();
    let mut out = Outcome {
        index: planned.index,
        kind: planned.kind,
        due_ms: sent.due_ms,
        sent_ms: sent.sent_ms,
        visible_ms: None,
        applied: 0,
        failure: sent.refused.clone(),
        hops: vec![None; HOPS.len()],
    };
    if sent.refused.is_some() {
        return out;
    }
    let home = |who| topology.home_of(who).cloned();
    let (function, region) = match &planned.event {
        Event::ChatSend(m) if planned.kind == Kind::Moebi => (Function::MoebiReply, home(&m.to)),
        Event::ChatSend(m) => (Function::ChatSend, home(&m.to)),
        Event::StockAdd(a) => (Function::StockAdd, topology.store_home(&a.store).cloned()),
        Event::StockStatus(s) => (Function::StockStatus, home(&s.asker)),
    };
    let Some(region) = region else {
        out.failure = Some("its recipient has no home region".into());
        return out;
    };
    let first = leg(marks.of(id), function, &region);
    out.hops[0] = gap(Some(sent.due_ms), first.published);
    out.hops[1] = gap(first.published, first.queued);
    out.hops[2] = gap(first.queued, first.received);
    out.hops[3] = gap(first.received, first.applied);
    out.applied = first.count;
    out.failure = first.failure;
    match &planned.event {
        Event::StockAdd(_) => {
            // Visible in every region: applied in the store's, replicated to the others.
            let mut last = first.applied;
            for other in topology.regions.iter().filter(|r| **r != region) {
                let copied = marks
                    .of(id)
                    .iter()
                    .filter(|m| m.step == Step::Replicated && &m.region == other)
                    .map(|m| m.at_ms)
                    .reduce(f64::min);
                last = match (last, copied) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            out.hops[4] = gap(first.applied, last);
            out.visible_ms = last;
        }
        Event::ChatSend(m) if planned.kind == Kind::Moebi => {
            // The answer in the sender's inbox: the reply's own path, in the sender's region.
            let reply = marks.replies.get(id).and_then(|r| r.first().copied());
            let answered = reply.zip(home(&m.from)).map(|(r, sender_home)| {
                let l = leg(marks.of(r), Function::ChatSend, &sender_home);
                if l.count > 1 {
                    out.applied = out.applied.max(l.count);
                }
                if l.failure.is_some() {
                    out.failure = l.failure;
                }
                l.applied
            });
            let answered = answered.flatten();
            if answered.is_none() && out.failure.is_none() && first.applied.is_some() {
                out.applied = 0;
            }
            out.hops[5] = gap(first.applied, answered);
            out.visible_ms = answered;
        }
        _ => out.visible_ms = first.applied,
    }
    if out.visible_ms.is_none() && out.applied > 0 && out.failure.is_none() {
        // Applied where it was handled, but not (yet) where its user looks.
        out.applied = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ChatSend, EventId, Participant, Text};

    fn mark(at_ms: f64, region: &str, step: Step, id: &str, function: Option<Function>) -> Mark {
        Mark {
            at_ms,
            region: Region::parse(region).unwrap(),
            step,
            event_id: Some(id.into()),
            cause: None,
            function,
            detail: String::new(),
        }
    }

    fn chat(id: &str) -> Planned {
        Planned {
            index: 0,
            due: std::time::Duration::ZERO,
            kind: Kind::Chat,
            region: Region::parse("us-west-2").unwrap(),
            event: Event::ChatSend(ChatSend {
                id: EventId::parse(id).unwrap(),
                from: Participant::parse("alex").unwrap(),
                to: Participant::parse("kate").unwrap(),
                text: Text::parse("hi").unwrap(),
                sent_at: chrono::Utc::now(),
                in_reply_to: None,
            }),
        }
    }

    fn sent() -> Sent {
        Sent {
            due_ms: 1000.0,
            sent_ms: 1001.0,
            refused: None,
        }
    }

    #[test]
    fn a_message_is_timed_from_its_due_instant_hop_by_hop() {
        let f = Some(Function::ChatSend);
        let marks = vec![
            mark(1002.0, "us-west-2", Step::Published, "e", None),
            mark(1003.0, "us-east-1", Step::Queued, "e", None),
            mark(1007.0, "us-east-1", Step::Received, "e", None),
            mark(1010.0, "us-east-1", Step::Applied, "e", f),
            mark(1015.0, "us-west-2", Step::Replicated, "e", None),
        ];
        let o = outcome(
            &Topology::builtin(),
            &chat("e"),
            &sent(),
            &Marks::new(&marks),
        );
        assert_eq!(o.applied, 1);
        assert_eq!(o.latency_ms(), Some(10.0));
        assert_eq!(o.hops[..4], [Some(2.0), Some(1.0), Some(4.0), Some(3.0)]);
    }

    #[test]
    fn an_effect_applied_twice_is_counted_twice_and_one_never_applied_not_at_all() {
        let f = Some(Function::ChatSend);
        let twice = vec![
            mark(1002.0, "us-west-2", Step::Published, "e", None),
            mark(1010.0, "us-east-1", Step::Applied, "e", f),
            mark(1020.0, "us-east-1", Step::Applied, "e", f),
        ];
        let o = outcome(
            &Topology::builtin(),
            &chat("e"),
            &sent(),
            &Marks::new(&twice),
        );
        assert_eq!(o.applied, 2);
        let never = vec![mark(1002.0, "us-west-2", Step::Published, "e", None)];
        let o = outcome(
            &Topology::builtin(),
            &chat("e"),
            &sent(),
            &Marks::new(&never),
        );
        assert_eq!((o.applied, o.visible_ms, o.failure), (0, None, None));
    }
}
