//! The front door's request records: one per event id it publishes, with a digest of the
//! request, so a retry with the same id is answered as before and an id taken by another
//! request is refused (HTTP 409), before anything is published.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::Utc;

use super::item::{n, s, text, timestamp};
use super::{storage, DynamoStore, APPLIED_TTL_SECONDS, DIGEST};
use crate::ports::{Acceptance, PortError, RequestKey, Requests};

#[async_trait]
impl Requests for DynamoStore {
    async fn accept(&self, key: &RequestKey) -> Result<Acceptance, PortError> {
        let now = Utc::now();
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(format!("request#{}", key.id)))
            .item("sk", s("request"))
            .item("accepted_at", s(timestamp(&now)))
            // As long as the effects' own records: a retry within it is answered the same.
            .item("expires_at", n(now.timestamp() + APPLIED_TTL_SECONDS))
            .item(DIGEST, s(&key.digest))
            .condition_expression("attribute_not_exists(pk)")
            // A refused write says what the record holds, in the same round trip.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in self.stamp() {
            put = put.item(name, value);
        }
        match put.send().await {
            Ok(_) => Ok(Acceptance::New),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                    let held = refused.item().and_then(|item| text(item, DIGEST));
                    Ok(if held == Some(key.digest.as_str()) {
                        Acceptance::Again
                    } else {
                        Acceptance::Conflict
                    })
                }
                _ => Err(storage("PutItem (request record)", e)),
            },
        }
    }
}
