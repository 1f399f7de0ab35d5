//! The engine the CLI and the tests drive: every region's ports, and (in emulator mode) the
//! event source mappings Lambda would run, as a pump over the SQS queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use serde_json::Value;

use super::{load_sdk_config, sdk_error, AwsConfig, AwsPorts};
use crate::contract::{ContractError, Event, Participant, Region};
use crate::engine::{unknown_region, DeadLetter, Engine, EngineError, RunReport};
use crate::invoke::{self, Payload, Response};
use crate::ports::{Bus, InboxEntry, Inboxes};
use crate::topology::{Function, Target, Topology};

/// Receives before a message of a function-target queue goes to its DLQ (emulator only): the
/// attempts Lambda makes at an asynchronous invocation.
const ASYNC_ATTEMPTS: u32 = 3;
/// Most pump passes one run makes; more means something re-publishes forever.
const MAX_PASSES: u32 = 10_000;
/// Most messages `dead_letters` reads from one DLQ.
const MAX_DEAD_LETTERS: usize = 1_000;
/// How long `dead_letters` hides the messages it has read, so the next receive returns others;
/// they are made visible again right after.
const DLQ_PEEK_SECONDS: i32 = 30;
/// On AWS: how long a run waits for Lambda to empty the queues.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// On AWS: the pause between two looks at the queues.
const DRAIN_POLL: Duration = Duration::from_secs(1);

/// How a queue's messages reach its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// An SQS queue behind an event source mapping: batches, partial batch failures.
    Batch,
    /// Emulator only: a queue standing in for EventBridge invoking the function directly;
    /// each message is handed over as one EventBridge event.
    Single,
}

/// One queue of a region, in front of one function.
#[derive(Debug, Clone)]
pub(super) struct QueueSpec {
    pub(super) function: Function,
    pub(super) delivery: Delivery,
    /// Receives after which SQS moves a message to the DLQ.
    pub(super) max_receives: u32,
}

/// Where a queue is.
#[derive(Debug, Clone)]
pub(super) struct QueueHandle {
    pub(super) url: String,
    pub(super) arn: String,
}

/// One region's clients.
pub(super) struct RegionClients {
    pub(super) region: Region,
    pub(super) ports: AwsPorts,
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) queues: Vec<QueueSpec>,
}

/// The AWS engine: DynamoDB, EventBridge and SQS in every region of the topology.
pub struct AwsEngine {
    pub(super) config: AwsConfig,
    pub(super) topology: Arc<Topology>,
    /// In topology order.
    pub(super) regions: Vec<RegionClients>,
    /// Queue URLs and ARNs found so far, by name and region.
    queue_cache: Mutex<HashMap<(Region, String), QueueHandle>>,
}

