//! SQS behind the [`Queue`] port, for the shared event source mapping on an emulator.

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};

use crate::contract::Region;
use crate::engine::queue::{Queue, QueueError, Received};
use crate::engine::DeadLetter;
use crate::sdk::SdkFailure;
use crate::store::DynamoStore;

/// What SQS answered that the engine cannot go on with.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// `GetQueueAttributes` named no `QueueArn`.
    #[error("the queue has no ARN")]
    NoArn,
    /// A batch call left some entries as they were.
    #[error("{messages} message(s) unchanged: {code}: {message}")]
    Unchanged {
        messages: usize,
        code: String,
        message: String,
    },
}

/// Most messages `dead_letters` reads from one DLQ.
const MAX_DEAD_LETTERS: usize = 1_000;
/// How long `dead_letters` hides the messages it has read, so the next receive returns others;
/// they are made visible again right after.
const DLQ_PEEK_SECONDS: i32 = 30;

/// Where a queue is.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    /// Its URL.
    pub url: String,
    /// Its ARN.
    pub arn: String,
}

/// One SQS queue in front of a function, with its DLQ.
pub struct SqsQueue {
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) region: Region,
    pub(super) name: String,
    pub(super) queue: QueueHandle,
    pub(super) dlq: QueueHandle,
    /// Where why a message failed is kept (SQS moves dead letters without a reason).
    pub(super) store: DynamoStore,
    /// Emulator: a failed record is shown again at once instead of after the visibility
    /// timeout, so a run does not wait minutes for retries.
    pub(super) retry_at_once: bool,
}

fn failed<'a>(
    queue: &'a str,
    operation: &'static str,
) -> impl FnOnce(SdkFailure) -> QueueError + 'a {
    move |e| QueueError {
        queue: queue.to_owned(),
        operation,
        retryable: e.retryable,
        source: Box::new(e),
    }
}

/// The receive count SQS reports for a message.
fn receive_count(msg: &Message) -> u32 {
    msg.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// A queue's ARN.
pub(super) async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, QueueError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| failed(url, "GetQueueAttributes")(e.into()))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| QueueError {
            queue: url.to_owned(),
            operation: "GetQueueAttributes",
            retryable: false,
            source: Box::new(Refused::NoArn),
        })
}

/// Messages waiting in a queue, visible or in flight.
pub(super) async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, QueueError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| failed(url, "GetQueueAttributes")(e.into()))?;
    Ok(out
        .attributes()
        .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0))
}

impl SqsQueue {
    async fn change_visibility(
        &self,
        url: &str,
        handles: &[&str],
        seconds: i32,
    ) -> Result<(), QueueError> {
        for chunk in handles.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*h)
                    .visibility_timeout(seconds)
                    .build()
                    .expect("id and receipt handle are set")
            });
            let out = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .map_err(|e| failed(&self.name, "ChangeMessageVisibilityBatch")(e.into()))?;
            if let Some(f) = out.failed().first() {
                return Err(QueueError {
                    queue: self.name.clone(),
                    operation: "ChangeMessageVisibilityBatch",
                    retryable: !f.sender_fault(),
                    source: Box::new(Refused::Unchanged {
                        messages: out.failed().len(),
                        code: f.code().to_owned(),
                        message: f.message().unwrap_or_default().to_owned(),
                    }),
                });
            }
        }
        Ok(())
    }

    /// Reads every message of the DLQ (up to a limit) without taking it away.
    async fn peek_dlq(&self) -> Result<Vec<Message>, QueueError> {
        let mut read: Vec<Message> = Vec::new();
        while read.len() < MAX_DEAD_LETTERS {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.dlq.url)
                .max_number_of_messages(10)
                .visibility_timeout(DLQ_PEEK_SECONDS)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| failed(&self.name, "ReceiveMessage (DLQ)")(e.into()))?;
            if out.messages().is_empty() {
                break;
            }
            for msg in out.messages() {
                if !read.iter().any(|m| m.message_id() == msg.message_id()) {
                    read.push(msg.clone());
                }
            }
        }
        let handles: Vec<&str> = read.iter().filter_map(Message::receipt_handle).collect();
        self.change_visibility(&self.dlq.url, &handles, 0).await?;
        Ok(read)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn arn(&self) -> &str {
        &self.queue.arn
    }

    async fn receive(&self, max: u32) -> Result<Vec<Received>, QueueError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| failed(&self.name, "ReceiveMessage")(e.into()))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                Some(Received {
                    message_id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: receive_count(m),
                })
            })
            .collect())
    }

    async fn delete(&self, done: &[&Received]) -> Result<(), QueueError> {
        for chunk in done.chunks(10) {
            let entries = chunk.iter().enumerate().map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt)
                    .build()
                    .expect("id and receipt handle are set")
            });
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue.url)
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .map_err(|e| failed(&self.name, "DeleteMessageBatch")(e.into()))?;
            // A message not deleted (its receipt expired, or a retried call finds it already
            // deleted) comes back after its visibility timeout and is handled as a duplicate:
            // it costs a delivery, never an effect, so the pass goes on.
            for f in out.failed() {
                tracing::warn!(
                    queue = %self.name,
                    code = f.code(),
                    message = f.message().unwrap_or_default(),
                    "a handled message was not deleted; it will be delivered again"
                );
            }
        }
        Ok(())
    }

    async fn release(&self, failed_: &[(&Received, String)]) -> Result<(), QueueError> {
        for (msg, reason) in failed_ {
            let kept = self
                .store
                .record_failure(&self.name, &msg.message_id, msg.receive_count, reason)
                .await;
            if let Err(e) = kept {
                // The reason is a courtesy to whoever reads the DLQ; the retry matters more.
                tracing::warn!(message_id = %msg.message_id, error = %crate::report(&e), "cannot record why a message failed");
            }
        }
        if self.retry_at_once {
            let handles: Vec<&str> = failed_.iter().map(|(m, _)| m.receipt.as_str()).collect();
            self.change_visibility(&self.queue.url, &handles, 0).await?;
        }
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let mut letters = Vec::new();
        for msg in self.peek_dlq().await? {
            let message_id = msg.message_id().unwrap_or_default().to_owned();
            let recorded = self
                .store
                .failure(&message_id)
                .await
                .map_err(|e| QueueError {
                    queue: self.name.clone(),
                    operation: "reading why a dead letter failed",
                    retryable: e.is_retryable(),
                    source: Box::new(e),
                })?;
            // Reading the DLQ just counted one more receive.
            let seen = receive_count(&msg).saturating_sub(1).max(1);
            let (reason, receive_count) = match recorded {
                Some((reason, count)) if count > 0 => (reason, count),
                _ => (
                    format!(
                        "failed {seen} time(s) in {}; no reason was recorded",
                        self.name
                    ),
                    seen,
                ),
            };
            letters.push(DeadLetter {
                region: self.region.clone(),
                queue: self.name.clone(),
                message_id,
                receive_count,
                reason,
                body: msg.body().unwrap_or_default().to_owned(),
            });
        }
        Ok(letters)
    }
}
