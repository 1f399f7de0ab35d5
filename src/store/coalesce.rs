//! Group commit: the effects of records in flight together share one `TransactWriteItems`.
//!
//! A batch's records run concurrently ([`crate::invoke::batch_of`]), and each writes its
//! effect with its idempotency record in one transaction. Sent one by one, ten records cost
//! ten round trips, which the store may apply one after another. Here the first record to
//! arrive waits one turn of its task, so the records polled with it join it; then all of
//! them go in one transaction (at most [`MAX_ITEMS`] items), and each record gets the verdict
//! of its own items:
//!
//! - the transaction succeeds: every record is applied;
//! - it is cancelled, and every cancellation is a failed condition: the records whose
//!   condition failed get their verdict (a duplicate, an id reused, an overflowing share), the
//!   others are sent again together;
//! - anything else (a throttle, a conflict, an item the store refuses, a lost connection):
//!   each record is sent again alone, as if it had never been grouped, so one bad record
//!   fails alone and a transient failure is retried per record, never hidden. Records writing
//!   the same item are then sent one after another ([`Turn`]), never racing each other.
//!
//! **Sums.** DynamoDB refuses two actions on one item in a transaction. Records whose effect
//! adds to a number ([`Sum`], a stock share) and that write the same item share one action:
//! the `ADD` of their total, beside each record's own idempotency record. So a batch costs one
//! round trip whatever its mix of products. A duplicate among them (its idempotency record's
//! condition fails) gets its verdict and the others go again without it; a refused total (the
//! share would overflow) cannot say whose add overflowed, so its records go again one by one.
//!
//! A record alone, as in the simulation which runs them one at a time, is never grouped.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use tokio::sync::oneshot;

/// The most items one transaction carries (DynamoDB's limit).
pub const MAX_ITEMS: usize = 100;

/// An effect that adds `qty` to a number: records adding to the same item share one action.
pub struct Sum {
    /// What this record adds.
    pub qty: u64,
    /// The effect adding a total instead; `None` when the total cannot be added at once.
    pub build: Box<dyn Fn(u64) -> Option<TransactWriteItem> + Send + Sync>,
}

/// What became of a record sent with others.
#[derive(Debug)]
pub enum Verdict {
    /// The transaction took effect, with this record's effect and idempotency record.
    Applied,
    /// The transaction was cancelled by a condition of this record: the reasons for its effect
    /// and for its idempotency record.
    Cancelled(Box<[Option<CancellationReason>; 2]>),
    /// It was not grouped, or its group failed otherwise: the record must be sent alone, in
    /// its turn.
    Alone(Turn),
}

/// A record's turn to be sent alone: after the record before it that writes the same item is
/// done (its `Turn` dropped).
#[derive(Debug, Default)]
pub struct Turn {
    after: Option<oneshot::Receiver<()>>,
    _done: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// Waits until the record before this one is done; hold the turn until this one is.
    pub async fn wait(&mut self) {
        if let Some(after) = self.after.take() {
            let _ = after.await;
        }
    }
}

struct Waiting {
    items: [TransactWriteItem; 2],
    keys: [Option<(String, String)>; 2],
    sum: Option<Sum>,
    answer: oneshot::Sender<Verdict>,
}

/// The records waiting for a transaction.
#[derive(Default)]
pub struct Coalescer {
    waiting: Mutex<Vec<Waiting>>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

impl Coalescer {
    /// The records waiting, taken: whoever comes next leads the next group.
    fn take(&self) -> Vec<Waiting> {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sends `[effect, record]` with whatever else is in flight with it; an effect that is a
    /// [`Sum`] may share its action with others adding to the same item.
    pub async fn submit(
        &self,
        dynamo: &aws_sdk_dynamodb::Client,
        items: [TransactWriteItem; 2],
        sum: Option<Sum>,
    ) -> Verdict {
        let (answer, verdict) = oneshot::channel();
        let keys = [item_key(&items[0]), item_key(&items[1])];
        let leads = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.push(Waiting {
                items,
                keys,
                sum,
                answer,
            });
            waiting.len() == 1
        };
        if leads {
            // Should this call be dropped while it waits, the records it leads are sent alone.
            let mut lead = Lead(Some(self));
            // The records polled after this one, in the same turn, join it now.
            tokio::task::yield_now().await;
            let group = lead.take();
            send_all(dynamo, group).await;
        }
        // A leader dropped mid-way answers nobody: its records are then sent alone, and their
        // idempotency records tell whether its transaction took effect.
        verdict
            .await
            .unwrap_or_else(|_| Verdict::Alone(Turn::default()))
    }
}

/// The leader of the records waiting, until it takes them.
struct Lead<'a>(Option<&'a Coalescer>);

impl Lead<'_> {
    fn take(&mut self) -> Vec<Waiting> {
        self.0.take().map(Coalescer::take).unwrap_or_default()
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        alone(self.take());
    }
}

/// Answers each record to go alone, those writing the same item one after another.
fn alone(records: Vec<Waiting>) {
    let mut last: HashMap<(String, String), oneshot::Receiver<()>> = HashMap::new();
    for w in records {
        let (done, next) = oneshot::channel();
        let after = w.keys[0].clone().and_then(|k| last.insert(k, next));
        let turn = Turn {
            after,
            _done: Some(done),
        };
        let _ = w.answer.send(Verdict::Alone(turn));
    }
}

