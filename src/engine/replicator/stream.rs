//! Reading a region's table stream: iterators over a shard, and the age a lagged link waits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

use super::{storage, Replica};
use crate::ports::PortError;

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
