//! Applying stream records to another region's table, last writer wins, and keeping the
//! position replication has reached.
//!
//! A page of records is applied as few `TransactWriteItems` as it allows (at most
//! [`CHUNK`] writes each, one item never twice), the position joining the last one: a page
//! costs one round trip and one commit instead of one per record. Each write keeps its own
//! condition, so a record the target already holds a later write of is refused alone (its
//! cancellation reason), and the others are sent again without it. Any other failure applies
//! the chunk's records one at a time, as if they had never been grouped.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use aws_sdk_dynamodbstreams::types::{OperationType, Record};

use super::stream::from_stream;
use super::{storage, Replica};
use crate::contract::Region;
use crate::ports::PortError;
use crate::store::item::{n, s, Item, REP_AT, REP_IN, REP_SEQ};

/// When the target holds a later write of the item than the image: of the same region by
/// stream order (`rep_seq`), of another region by replication stamp (`rep_at`).
const NEWER_THERE: &str = "(#rep_in = :from AND attribute_exists(#rep_seq) AND #rep_seq >= :seq) \
                           OR (#rep_in <> :from AND #rep_at >= :rep_at)";
/// Most writes in one transaction: DynamoDB takes 100 items, one is the position.
const CHUNK: usize = 99;
/// The condition that keeps a position from moving back (two replicators may run at once).
const AHEAD: &str = "attribute_not_exists(seq) OR seq < :seq";

/// The key of the item keeping the position reached in `from`'s stream.
pub(super) fn position_pk(from: &Region) -> String {
    format!("replication#{from}")
}

/// One write to the target: a record's image put (or its item deleted), unless newer there.
#[derive(Clone)]
pub(super) struct Write {
    key: (String, String),
    write: TransactWriteItem,
}

impl Write {
    /// The partition key of the item written.
    pub(super) fn pk(&self) -> &str {
        &self.key.0
    }
}

