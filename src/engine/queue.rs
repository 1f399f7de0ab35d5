//! The queue port: what the event source mapping needs of a queue. The embedded engine's
//! SQLite queues and SQS both implement it; [`super::pump`] is written once over it.

use async_trait::async_trait;

use super::DeadLetter;
use crate::ports::Cause;

/// A message received from a queue, hidden from other receivers until settled or timed out.
#[derive(Debug, Clone)]
pub struct Received {
    /// The queue's id of the message.
    pub message_id: String,
    /// What deletes or releases this receive of it.
    pub receipt: String,
    /// The message (an EventBridge event, as a rule delivers it).
    pub body: String,
    /// How often it has been received, this time included.
    pub receive_count: u32,
}

/// A queue operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("queue {queue}: {operation} failed")]
pub struct QueueError {
    /// The queue.
    pub queue: String,
    /// The operation.
    pub operation: &'static str,
    /// Whether doing it again may succeed.
    pub retryable: bool,
    /// Why.
    #[source]
    pub source: Cause,
}

/// A queue in front of a function.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Its name.
    fn name(&self) -> &str;

    /// Its ARN, as the records of a batch name it.
    fn arn(&self) -> &str;

    /// Receives up to `max` visible messages and hides them for the visibility timeout. A
    /// message received as often as the redrive policy allows goes to the dead letters instead.
    async fn receive(&self, max: u32) -> Result<Vec<Received>, QueueError>;

    /// Deletes messages that were handled.
    async fn delete(&self, done: &[&Received]) -> Result<(), QueueError>;

    /// Leaves failed messages for a later receive, keeping why each failed.
    async fn release(&self, failed: &[(&Received, String)]) -> Result<(), QueueError>;

    /// The messages set aside after their last receive, with why each last failed.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError>;

    /// Notes what became of each message of a handled batch (its results carry the message
    /// ids), before it is settled: the embedded engine's journal keeps it (`moebi trace`,
    /// `moebi stats`); SQS keeps nothing.
    async fn note(&self, results: &[crate::invoke::RecordResult]) {
        let _ = results;
    }
}