/// The receive count SQS reports for a message.
fn receive_count(msg: &Message) -> u32 {
    msg.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// The SQS batch Lambda's event source mapping builds from received messages.
fn sqs_event(region: &Region, queue_arn: &str, messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for msg in messages {
        let mut record = SqsMessage::default();
        record.message_id = msg.message_id().map(str::to_owned);
        record.receipt_handle = msg.receipt_handle().map(str::to_owned);
        record.body = msg.body().map(str::to_owned);
        record.md5_of_body = msg.md5_of_body().map(str::to_owned);
        record.attributes = msg
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(queue_arn.to_owned());
        record.aws_region = Some(region.to_string());
        event.records.push(record);
    }
    event
}

impl AwsEngine {
    /// Builds the clients of every region of `topology`; nothing is called yet.
    pub async fn connect(config: AwsConfig, topology: Topology) -> Result<Self, EngineError> {
        config.names.validate()?;
        let topology = Arc::new(topology);
        let first = topology
            .regions
            .first()
            .ok_or_else(|| EngineError::Config("the topology has no region".into()))?;
        // Credentials and settings are loaded once; each region's clients only sign (and, on
        // AWS, route) for their own region.
        let sdk = load_sdk_config(&config, first).await;
        let mut regions = Vec::new();
        for region in &topology.regions {
            let mut queues: Vec<QueueSpec> = Vec::new();
            for rule in topology.rules(region) {
                let spec = match rule.target {
                    Target::Queue(f) => QueueSpec {
                        function: f,
                        delivery: Delivery::Batch,
                        max_receives: topology.queues.max_receive_count,
                    },
                    // The emulator cannot invoke Lambda: a queue takes the function's place.
                    Target::Function(f) if config.emulated() => QueueSpec {
                        function: f,
                        delivery: Delivery::Single,
                        max_receives: ASYNC_ATTEMPTS,
                    },
                    Target::Function(_) | Target::Bus(_) => continue,
                };
                if !queues.iter().any(|q| q.function == spec.function) {
                    queues.push(spec);
                }
            }
            regions.push(RegionClients {
                region: region.clone(),
                ports: AwsPorts::with_sdk(&config, &sdk, topology.clone(), region),
                sqs: aws_sdk_sqs::Client::new(&super::in_region(&sdk, region)),
                queues,
            });
        }
        Ok(Self {
            config,
            topology,
            regions,
            queue_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    pub(super) fn region(&self, region: &Region) -> Result<&RegionClients, EngineError> {
        self.regions
            .iter()
            .find(|r| &r.region == region)
            .ok_or_else(|| unknown_region(&self.topology, region))
    }

    /// The ports of one region, as a function running there sees them.
    pub fn ports_of(&self, region: &Region) -> Result<&AwsPorts, EngineError> {
        Ok(&self.region(region)?.ports)
    }

    fn cached(&self, region: &Region, name: &str) -> Option<QueueHandle> {
        // A panic while holding the lock leaves a map of found URLs, still right.
        let cache = self.queue_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(&(region.clone(), name.to_owned())).cloned()
    }

    pub(super) fn remember(&self, region: &Region, name: &str, handle: QueueHandle) {
        let mut cache = self.queue_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert((region.clone(), name.to_owned()), handle);
    }

    /// The queue `name` of a region: its URL and ARN.
    pub(super) async fn queue(
        &self,
        rc: &RegionClients,
        name: &str,
    ) -> Result<QueueHandle, EngineError> {
        if let Some(handle) = self.cached(&rc.region, name) {
            return Ok(handle);
        }
        let url = match rc.sqs.get_queue_url().queue_name(name).send().await {
            Ok(out) => out.queue_url().unwrap_or_default().to_owned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_queue_does_not_exist()) =>
            {
                return Err(EngineError::Config(format!(
                    "queue {name} does not exist in {}: run `moebi --engine aws setup` first",
                    rc.region
                )))
            }
            Err(e) => return Err(EngineError::Aws(sdk_error("GetQueueUrl", &e))),
        };
        let handle = QueueHandle {
            arn: queue_arn(&rc.sqs, &url).await?,
            url,
        };
        self.remember(&rc.region, name, handle.clone());
        Ok(handle)
    }

    /// One pass of the event source mappings (emulator only): every queue of every region is
    /// received from once, and what it gave is handed to its function. Records that succeed are
    /// deleted; failed ones are made visible again at once, and after their last receive SQS's
    /// redrive policy moves them to the DLQ.
    pub async fn pump_once(&self) -> Result<RunReport, EngineError> {
        if !self.config.emulated() {
            return Err(EngineError::Config(
                "on AWS, Lambda's event source mappings poll the queues; pumping needs an emulator (--endpoint-url)"
                    .into(),
            ));
        }
        let mut report = RunReport::default();
        for rc in &self.regions {
            for spec in &rc.queues {
                self.pump_queue(rc, spec, &mut report).await?;
            }
        }
        Ok(report)
    }

    async fn pump_queue(
        &self,
        rc: &RegionClients,
        spec: &QueueSpec,
        report: &mut RunReport,
    ) -> Result<(), EngineError> {
        let name = self.config.names.queue(spec.function);
        let queue = self.queue(rc, &name).await?;
        let out = rc
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(self.topology.queues.batch_size as i32)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| EngineError::Aws(sdk_error("ReceiveMessage", &e)))?;
        let messages = out.messages();
        if messages.is_empty() {
            return Ok(());
        }
        let batch = sqs_event(&rc.region, &queue.arn, messages);
        let ports = rc.ports.ports();
        let failures: Vec<(String, String)> = match spec.delivery {
            Delivery::Batch => {
                let (_, reasons) = invoke::batch_of(spec.function, &ports, &batch).await;
                reasons
                    .into_iter()
                    .map(|(id, e)| (id, e.to_string()))
                    .collect()
            }
            Delivery::Single => {
                // Emulator: each message stands for one asynchronous invocation by EventBridge.
                let mut failures = Vec::new();
                for record in &batch.records {
                    let id = record.message_id.clone().unwrap_or_default();
                    let body = record.body.as_deref().unwrap_or_default();
                    let result = match serde_json::from_str::<Value>(body) {
                        Ok(event) => invoke::single(spec.function, &ports, &event)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => {
                            Err(ContractError::Malformed(format!("not JSON: {e}")).to_string())
                        }
                    };
                    if let Err(reason) = result {
                        tracing::warn!(message_id = %id, error = %reason, "event failed");
                        failures.push((id, reason));
                    }
                }
                failures
            }
        };
        let mut done = Vec::new();
        let mut retry = Vec::new();
        for msg in messages {
            let id = msg.message_id().unwrap_or_default();
            let Some(handle) = msg.receipt_handle() else {
                tracing::warn!(message_id = %id, "a message came without a receipt handle");
                continue;
            };
            match failures.iter().find(|(f, _)| f == id) {
                None => done.push(handle),
                Some((_, reason)) => {
                    let count = receive_count(msg);
                    if let Err(e) = rc.ports.record_failure(&name, id, count, reason).await {
                        // The reason is a courtesy to whoever reads the DLQ; the retry matters more.
                        tracing::warn!(message_id = %id, error = %e, "cannot record why a message failed");
                    }
                    if count >= spec.max_receives {
                        // SQS moves it to the DLQ when it is next received.
                        report.dead += 1;
                    }
                    retry.push(handle);
                }
            }
        }
        report.handled += done.len() as u64;
        report.failed += retry.len() as u64;
        delete_batch(&rc.sqs, &queue.url, &done).await?;
        // Emulator: Lambda would leave a failed record hidden until its visibility timeout ends;
        // showing it again at once lets a run retry without waiting minutes.
        change_visibility(&rc.sqs, &queue.url, &retry, 0).await?;
        Ok(())
    }

    /// On AWS: waits until Lambda has emptied every queue (or gives up after a minute).
    async fn wait_for_queues(&self) -> Result<RunReport, EngineError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            // EventBridge delivers to SQS within moments, not at once: look only after a pause.
            tokio::time::sleep(DRAIN_POLL).await;
            let mut waiting = 0u64;
            for rc in &self.regions {
                for spec in &rc.queues {
                    let queue = self
                        .queue(rc, &self.config.names.queue(spec.function))
                        .await?;
                    waiting += queue_depth(&rc.sqs, &queue.url).await?;
                }
            }
            if waiting == 0 {
                return Ok(RunReport::default());
            }
            if Instant::now() > deadline {
                return Err(EngineError::Aws(format!(
                    "{waiting} message(s) still in the queues after {} s",
                    DRAIN_TIMEOUT.as_secs()
                )));
            }
        }
    }

    async fn dead_letters_of(&self, rc: &RegionClients) -> Result<Vec<DeadLetter>, EngineError> {
        let mut letters = Vec::new();
        for spec in &rc.queues {
            let source = self.config.names.queue(spec.function);
            let dlq = self
                .queue(rc, &self.config.names.dlq(spec.function))
                .await?;
            // A receive returns at most 10 messages: hide what was read so the next receive
            // returns the others, then show them all again.
            let mut read: Vec<Message> = Vec::new();
            while read.len() < MAX_DEAD_LETTERS {
                let out = rc
                    .sqs
                    .receive_message()
                    .queue_url(&dlq.url)
                    .max_number_of_messages(10)
                    .visibility_timeout(DLQ_PEEK_SECONDS)
                    .wait_time_seconds(if self.config.emulated() { 0 } else { 1 })
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send()
                    .await
                    .map_err(|e| EngineError::Aws(sdk_error("ReceiveMessage (DLQ)", &e)))?;
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
            change_visibility(&rc.sqs, &dlq.url, &handles, 0).await?;
            for msg in &read {
                let message_id = msg.message_id().unwrap_or_default().to_owned();
                let recorded = rc.ports.failure(&message_id).await?;
                // Reading the DLQ just counted one more receive.
                let seen = receive_count(msg).saturating_sub(1).max(1);
                let (reason, receive_count) = match recorded {
                    Some((reason, count)) if count > 0 => (reason, count),
                    _ => (
                        format!("failed {seen} time(s) in {source}; no reason was recorded"),
                        seen,
                    ),
                };
                letters.push(DeadLetter {
                    region: rc.region.clone(),
                    queue: source.clone(),
                    message_id,
                    receive_count,
                    reason,
                    body: msg.body().unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(letters)
    }
}

/// A queue's ARN.
pub(super) async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, EngineError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| EngineError::Aws(sdk_error("GetQueueAttributes", &e)))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| EngineError::Aws(format!("queue {url} has no ARN")))
}

/// Messages waiting in a queue, visible or in flight.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, EngineError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| EngineError::Aws(sdk_error("GetQueueAttributes", &e)))?;
    Ok(out
        .attributes()
        .map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0))
}

