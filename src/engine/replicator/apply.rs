//! Applying one stream record to another region's table, last writer wins, and keeping the
//! position replication has reached.

use aws_sdk_dynamodbstreams::types::{OperationType, Record};

use super::{storage, Replica};
use crate::contract::Region;
use crate::ports::PortError;
use crate::store::item::{from_stream, n, s, Item, REP_AT, REP_IN, REP_SEQ};

/// When the target holds a later write of the item than the image: of the same region by
/// stream order (`rep_seq`), of another region by replication stamp (`rep_at`).
const NEWER_THERE: &str = "(#rep_in = :from AND attribute_exists(#rep_seq) AND #rep_seq >= :seq) \
                           OR (#rep_in <> :from AND #rep_at >= :rep_at)";

/// The key of the item keeping the position reached in `from`'s stream.
pub(super) fn position_pk(from: &Region) -> String {
    format!("replication#{from}")
}

/// Stores the position, never moving it back (two replicators may run at once).
pub(super) async fn save_position(
    from: &Replica,
    to: &Replica,
    shard: &str,
    seq: &str,
) -> Result<(), PortError> {
    let put = to
        .dynamo
        .put_item()
        .table_name(&to.table)
        .item("pk", s(position_pk(&from.region)))
        .item("sk", s(shard))
        .item("seq", n(seq))
        .condition_expression("attribute_not_exists(seq) OR seq < :seq")
        .expression_attribute_values(":seq", n(seq))
        .send()
        .await;
    match put {
        Err(e)
            if !e
                .as_service_error()
                .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
        {
            Err(storage("PutItem (position)", e))
        }
        _ => Ok(()),
    }
}

/// Applies one stream record to `to`; answers whether it changed anything.
pub(super) async fn apply(
    from: &Replica,
    to: &Replica,
    record: &Record,
) -> Result<bool, PortError> {
    let Some(data) = record.dynamodb() else {
        return Ok(false);
    };
    let seq = data.sequence_number().unwrap_or_default();
    let removed = record.event_name() == Some(&OperationType::Remove);
    let image = if removed {
        data.old_image()
    } else {
        data.new_image()
    };
    let Some(image) = image.map(from_stream) else {
        return Ok(false);
    };
    // Only what this region wrote: copies and positions carry another region or none.
    if image
        .get(REP_IN)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        != Some(from.region.as_str())
    {
        return Ok(false);
    }
    let mut condition = Condition {
        names: vec![
            ("#rep_in", REP_IN),
            ("#rep_seq", REP_SEQ),
            ("#rep_at", REP_AT),
        ],
        values: vec![
            (":from", s(from.region.as_str())),
            (":seq", n(seq)),
            (
                ":rep_at",
                image.get(REP_AT).cloned().unwrap_or_else(|| s("")),
            ),
        ],
    };
    let result = if removed {
        remove(to, &image, &mut condition).await
    } else {
        let mut item = image;
        item.insert(REP_SEQ.into(), n(seq));
        put(to, item, &mut condition).await
    };
    match result {
        Ok(()) => Ok(true),
        // The target holds this write or a later one: nothing to do.
        Err((true, _)) => Ok(false),
        Err((false, e)) => Err(e),
    }
}

/// The names and values of a replica write's condition.
struct Condition {
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>,
}

/// Whether a failed write failed its condition (the target is newer), and the error.
type Refused = (bool, PortError);

fn refused<E>(
    operation: &str,
    e: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Refused
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    let failure = crate::store::SdkFailure::from(e);
    (
        failure.is("ConditionalCheckFailedException"),
        storage(operation, failure),
    )
}

async fn put(to: &Replica, item: Item, c: &mut Condition) -> Result<(), Refused> {
    let mut put = to
        .dynamo
        .put_item()
        .table_name(&to.table)
        .set_item(Some(item))
        .condition_expression(format!("attribute_not_exists(pk) OR NOT ({NEWER_THERE})"));
    for (k, v) in c.names.drain(..) {
        put = put.expression_attribute_names(k, v);
    }
    for (k, v) in c.values.drain(..) {
        put = put.expression_attribute_values(k, v);
    }
    put.send()
        .await
        .map(|_| ())
        .map_err(|e| refused("PutItem (replica)", e))
}

async fn remove(to: &Replica, image: &Item, c: &mut Condition) -> Result<(), Refused> {
    let key: Item = image
        .iter()
        .filter(|(k, _)| *k == "pk" || *k == "sk")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut del = to
        .dynamo
        .delete_item()
        .table_name(&to.table)
        .set_key(Some(key))
        .condition_expression(format!("attribute_exists(pk) AND NOT ({NEWER_THERE})"));
    for (k, v) in c.names.drain(..) {
        del = del.expression_attribute_names(k, v);
    }
    for (k, v) in c.values.drain(..) {
        del = del.expression_attribute_values(k, v);
    }
    del.send()
        .await
        .map(|_| ())
        .map_err(|e| refused("DeleteItem (replica)", e))
}
