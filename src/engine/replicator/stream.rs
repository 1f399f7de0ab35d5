//! Reading a region's table stream: iterators over a shard, and the age a lagged link waits.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

use super::{storage, Replica};
use crate::ports::PortError;
use crate::store::item::Item;

/// Whether a record may pass a link that lets records through at `min_age`.
pub(super) fn old_enough(record: &Record, min_age: Duration) -> bool {
    if min_age.is_zero() {
        return true;
    }
    let Some(created) = record
        .dynamodb()
        .and_then(|d| d.approximate_creation_date_time())
    else {
        return true;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    now - created.as_secs_f64() >= min_age.as_secs_f64()
}

/// An iterator over `from`'s shard after `position`, or from its start.
pub(super) async fn iterator(
    from: &Replica,
    arn: &str,
    shard: &str,
    position: Option<String>,
) -> Result<Option<String>, PortError> {
    let request = from
        .streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard);
    let request = match position {
        Some(seq) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(seq),
        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    Ok(request
        .send()
        .await
        .map_err(|e| storage("GetShardIterator", e))?
        .shard_iterator)
}

/// A stream image as an item DynamoDB takes (the two SDKs have their own value types).
pub(super) fn from_stream(image: &HashMap<String, StreamValue>) -> Item {
    image
        .iter()
        .map(|(k, v)| (k.clone(), from_stream_value(v)))
        .collect()
}

fn from_stream_value(v: &StreamValue) -> AttributeValue {
    match v {
        StreamValue::S(x) => AttributeValue::S(x.clone()),
        StreamValue::N(x) => AttributeValue::N(x.clone()),
        StreamValue::B(x) => AttributeValue::B(x.clone()),
        StreamValue::Ss(x) => AttributeValue::Ss(x.clone()),
        StreamValue::Ns(x) => AttributeValue::Ns(x.clone()),
        StreamValue::Bs(x) => AttributeValue::Bs(x.clone()),
        StreamValue::Bool(x) => AttributeValue::Bool(*x),
        StreamValue::Null(x) => AttributeValue::Null(*x),
        StreamValue::L(x) => AttributeValue::L(x.iter().map(from_stream_value).collect()),
        StreamValue::M(x) => AttributeValue::M(from_stream(x)),
        _ => AttributeValue::Null(true),
    }
}