/// Sends a group in as few transactions as its items allow, answering every record.
async fn send_all(dynamo: &aws_sdk_dynamodb::Client, group: Vec<Waiting>) {
    // Only records whose items' keys are known can be grouped, and only two or more.
    let (mut group, mut unknown): (Vec<_>, Vec<_>) = group
        .into_iter()
        .partition(|w| w.keys.iter().all(Option::is_some));
    if group.len() < 2 {
        unknown.append(&mut group);
    }
    alone(unknown);
    // Each round answers a record, or stops a sum from being shared: this ends.
    while !group.is_empty() {
        let (now, later) = split(group);
        let (mut again, failed) = send_one(dynamo, now).await;
        if !failed.is_empty() {
            // Whatever failed otherwise goes alone, with everything after it, in order.
            alone(failed.into_iter().chain(again).chain(later).collect());
            return;
        }
        again.extend(later);
        group = again;
    }
}

/// The records that go in the next transaction, as units of records sharing one effect
/// action (a [`Sum`]'s total, or one record's effect), at most [`MAX_ITEMS`] items and no item
/// written by two actions; and the rest, in their order.
fn split(group: Vec<Waiting>) -> (Vec<Vec<Waiting>>, Vec<Waiting>) {
    let mut records_seen = std::collections::HashSet::new();
    let mut effects: HashMap<(String, String), usize> = HashMap::new();
    let (mut now, mut later): (Vec<Vec<Waiting>>, Vec<Waiting>) = (Vec::new(), Vec::new());
    let mut items = 0;
    for w in group {
        let [Some(effect), Some(record)] = w.keys.clone() else {
            later.push(w);
            continue;
        };
        if records_seen.contains(&record) || records_seen.contains(&effect) {
            later.push(w);
            continue;
        }
        match effects.get(&effect) {
            // Another record writes this item: joined when both add to it, else later.
            Some(&unit) => {
                let total: u64 = now[unit]
                    .iter()
                    .chain(std::iter::once(&w))
                    .map(|r| r.sum.as_ref().map_or(u64::MAX, |s| s.qty))
                    .fold(0u64, u64::saturating_add);
                let summed = now[unit].iter().all(|r| r.sum.is_some())
                    && w.sum.as_ref().is_some_and(|s| (s.build)(total).is_some());
                if summed && items < MAX_ITEMS {
                    records_seen.insert(record);
                    now[unit].push(w);
                    items += 1;
                } else {
                    later.push(w);
                }
            }
            None if items + 2 <= MAX_ITEMS && !effects.contains_key(&record) => {
                records_seen.insert(record);
                effects.insert(effect, now.len());
                now.push(vec![w]);
                items += 2;
            }
            None => later.push(w),
        }
    }
    (now, later)
}

/// The effect action of a unit: its record's own, or the total of its sums.
fn effect_of(unit: &[Waiting]) -> TransactWriteItem {
    match unit {
        [one] => one.items[0].clone(),
        [first, ..] => {
            let total = unit
                .iter()
                .filter_map(|w| w.sum.as_ref().map(|s| s.qty))
                .sum();
            let built = first.sum.as_ref().and_then(|s| (s.build)(total));
            built.unwrap_or_else(|| first.items[0].clone())
        }
        [] => unreachable!("a unit holds a record"),
    }
}

/// Sends the units in one transaction. Answers the records to send again (every condition of
/// theirs held) and those to send alone (the transaction failed otherwise); the others are
/// answered.
async fn send_one(
    dynamo: &aws_sdk_dynamodb::Client,
    units: Vec<Vec<Waiting>>,
) -> (Vec<Waiting>, Vec<Waiting>) {
    if units.len() == 1 && units[0].len() == 1 {
        return (Vec::new(), units.into_iter().flatten().collect());
    }
    let mut items = Vec::new();
    for unit in &units {
        items.push(effect_of(unit));
        items.extend(unit.iter().map(|w| w.items[1].clone()));
    }
    let sent = dynamo
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    let reasons = match sent {
        Ok(_) => {
            for w in units.into_iter().flatten() {
                let _ = w.answer.send(Verdict::Applied);
            }
            return (Vec::new(), Vec::new());
        }
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons().to_vec()
            }
            _ => return (Vec::new(), units.into_iter().flatten().collect()),
        },
    };
    let count: usize = units.iter().map(|u| u.len() + 1).sum();
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    let failed = |i: usize| code(i) == super::CONDITION_FAILED;
    let only_conditions = reasons.len() == count
        && (0..count).all(|i| matches!(code(i), "None" | super::CONDITION_FAILED))
        && (0..count).any(failed);
    if !only_conditions {
        return (Vec::new(), units.into_iter().flatten().collect());
    }
    let mut again = Vec::new();
    let mut at = 0;
    for unit in units {
        let (effect, shared) = (at, unit.len() > 1);
        at += 1;
        for mut w in unit {
            let record = at;
            at += 1;
            if failed(record) || (failed(effect) && !shared) {
                let mine = [reasons.get(effect).cloned(), reasons.get(record).cloned()];
                let _ = w.answer.send(Verdict::Cancelled(Box::new(mine)));
            } else {
                if failed(effect) {
                    // A shared total was refused: whose add it was, only its own action says.
                    w.sum = None;
                }
                again.push(w);
            }
        }
    }
    (again, Vec::new())
}

/// The key of the item a transaction's action writes.
fn item_key(item: &TransactWriteItem) -> Option<(String, String)> {
    let key = |m: &std::collections::HashMap<String, AttributeValue>| {
        let part = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
        Some((part("pk")?, part("sk")?))
    };
    if let Some(put) = item.put() {
        key(put.item())
    } else if let Some(update) = item.update() {
        key(update.key())
    } else if let Some(check) = item.condition_check() {
        key(check.key())
    } else {
        item.delete().and_then(|d| key(d.key()))
    }
}
