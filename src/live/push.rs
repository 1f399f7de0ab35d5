//! The `push` function's work: new inbox entries from a DynamoDB stream batch, each sent to its
//! recipient's connections in this region.

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::Value;

use super::{Connections, PostError, Sockets};
pub use crate::api::live::Pushed;
use crate::contract::Participant;
use crate::ports::InboxEntry;
use crate::store::item;

/// What a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Inbox entries in the batch (other items of the table are not pushed).
    pub entries: usize,
    /// Posts that reached a connection.
    pub delivered: usize,
    /// Connections found gone (410) and deleted.
    pub gone: usize,
    /// Connections-table reads (one Query per recipient per batch).
    pub reads: usize,
    /// Records skipped because they cannot be read (logged; trying them again would not help).
    pub unreadable: usize,
    /// The sequence numbers of the records to try again (`batchItemFailures`).
    pub failed: Vec<String>,
}

impl Outcome {
    /// The answer to the stream's event source mapping (`ReportBatchItemFailures`).
    pub fn response(&self) -> Value {
        let failures: Vec<Value> = self
            .failed
            .iter()
            .map(|seq| serde_json::json!({ "itemIdentifier": seq }))
            .collect();
        serde_json::json!({ "batchItemFailures": failures })
    }
}

/// One readable new inbox entry of the batch.
struct New {
    sequence: String,
    owner: Participant,
    entry: InboxEntry,
}

/// Reads one stream record: `Ok(None)` for what is not pushed (not an insert, not an inbox
/// entry), `Err` for an inbox record that cannot be read.
fn read(record: &Value) -> Result<Option<New>, String> {
    let record: EventRecord = serde_json::from_value(record.clone())
        .map_err(|e| format!("not a DynamoDB stream record: {e}"))?;
    if record.event_name != "INSERT" {
        return Ok(None);
    }
    let image = &record.change.new_image;
    let text = |name: &str| match image.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    let Some(owner) = text("pk").and_then(|pk| pk.strip_prefix("inbox#").map(str::to_owned)) else {
        return Ok(None);
    };
    let sequence = record
        .change
        .sequence_number
        .clone()
        .ok_or("the record has no SequenceNumber")?;
    let owner = Participant::parse(&owner).map_err(|e| format!("inbox of {owner:?}: {e}"))?;
    let sdk_item: item::Item = image
        .iter()
        .filter_map(|(k, v)| match v {
            serde_dynamo::AttributeValue::S(s) => Some((
                k.clone(),
                aws_sdk_dynamodb::types::AttributeValue::S(s.clone()),
            )),
            _ => None,
        })
        .collect();
    let entry = item::inbox_entry(&sdk_item).map_err(|e| format!("inbox entry: {e}"))?;
    Ok(Some(New {
        sequence,
        owner,
        entry,
    }))
}

/// Pushes the new inbox entries of `records` (a stream batch's `Records`) to their recipients'
/// connections. A record whose recipient's connections cannot be read, or one of whose posts
/// failed other than with 410, is reported failed; the others succeed. Entries go out in the
/// stream's order, one recipient's after another's.
pub async fn push(
    records: &[Value],
    connections: &dyn Connections,
    sockets: &dyn Sockets,
    now: i64,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut by_owner: BTreeMap<Participant, Vec<New>> = BTreeMap::new();
    for record in records {
        match read(record) {
            Ok(Some(new)) => by_owner.entry(new.owner.clone()).or_default().push(new),
            Ok(None) => {}
            Err(e) => {
                outcome.unreadable += 1;
                tracing::error!(error = %e, error_type = "Permanent.InvalidRecord", "skipped a stream record");
            }
        }
    }
    for (owner, entries) in by_owner {
        outcome.entries += entries.len();
        outcome.reads += 1;
        let open = match connections.of(&owner, now).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(%owner, error = %crate::report(&e), "cannot read the connections: the entries are tried again");
                outcome
                    .failed
                    .extend(entries.into_iter().map(|n| n.sequence));
                continue;
            }
        };
        let mut gone: Vec<String> = Vec::new();
        for new in entries {
            let frame = Pushed {
                kind: "inbox".into(),
                owner: owner.to_string(),
                entry: new.entry,
            };
            let data = serde_json::to_vec(&frame).expect("a pushed entry serializes");
            let mut failed = false;
            let targets: Vec<String> = open.iter().filter(|c| !gone.contains(c)).cloned().collect();
            for connection in targets {
                match sockets.post(&connection, &data).await {
                    Ok(()) => outcome.delivered += 1,
                    Err(PostError::Gone) => gone.push(connection),
                    Err(PostError::Failed(e)) => {
                        tracing::warn!(%owner, %connection, id = %frame.entry.id, error = %crate::report(&e), "cannot push: the entry is tried again");
                        failed = true;
                    }
                }
            }
            if failed {
                outcome.failed.push(new.sequence);
            }
        }
        for connection in gone {
            outcome.gone += 1;
            if let Err(e) = connections.close(&owner, &connection).await {
                tracing::warn!(%owner, %connection, error = %crate::report(&e), "cannot delete a gone connection (its TTL will)");
            }
        }
    }
    outcome
}
