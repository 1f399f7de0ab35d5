//! Failure records: why a queued message failed, kept for whoever reads its dead letter.

use chrono::Utc;

use super::item::{n, s, text, timestamp};
use super::storage;
use super::DynamoStore;
use crate::ports::PortError;

/// How long a failure record is kept: as long as SQS may keep the dead letter it explains.
const FAILURE_TTL_SECONDS: i64 = 14 * 24 * 3600;

impl DynamoStore {
    /// Keeps why a queued message failed (on which receive), for whoever reads its dead letter:
    /// SQS moves a message to its DLQ as it was sent, without the reason.
    pub async fn record_failure(
        &self,
        queue: &str,
        message_id: &str,
        receive_count: u32,
        reason: &str,
    ) -> Result<(), PortError> {
        let now = Utc::now();
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(format!("failure#{message_id}")))
            .item("sk", s("failure"))
            .item("queue", s(queue))
            .item("reason", s(reason))
            .item("receive_count", n(receive_count))
            .item("failed_at", s(timestamp(&now)))
            .item("expires_at", n(now.timestamp() + FAILURE_TTL_SECONDS))
            .send()
            .await
            .map_err(|e| storage("PutItem (failure record)", e))?;
        Ok(())
    }

    /// Why a queued message last failed, and on which receive, if it was recorded.
    pub async fn failure(&self, message_id: &str) -> Result<Option<(String, u32)>, PortError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(self.table())
            .key("pk", s(format!("failure#{message_id}")))
            .key("sk", s("failure"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem (failure record)", e))?;
        Ok(out.item().map(|item| {
            let reason = text(item, "reason").unwrap_or_default().to_owned();
            let count = item
                .get("receive_count")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            (reason, count)
        }))
    }
}
