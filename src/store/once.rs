//! Exactly once: each effect goes with its idempotency record in one transaction, and a
//! cancelled transaction says whether the effect was applied before (module [`super`]).

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::Utc;

use super::item::{n, s, text, timestamp};
use super::storage;
use super::{
    build_error, coalesce, DynamoStore, APPLIED_TTL_SECONDS, CONDITION_FAILED, DIGEST, RECORD_INDEX,
};
use crate::ports::{EffectKey, Outcome, PortError};

impl DynamoStore {
    /// The idempotency record of `key`, written only if absent.
    fn applied_record(&self, key: &EffectKey) -> Result<TransactWriteItem, PortError> {
        let now = Utc::now();
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("applied#{key}")))
            .item("sk", s("applied"))
            .item("applied_at", s(timestamp(&now)))
            .item("expires_at", n(now.timestamp() + APPLIED_TTL_SECONDS))
            .item(DIGEST, s(&key.digest))
            .condition_expression("attribute_not_exists(pk)")
            // A cancelled transaction then says what the record holds, in the same round trip.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in self.stamp() {
            put = put.item(name, value);
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    /// Writes `effect` and the idempotency record of `key` in one transaction, shared with
    /// the other records in flight ([`coalesce`]). A failed condition on the record means the
    /// effect was applied before; one on the effect is answered by `on_effect_condition`. An
    /// effect that is a [`coalesce::Sum`] may share its action with others adding to its item.
    pub(super) async fn apply_once(
        &self,
        key: &EffectKey,
        effect: TransactWriteItem,
        sum: Option<coalesce::Sum>,
        on_effect_condition: impl FnOnce() -> PortError,
    ) -> Result<Outcome, PortError> {
        let record = self.applied_record(key)?;
        let items = [effect.clone(), record.clone()];
        match self.coalescer.submit(&self.dynamo, items, sum).await {
            coalesce::Verdict::Applied => Ok(Outcome::Applied),
            coalesce::Verdict::Cancelled(reasons) => {
                let [effect_reason, record_reason] = *reasons;
                self.judge(
                    key,
                    [effect_reason.as_ref(), record_reason.as_ref()],
                    on_effect_condition,
                )
                .await
                .unwrap_or_else(|| Err(cancelled_without_condition()))
            }
            coalesce::Verdict::Alone(mut turn) => {
                // After the record before it that writes the same item, if any; the turn is
                // held until this one is done.
                turn.wait().await;
                let result = self
                    .apply_alone(key, effect, record, on_effect_condition)
                    .await;
                drop(turn);
                result
            }
        }
    }

    /// [`Self::apply_once`] in a transaction of its own.
    async fn apply_alone(
        &self,
        key: &EffectKey,
        effect: TransactWriteItem,
        record: TransactWriteItem,
        on_effect_condition: impl FnOnce() -> PortError,
    ) -> Result<Outcome, PortError> {
        let result = self
            .dynamo
            .transact_write_items()
            .transact_items(effect)
            .transact_items(record)
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(Outcome::Applied),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            e.as_service_error()
        {
            let reasons = cancelled.cancellation_reasons();
            let verdict = self
                .judge(
                    key,
                    [reasons.first(), reasons.get(RECORD_INDEX)],
                    on_effect_condition,
                )
                .await;
            if let Some(verdict) = verdict {
                return verdict;
            }
        }
        Err(storage("TransactWriteItems", e))
    }

    /// The verdict on an effect whose transaction was cancelled, from the reasons given for
    /// its effect and its idempotency record; `None` when neither condition failed.
    async fn judge(
        &self,
        key: &EffectKey,
        [effect, record]: [Option<&CancellationReason>; 2],
        on_effect_condition: impl FnOnce() -> PortError,
    ) -> Option<Result<Outcome, PortError>> {
        if record.and_then(|r| r.code()) == Some(CONDITION_FAILED) {
            let kept = record
                .and_then(|r| r.item())
                .and_then(|item| text(item, DIGEST));
            let kept = match kept {
                Some(d) => Some(d.to_owned()),
                None => match self.kept_digest(key).await {
                    Ok(d) => d,
                    Err(e) => return Some(Err(e)),
                },
            };
            // A record from before digests were kept has none: a duplicate, as it was then.
            return Some(match kept {
                Some(d) if d != key.digest => Err(PortError::Reused {
                    id: key.id.clone(),
                    function: key.function,
                }),
                _ => Ok(Outcome::Duplicate),
            });
        }
        if effect.and_then(|r| r.code()) == Some(CONDITION_FAILED) {
            return Some(Err(on_effect_condition()));
        }
        None
    }

    /// The digest kept with `key`'s idempotency record (for a store that does not return the
    /// record with the cancelled transaction).
    async fn kept_digest(&self, key: &EffectKey) -> Result<Option<String>, PortError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("applied#{key}")))
            .key("sk", s("applied"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem (idempotency record)", e))?;
        Ok(out
            .item()
            .and_then(|item| text(item, DIGEST))
            .map(str::to_owned))
    }
}

/// A transaction DynamoDB cancelled for no reason this record explains.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    /// An entry written with no condition of its own was refused.
    #[error("an unconditional entry was refused")]
    UnconditionalEntry,
    /// A grouped transaction was cancelled, but neither of this record's conditions failed.
    #[error("cancelled, with no failed condition of this record")]
    WithoutCondition,
}

/// A grouped transaction said this record's condition failed, but neither of its own did.
fn cancelled_without_condition() -> PortError {
    PortError::Storage {
        operation: "TransactWriteItems".into(),
        retryable: true,
        source: Box::new(Refused::WithoutCondition),
    }
}
