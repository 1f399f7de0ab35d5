//! The event source mapping rides out a queue that fails for a while (a dropped connection on
//! `ReceiveMessage`, an `InternalFailure` on `DeleteMessageBatch`): the pass goes on, and the
//! next one delivers what was left, once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use moebi::contract::{ChatSend, Event, EventId, Participant, Region, Text};
use moebi::engine::local::LocalEngine;
use moebi::engine::pump::{self, Mapping};
use moebi::engine::queue::{Queue, QueueError, Received};
use moebi::engine::{DeadLetter, Engine, EngineError, RunReport};
use moebi::ports::Ports;
use moebi::topology::{Function, Topology};

/// A queue whose next `failing` receives and deletes fail as a dropped connection does.
struct Flaky {
    queue: Arc<dyn Queue>,
    failing: AtomicU32,
}

impl Flaky {
    fn fail(&self, operation: &'static str) -> Result<(), QueueError> {
        let left = self.failing.load(Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        self.failing.store(left - 1, Ordering::SeqCst);
        Err(QueueError {
            queue: self.queue.name().to_owned(),
            operation,
            retryable: true,
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        })
    }
}

#[async_trait]
impl Queue for Flaky {
    fn name(&self) -> &str {
        self.queue.name()
    }
    fn arn(&self) -> &str {
        self.queue.arn()
    }
    async fn receive(&self, max: u32) -> Result<Vec<Received>, QueueError> {
        self.fail("ReceiveMessage")?;
        self.queue.receive(max).await
    }
    async fn delete(&self, done: &[&Received]) -> Result<(), QueueError> {
        self.fail("DeleteMessageBatch")?;
        self.queue.delete(done).await
    }
    async fn release(&self, failed: &[(&Received, String)]) -> Result<(), QueueError> {
        self.queue.release(failed).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.queue.dead_letters().await
    }
}

/// The embedded engine, with kate's chat-send queue flaky.
struct Subject {
    engine: LocalEngine,
    flaky: Arc<Flaky>,
}

#[async_trait]
impl Engine for Subject {
    fn topology(&self) -> &Topology {
        self.engine.topology()
    }
    fn ports(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        self.engine.ports(region)
    }
    async fn run_until_idle(&self) -> Result<RunReport, EngineError> {
        pump::pump_all(self).await
    }
    async fn queues(&self, region: &Region) -> Result<Vec<(Mapping, Arc<dyn Queue>)>, EngineError> {
        let mut queues = self.engine.queues(region).await?;
        for (mapping, queue) in &mut queues {
            if region.as_str() == "us-east-1" && mapping.function == Function::ChatSend {
                *queue = self.flaky.clone();
            }
        }
        Ok(queues)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_queue_failing_for_a_while_pauses_the_pump_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LocalEngine::open(dir.path(), Topology::builtin())
        .await
        .unwrap();
    let east = Region::parse("us-east-1").unwrap();
    let chat_send = engine
        .queues(&east)
        .await
        .unwrap()
        .into_iter()
        .find(|(m, _)| m.function == Function::ChatSend)
        .unwrap()
        .1;
    let subject = Subject {
        engine,
        flaky: Arc::new(Flaky {
            queue: chat_send,
            failing: AtomicU32::new(0),
        }),
    };
    let msg = Event::ChatSend(ChatSend {
        id: EventId::parse("flaky-1").unwrap(),
        from: Participant::parse("alex").unwrap(),
        to: Participant::parse("kate").unwrap(),
        text: Text::parse("hi").unwrap(),
        sent_at: Utc::now(),
        in_reply_to: None,
    });
    subject.publish(&east, &[msg]).await.unwrap();
    // GIVEN the receive fails WHEN a pass runs THEN it is interrupted, not ended
    subject.flaky.failing.store(1, Ordering::SeqCst);
    let pass = pump::pump_all(&subject).await.unwrap();
    assert_eq!((pass.handled, pass.interrupted), (0, 1));
    // GIVEN the delete fails WHEN a pass runs THEN the message was handled and stays queued
    subject.flaky.failing.store(1, Ordering::SeqCst);
    let pass = pump::pump_all(&subject).await.unwrap();
    assert_eq!(pass.interrupted, 1);
    // WHEN it comes again (after its visibility timeout) THEN kate holds it once
    while subject.engine.tick().unwrap() {
        pump::pump_all(&subject).await.unwrap();
    }
    let kate = subject
        .inbox(&Participant::parse("kate").unwrap())
        .await
        .unwrap();
    assert_eq!(kate.len(), 1, "{kate:?}");
    assert!(subject.dead_letters(None).await.unwrap().is_empty());
}
