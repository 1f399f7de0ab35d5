//! A load run on the embedded engine: the schedule published on time by one task, the engine
//! driven by another (replication, then one batch of each queue at a time, as Lambda's event
//! source mappings poll), on the same thread. Afterwards the journal says when each effect
//! became visible, and the state is checked against it.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::contract::{Event, Product};
use crate::engine::local::LocalEngine;
use crate::engine::{pump, Engine, EngineError};

use super::measure::{self, Marks, Outcome, Sent};
use super::plan::{Kind, Planned};
use super::{wall_ms, LoadError, Progress};

/// Most time the engine waits for work when nothing moved (what a mapping's poll would wait).
const IDLE_WAIT: Duration = Duration::from_millis(5);

/// Plays `schedule` on `engine`, then reads every event's outcome back. Answers the outcomes
/// and the wall-clock instant (ms) the schedule started at.
pub async fn run(
    engine: &LocalEngine,
    schedule: &[Planned],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<Outcome>, f64), LoadError> {
    let start = Instant::now() + Duration::from_millis(20);
    let start_ms = wall_ms() + 20.0;
    let done = Cell::new(false);
    let sent_count = Cell::new(0u64);
    let wake = Notify::new();
    let publisher = async {
        let mut sent = Vec::with_capacity(schedule.len());
        for p in schedule {
            tokio::time::sleep_until(start + p.due).await;
            let due_ms = start_ms + p.due.as_secs_f64() * 1000.0;
            let refused = engine
                .publish(&p.region, std::slice::from_ref(&p.event))
                .await
                .err()
                .map(|e| crate::report(&e));
            sent.push(Sent {
                due_ms,
                sent_ms: wall_ms(),
                refused,
            });
            sent_count.set(sent_count.get() + 1);
            wake.notify_one();
        }
        done.set(true);
        wake.notify_one();
        sent
    };
    let worker = async {
        let mut handled = 0u64;
        let mut last_report = Instant::now();
        loop {
            let moved = drive_once(engine).await?;
            handled += moved;
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(Progress {
                    elapsed: start.elapsed(),
                    sent: sent_count.get(),
                    done: handled,
                    done_what: "records handled or replicated",
                });
            }
            if moved == 0 {
                if done.get() {
                    break;
                }
                let _ = tokio::time::timeout(IDLE_WAIT, wake.notified()).await;
            }
        }
        // What waits for a retry (a visibility timeout) is delivered now, on the queues' clock.
        engine.run_until_idle().await?;
        Ok::<_, EngineError>(())
    };
    let (sent, worked) = futures_util::future::join(publisher, worker).await;
    worked?;
    let marks = engine.marks()?;
    let marks = Marks::new(&marks);
    let outcomes = schedule
        .iter()
        .zip(&sent)
        .map(|(p, s)| measure::outcome(engine.topology(), p, s, &marks))
        .collect();
    Ok((outcomes, start_ms))
}

/// One round of the engine: replication, then every queue until it is empty, yielding between
/// batches so the publisher keeps its schedule. Answers how much moved.
async fn drive_once(engine: &LocalEngine) -> Result<u64, EngineError> {
    let mut moved = engine.replicator().run().await?;
    tokio::task::yield_now().await;
    for region in &engine.topology().regions {
        let ports = engine.ports(region)?;
        for (mapping, queue) in engine.queues(region).await? {
            // Each queue drained, a batch at a time: an EventBridge target takes one event per
            // invocation, and Lambda runs many at once.
            loop {
                let pass = match pump::pump(queue.as_ref(), &mapping, &ports).await {
                    Ok(pass) => pass.handled + pass.failed,
                    // A queue failing for a while is tried again on the next round.
                    Err(EngineError::Queue(e)) if e.retryable => 0,
                    Err(e) => return Err(e),
                };
                moved += pass;
                tokio::task::yield_now().await;
                if pass == 0 {
                    break;
                }
            }
        }
    }
    Ok(moved)
}

/// What the state holds against what the journal says: each add applied once is in every
/// region's stock, and each message, answer and reply is in its inbox. Answers what disagrees.
pub async fn check_state(
    engine: &LocalEngine,
    schedule: &[Planned],
    outcomes: &[Outcome],
) -> Result<Vec<String>, EngineError> {
    let mut problems = Vec::new();
    let mut expected: BTreeMap<Product, u64> = BTreeMap::new();
    let mut inboxes: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for (p, o) in schedule.iter().zip(outcomes) {
        if o.applied != 1 {
            continue;
        }
        match &p.event {
            Event::StockAdd(a) => {
                *expected.entry(a.product.clone()).or_default() += u64::from(a.qty.get())
            }
            Event::ChatSend(m) => {
                let (owner, key) = match p.kind {
                    Kind::Moebi => (&m.from, format!("reply to {}", m.id)),
                    _ => (&m.to, m.id.to_string()),
                };
                inboxes.entry(owner.to_string()).or_default().insert(key);
            }
            Event::StockStatus(s) => {
                let key = format!("reply to {}", s.id);
                inboxes.entry(s.asker.to_string()).or_default().insert(key);
            }
        }
    }
    for region in &engine.topology().regions {
        let shares = engine.ports(region)?.stock.shares(None).await?;
        let mut held: BTreeMap<Product, u64> = BTreeMap::new();
        for s in shares
            .into_iter()
            .filter(|s| s.product.as_str().starts_with("load-"))
        {
            *held.entry(s.product).or_default() += s.qty;
        }
        for (product, want) in &expected {
            let got = held.get(product).copied().unwrap_or(0);
            if got != *want {
                problems.push(format!(
                    "{region} holds {got} of {product}, the adds applied once sum to {want}"
                ));
            }
        }
    }
    for (owner, keys) in inboxes {
        let who = crate::contract::Participant::parse(&owner)?;
        let entries = engine.inbox(&who).await?;
        let mut present: HashSet<String> = entries.iter().map(|e| e.id.to_string()).collect();
        present.extend(
            entries
                .iter()
                .filter_map(|e| e.in_reply_to.as_ref().map(|r| format!("reply to {r}"))),
        );
        let missing = keys.iter().filter(|k| !present.contains(*k)).count();
        if missing > 0 {
            problems.push(format!(
                "{owner}'s inbox lacks {missing} message(s) the journal says were delivered"
            ));
        }
    }
    Ok(problems)
}