async fn delete_batch(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    handles: &[&str],
) -> Result<(), EngineError> {
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*h)
                    .build()
                    .map_err(|e| EngineError::Aws(format!("DeleteMessageBatch: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| EngineError::Aws(sdk_error("DeleteMessageBatch", &e)))?;
        if let Some(failed) = out.failed().first() {
            return Err(EngineError::Aws(format!(
                "DeleteMessageBatch: {} message(s) not deleted: {}: {}",
                out.failed().len(),
                failed.code(),
                failed.message().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

async fn change_visibility(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    handles: &[&str],
    seconds: i32,
) -> Result<(), EngineError> {
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*h)
                    .visibility_timeout(seconds)
                    .build()
                    .map_err(|e| EngineError::Aws(format!("ChangeMessageVisibilityBatch: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| EngineError::Aws(sdk_error("ChangeMessageVisibilityBatch", &e)))?;
        if let Some(failed) = out.failed().first() {
            return Err(EngineError::Aws(format!(
                "ChangeMessageVisibilityBatch: {} message(s) unchanged: {}: {}",
                out.failed().len(),
                failed.code(),
                failed.message().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl Engine for AwsEngine {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    async fn publish(&self, region: &Region, events: &[Event]) -> Result<(), EngineError> {
        Ok(self.ports_of(region)?.publish(events).await?)
    }

    async fn run_until_idle(&self) -> Result<RunReport, EngineError> {
        if !self.config.emulated() {
            return self.wait_for_queues().await;
        }
        let mut report = RunReport::default();
        for _ in 0..MAX_PASSES {
            let pass = self.pump_once().await?;
            report.handled += pass.handled;
            report.failed += pass.failed;
            report.dead += pass.dead;
            if pass.handled + pass.failed == 0 {
                return Ok(report);
            }
        }
        Err(EngineError::Aws(format!(
            "the queues were not empty after {MAX_PASSES} passes: events keep coming"
        )))
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, EngineError> {
        let home = self
            .topology
            .home_of(owner)
            .ok_or_else(|| ContractError::Unknown {
                field: "participant".into(),
                what: "participant",
                name: owner.to_string(),
            })?;
        Ok(self.ports_of(home)?.inbox(owner).await?)
    }

    async fn dead_letters(&self, region: Option<&Region>) -> Result<Vec<DeadLetter>, EngineError> {
        if let Some(r) = region {
            self.region(r)?;
        }
        let mut letters = Vec::new();
        for rc in &self.regions {
            if region.is_none_or(|r| r == &rc.region) {
                letters.extend(self.dead_letters_of(rc).await?);
            }
        }
        Ok(letters)
    }

    async fn invoke(
        &self,
        region: &Region,
        function: Function,
        payload: &Payload,
    ) -> Result<Response, EngineError> {
        let ports = self.ports_of(region)?;
        Ok(invoke::invoke(function, &ports.ports(), payload).await)
    }
}
