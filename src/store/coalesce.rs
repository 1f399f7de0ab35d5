//! Group commit: the effects of records in flight together share one `TransactWriteItems`.
//!
//! A batch's records run concurrently ([`crate::invoke::batch_of`]), and each writes its
//! effect with its idempotency record in one transaction. Sent one by one, ten records cost
//! ten round trips, which the store may apply one after another. Here the first record to
//! arrive waits one turn of its task, so the records polled with it join it; then all of
//! them go in one transaction (at most [`MAX_RECORDS`]), and each record gets the verdict
//! of its own two items:
//!
//! - the transaction succeeds: every record is applied;
//! - it is cancelled, and every cancellation is a failed condition: the records whose
//!   condition failed get their verdict (a duplicate, an id reused, an overflowing share), the
//!   others are sent again together;
//! - anything else (a throttle, a conflict, an item the store refuses, a lost connection):
//!   each record is sent again alone, as if it had never been grouped, so one bad record
//!   fails alone and a transient failure is retried per record, never hidden.
//!
//! A record alone, as in the simulation which runs them one at a time, is never grouped.
//! Two records writing the same item never share a transaction (DynamoDB refuses that): one
//! of them waits for the next.

use std::sync::Mutex;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use tokio::sync::oneshot;

/// The most records one transaction carries (DynamoDB takes 100 items: two per record).
pub const MAX_RECORDS: usize = 50;

/// What became of a record sent with others.
#[derive(Debug)]
pub enum Verdict {
    /// The transaction took effect, with this record's effect and idempotency record.
    Applied,
    /// The transaction was cancelled by a condition of this record: the reasons for its effect
    /// and for its idempotency record.
    Cancelled(Box<[Option<CancellationReason>; 2]>),
    /// It was not grouped, or its group failed otherwise: the record must be sent alone.
    Alone,
}

struct Waiting {
    items: [TransactWriteItem; 2],
    keys: [Option<(String, String)>; 2],
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

    /// Sends `[effect, record]` with whatever else is in flight with it.
    pub async fn submit(
        &self,
        dynamo: &aws_sdk_dynamodb::Client,
        items: [TransactWriteItem; 2],
    ) -> Verdict {
        let (answer, verdict) = oneshot::channel();
        let keys = [item_key(&items[0]), item_key(&items[1])];
        let leads = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.push(Waiting {
                items,
                keys,
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
        verdict.await.unwrap_or(Verdict::Alone)
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
        for w in self.take() {
            let _ = w.answer.send(Verdict::Alone);
        }
    }
}

/// Sends a group in as few transactions as its items allow, answering every record.
async fn send_all(dynamo: &aws_sdk_dynamodb::Client, group: Vec<Waiting>) {
    // Only records whose items' keys are known can be grouped, and only two or more.
    let (mut group, mut alone): (Vec<_>, Vec<_>) = group
        .into_iter()
        .partition(|w| w.keys.iter().all(Option::is_some));
    if group.len() < 2 {
        alone.append(&mut group);
    }
    for w in alone {
        let _ = w.answer.send(Verdict::Alone);
    }
    // Each transaction takes at least the first record left, so this ends.
    while !group.is_empty() {
        let (now, later) = split(group);
        group = later;
        send_one(dynamo, now).await;
    }
}

/// The records that go in the next transaction (no item twice, at most [`MAX_RECORDS`]),
/// and the rest, in their order.
fn split(group: Vec<Waiting>) -> (Vec<Waiting>, Vec<Waiting>) {
    let mut seen = std::collections::HashSet::new();
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for w in group {
        let fresh = now.len() < MAX_RECORDS && w.keys.iter().flatten().all(|k| !seen.contains(k));
        if fresh {
            seen.extend(w.keys.iter().flatten().cloned());
            now.push(w);
        } else {
            later.push(w);
        }
    }
    (now, later)
}

/// Sends records in one transaction until each has its verdict.
async fn send_one(dynamo: &aws_sdk_dynamodb::Client, mut group: Vec<Waiting>) {
    while group.len() > 1 {
        let items = group.iter().flat_map(|w| w.items.iter().cloned());
        let sent = dynamo
            .transact_write_items()
            .set_transact_items(Some(items.collect()))
            .send()
            .await;
        let reasons = match sent {
            Ok(_) => {
                for w in group {
                    let _ = w.answer.send(Verdict::Applied);
                }
                return;
            }
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons().to_vec()
                }
                _ => break,
            },
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        let only_conditions = reasons.len() == 2 * group.len()
            && (0..reasons.len()).all(|i| matches!(code(i), "None" | super::CONDITION_FAILED))
            && (0..reasons.len()).any(|i| code(i) == super::CONDITION_FAILED);
        if !only_conditions {
            break;
        }
        let mut again = Vec::with_capacity(group.len());
        for (j, w) in group.into_iter().enumerate() {
            if code(2 * j) == "None" && code(2 * j + 1) == "None" {
                again.push(w);
            } else {
                let mine = [reasons.get(2 * j).cloned(), reasons.get(2 * j + 1).cloned()];
                let _ = w.answer.send(Verdict::Cancelled(Box::new(mine)));
            }
        }
        group = again;
    }
    for w in group {
        let _ = w.answer.send(Verdict::Alone);
    }
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