fn built<T>(what: &str, r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, PortError> {
    r.map_err(|e| PortError::Storage {
        operation: format!("building {what}"),
        retryable: false,
        source: Box::new(e),
    })
}

/// The write that applies `record` to `to`, if the record is one to copy: only what `from`
/// wrote (its `rep_in`); copies and positions carry another region or none.
pub(super) fn write_of(
    from: &Replica,
    to: &Replica,
    record: &Record,
) -> Result<Option<Write>, PortError> {
    let Some(data) = record.dynamodb() else {
        return Ok(None);
    };
    let seq = data.sequence_number().unwrap_or_default();
    let removed = record.event_name() == Some(&OperationType::Remove);
    let image = if removed {
        data.old_image()
    } else {
        data.new_image()
    };
    let Some(mut image) = image.map(from_stream) else {
        return Ok(None);
    };
    if image
        .get(REP_IN)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        != Some(from.region.as_str())
    {
        return Ok(None);
    }
    let key_of = |name: &str| {
        image
            .get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let key = (key_of("pk"), key_of("sk"));
    let names = [
        ("#rep_in", REP_IN),
        ("#rep_seq", REP_SEQ),
        ("#rep_at", REP_AT),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let values = [
        (":from", s(from.region.as_str())),
        (":seq", n(seq)),
        (
            ":rep_at",
            image.get(REP_AT).cloned().unwrap_or_else(|| s("")),
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    let write = if removed {
        let only_key: Item = image
            .iter()
            .filter(|(k, _)| *k == "pk" || *k == "sk")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let delete = Delete::builder()
            .table_name(&to.table)
            .set_key(Some(only_key))
            .condition_expression(format!("attribute_exists(pk) AND NOT ({NEWER_THERE})"))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build();
        TransactWriteItem::builder()
            .delete(built("a replica's Delete", delete)?)
            .build()
    } else {
        image.insert(REP_SEQ.into(), n(seq));
        let put = Put::builder()
            .table_name(&to.table)
            .set_item(Some(image))
            .condition_expression(format!("attribute_not_exists(pk) OR NOT ({NEWER_THERE})"))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build();
        TransactWriteItem::builder()
            .put(built("a replica's Put", put)?)
            .build()
    };
    Ok(Some(Write { key, write }))
}

/// The attribute of a position holding the sequence number as the stream wrote it. `seq` (a
/// Number, for the condition that keeps a position from moving back) drops leading zeros,
/// and a stream that looks numbers up by their text (MiniStack pads them with zeros) refuses
/// the Number's: `TrimmedDataAccessException: Sequence number … not found on stream`.
pub(super) const SEQ_TEXT: &str = "seq_text";

/// The write that moves `from`'s position in `to` to `seq`, never back.
fn position_write(
    from: &Replica,
    to: &Replica,
    shard: &str,
    seq: &str,
) -> Result<TransactWriteItem, PortError> {
    let put = Put::builder()
        .table_name(&to.table)
        .item("pk", s(position_pk(&from.region)))
        .item("sk", s(shard))
        .item("seq", n(seq))
        .item(SEQ_TEXT, s(seq))
        .condition_expression(AHEAD)
        .expression_attribute_values(":seq", n(seq))
        .build();
    Ok(TransactWriteItem::builder()
        .put(built("the position's Put", put)?)
        .build())
}

/// Applies `writes` (in stream order) to `to` and moves the position of `from`'s `shard` to
/// `seq`; answers how many writes changed something.
pub(super) async fn apply_all(
    from: &Replica,
    to: &Replica,
    writes: Vec<Write>,
    (shard, seq): (&str, &str),
    batched: bool,
) -> Result<u64, PortError> {
    // Of two writes of one item in a page, the later wins anyway: only it is sent.
    let mut last: Vec<Write> = Vec::with_capacity(writes.len());
    for w in writes.into_iter().rev() {
        if !last.iter().any(|l| l.key == w.key) {
            last.push(w);
        }
    }
    last.reverse();
    let mut chunks: Vec<Vec<Write>> = last.chunks(CHUNK).map(<[Write]>::to_vec).collect();
    if chunks.is_empty() {
        // Nothing to copy in the page: the position still moves past it.
        chunks.push(Vec::new());
    }
    let count = chunks.len();
    let mut applied = 0;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let position = if i + 1 == count {
            Some(position_write(from, to, shard, seq)?)
        } else {
            None
        };
        applied += if batched {
            apply_chunk(to, chunk, position).await?
        } else {
            one_at_a_time(to, chunk, position).await?
        };
    }
    Ok(applied)
}

/// One transaction of `chunk` and `position`; writes whose condition fails are dropped and the
/// rest sent again. Answers how many writes of the chunk were applied.
async fn apply_chunk(
    to: &Replica,
    mut chunk: Vec<Write>,
    mut position: Option<TransactWriteItem>,
) -> Result<u64, PortError> {
    loop {
        if chunk.is_empty() && position.is_none() {
            return Ok(0);
        }
        let items: Vec<TransactWriteItem> = chunk
            .iter()
            .map(|w| w.write.clone())
            .chain(position.clone())
            .collect();
        let sent = to
            .dynamo
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match sent {
            Ok(_) => return Ok(chunk.len() as u64),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error()
        else {
            return one_at_a_time(to, chunk, position).await;
        };
        let reasons = c.cancellation_reasons();
        let failed = |i: usize| {
            reasons.get(i).and_then(|r| r.code()) == Some(crate::store::CONDITION_FAILED)
        };
        let total = chunk.len() + usize::from(position.is_some());
        let only_conditions = reasons.len() == total
            && reasons.iter().all(|r| {
                matches!(
                    r.code(),
                    None | Some("None") | Some(crate::store::CONDITION_FAILED)
                )
            })
            && (0..total).any(failed);
        if !only_conditions {
            return one_at_a_time(to, chunk, position).await;
        }
        // Refused: the target holds a later write of the item, or a later position.
        if position.is_some() && failed(chunk.len()) {
            position = None;
        }
        let mut i = 0;
        chunk.retain(|_| {
            i += 1;
            !failed(i - 1)
        });
    }
}

/// The chunk's writes one call each (`PutItem`, `DeleteItem`), then the position: the path for
/// a failure that names no refused write (an item the store takes alone, an emulator's
/// limits), and the whole path where transactions cost more than they save
/// ([`super::Replicator::one_at_a_time`]).
pub(super) async fn one_at_a_time(
    to: &Replica,
    chunk: Vec<Write>,
    position: Option<TransactWriteItem>,
) -> Result<u64, PortError> {
    let mut applied = 0;
    for w in chunk.into_iter().map(|w| w.write).chain(position) {
        let is_position = w
            .put()
            .is_some_and(|p| p.condition_expression() == Some(AHEAD));
        let done = if let Some(p) = w.put() {
            to.dynamo
                .put_item()
                .table_name(p.table_name())
                .set_item(Some(p.item().clone()))
                .set_condition_expression(p.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(p.expression_attribute_names().cloned())
                .set_expression_attribute_values(p.expression_attribute_values().cloned())
                .send()
                .await
                .map(|_| ())
                .map_err(crate::sdk::SdkFailure::from)
        } else if let Some(d) = w.delete() {
            to.dynamo
                .delete_item()
                .table_name(d.table_name())
                .set_key(Some(d.key().clone()))
                .set_condition_expression(d.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(d.expression_attribute_names().cloned())
                .set_expression_attribute_values(d.expression_attribute_values().cloned())
                .send()
                .await
                .map(|_| ())
                .map_err(crate::sdk::SdkFailure::from)
        } else {
            Ok(())
        };
        match done {
            Ok(()) => applied += u64::from(!is_position),
            // The target holds a later write (or a later position): nothing to do.
            Err(f) if f.is("ConditionalCheckFailedException") => {}
            Err(f) => return Err(storage("a replica write", f)),
        }
    }
    Ok(applied)
}
