//! The engine the CLI and the tests drive on AWS or an emulator: every region's store, bus and
//! queues, and (on an emulator) the shared event source mapping and replicator that Lambda and
//! global tables would run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::sqs::{queue_arn, queue_depth, QueueHandle, SqsQueue};
use super::{in_region, load_sdk_config, AwsConfig};
use crate::contract::Region;
use crate::engine::pump::{self, Delivery, Mapping};
use crate::engine::queue::{Queue, QueueError};
use crate::engine::replicator::{Replica, Replicator};
use crate::engine::{unknown_region, Engine, EngineError, RunReport};
use crate::lambda::EventBridgeBus;
use crate::ports::Ports;
use crate::store::DynamoStore;
use crate::topology::{Function, Topology};

/// Most pump passes one run makes; more means something re-publishes forever.
const MAX_PASSES: u32 = 10_000;
/// On AWS: how long a run waits for Lambda to empty the queues.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// On AWS: the pause between two looks at the queues.
const DRAIN_POLL: Duration = Duration::from_secs(1);
/// On an emulator: the pause before another pass when nothing was ready but messages are
/// hidden (in flight, or waiting out their visibility timeout). The wait is the timeout's;
/// looking often ends it as soon as it is over.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// One region's clients.
pub(super) struct RegionClients {
    pub(super) region: Region,
    pub(super) store: DynamoStore,
    pub(super) bus: EventBridgeBus,
    pub(super) sqs: aws_sdk_sqs::Client,
    /// The queues of the region: on AWS only those in front of event source mappings; on an
    /// emulator also those standing in for EventBridge invoking a function.
    pub(super) mappings: Vec<Mapping>,
}

/// The AWS engine: DynamoDB, EventBridge and SQS in every region of the topology.
pub struct AwsEngine {
    pub(super) config: AwsConfig,
    pub(super) topology: Arc<Topology>,
    /// In topology order.
    pub(super) regions: Vec<RegionClients>,
    /// Emulator only: replication between the regions' tables, as global tables do it.
    replicator: Option<Replicator>,
    /// Queue URLs and ARNs found so far, by region and name.
    queue_cache: Mutex<HashMap<(Region, String), QueueHandle>>,
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
        let mut replicas = Vec::new();
        for region in &topology.regions {
            let here = in_region(&sdk, region);
            let dynamo = aws_sdk_dynamodb::Client::new(&here);
            replicas.push(Replica {
                region: region.clone(),
                table: config.names.table.clone(),
                dynamo: dynamo.clone(),
                streams: aws_sdk_dynamodbstreams::Client::new(&here),
            });
            let mappings = pump::mappings(&topology, region)
                .into_iter()
                // On AWS, EventBridge invokes those functions itself: no queue.
                .filter(|m| config.emulated() || m.delivery == Delivery::Batch)
                .collect();
            regions.push(RegionClients {
                region: region.clone(),
                store: DynamoStore::new(region.clone(), config.names.table.clone(), dynamo),
                bus: EventBridgeBus::new(
                    region.clone(),
                    config.names.bus.clone(),
                    aws_sdk_eventbridge::Client::new(&here),
                ),
                sqs: aws_sdk_sqs::Client::new(&here),
                mappings,
            });
        }
        Ok(Self {
            replicator: config
                .emulated()
                .then(|| Replicator::new(replicas).one_at_a_time()),
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
    pub fn ports_of(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        let rc = self.region(region)?;
        Ok(Ports {
            region: &rc.region,
            topology: &self.topology,
            inboxes: &rc.store,
            stock: &rc.store,
            bus: &rc.bus,
        })
    }

    /// Emulator only: the replication between the regions' tables.
    pub fn replicator(&self) -> Option<&Replicator> {
        self.replicator.as_ref()
    }

    pub(super) fn remember(&self, region: &Region, name: &str, handle: QueueHandle) {
        let mut cache = self.queue_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert((region.clone(), name.to_owned()), handle);
    }

    /// The queue `name` of a region: its URL and ARN.
    pub(super) async fn handle(
        &self,
        rc: &RegionClients,
        name: &str,
    ) -> Result<QueueHandle, EngineError> {
        let cached = {
            let cache = self.queue_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&(rc.region.clone(), name.to_owned())).cloned()
        };
        if let Some(handle) = cached {
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
            Err(e) => {
                let e = crate::sdk::SdkFailure::from(e);
                return Err(QueueError {
                    queue: name.to_owned(),
                    operation: "GetQueueUrl",
                    retryable: e.retryable,
                    source: Box::new(e),
                }
                .into());
            }
        };
        let handle = QueueHandle {
            arn: queue_arn(&rc.sqs, &url).await?,
            url,
        };
        self.remember(&rc.region, name, handle.clone());
        Ok(handle)
    }

    /// The queue in front of `function` in a region, with its DLQ.
    async fn queue(
        &self,
        rc: &RegionClients,
        function: Function,
    ) -> Result<Arc<SqsQueue>, EngineError> {
        let names = &self.config.names;
        Ok(Arc::new(SqsQueue {
            sqs: rc.sqs.clone(),
            region: rc.region.clone(),
            name: names.queue(function),
            queue: self.handle(rc, &names.queue(function)).await?,
            dlq: self.handle(rc, &names.dlq(function)).await?,
            store: rc.store.clone(),
            retry_at_once: self.config.emulated(),
        }))
    }

    /// One pass of the event source mappings (emulator only): every queue of every region is
    /// received from once and what it gave is handed to its function; then replication.
    pub async fn pump_once(&self) -> Result<RunReport, EngineError> {
        let Some(replicator) = &self.replicator else {
            return Err(EngineError::Config(
                "on AWS, Lambda's event source mappings poll the queues; pumping needs an emulator (--endpoint-url)"
                    .into(),
            ));
        };
        // The queues first: a missing one says to run setup.
        for rc in &self.regions {
            self.queues(&rc.region).await?;
        }
        // Replication before delivery, as in the embedded engine: what was written before is
        // in every region before the next event is delivered.
        let mut report = RunReport::default();
        match replicator.run().await {
            Ok(n) => report.replicated += n,
            // Streams that fail for a while are read again on the next pass, from the
            // position last stored: nothing is skipped.
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %crate::report(&e), "replication failed; trying again on the next pass");
                report.interrupted += 1;
            }
            Err(e) => return Err(e.into()),
        }
        report += pump::pump_all(self).await?;
        Ok(report)
    }

    /// The messages in every queue, visible or not (in flight, or waiting for a retry).
    async fn waiting(&self) -> Result<u64, EngineError> {
        let mut waiting = 0u64;
        for rc in &self.regions {
            for m in &rc.mappings {
                let queue = self
                    .handle(rc, &self.config.names.queue(m.function))
                    .await?;
                waiting += queue_depth(&rc.sqs, &queue.url).await?;
            }
        }
        Ok(waiting)
    }

    /// On AWS: waits until Lambda has emptied every queue (or gives up after a minute).
    async fn wait_for_queues(&self) -> Result<RunReport, EngineError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            // EventBridge delivers to SQS within moments, not at once: look only after a pause.
            tokio::time::sleep(DRAIN_POLL).await;
            let waiting = self.waiting().await?;
            if waiting == 0 {
                return Ok(RunReport::default());
            }
            if Instant::now() > deadline {
                return Err(EngineError::Undrained {
                    what: "waiting for Lambda to drain the queues",
                    messages: waiting,
                    waited: DRAIN_TIMEOUT,
                });
            }
        }
    }
}

#[async_trait]
impl Engine for AwsEngine {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    fn front_ports(&self, region: &Region) -> Result<crate::front::FrontPorts<'_>, EngineError> {
        let ports = self.ports(region)?;
        let rc = self.region(region)?;
        Ok(crate::front::FrontPorts {
            site: ports.site(),
            bus: &rc.bus,
            inboxes: &rc.store,
            requests: &rc.store,
        })
    }

    fn ports(&self, region: &Region) -> Result<Ports<'_>, EngineError> {
        self.ports_of(region)
    }

    async fn run_until_idle(&self) -> Result<RunReport, EngineError> {
        if !self.config.emulated() {
            return self.wait_for_queues().await;
        }
        let mut report = RunReport::default();
        // Since when nothing was ready: a long run that still makes progress never times out.
        let mut idle_since: Option<Instant> = None;
        for _ in 0..MAX_PASSES {
            let pass = self.pump_once().await?;
            report += pass;
            if pass.progressed() {
                idle_since = None;
                continue;
            }
            // Nothing was ready. Messages still in flight (a batch whose delete was lost) or
            // hidden until their visibility timeout come back: wait for them, for a while.
            let idle = *idle_since.get_or_insert_with(Instant::now);
            match self.waiting().await {
                Ok(0) => return Ok(report),
                Ok(_) if idle.elapsed() < DRAIN_TIMEOUT => tokio::time::sleep(IDLE_POLL).await,
                Ok(n) => {
                    return Err(EngineError::Undrained {
                        what: "draining the emulator's queues",
                        messages: n,
                        waited: DRAIN_TIMEOUT,
                    })
                }
                Err(EngineError::Queue(e)) if e.retryable => {}
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Runaway(format!(
            "the queues were not empty after {MAX_PASSES} passes"
        )))
    }

    async fn queues(&self, region: &Region) -> Result<Vec<(Mapping, Arc<dyn Queue>)>, EngineError> {
        let rc = self.region(region)?;
        let mut queues = Vec::new();
        for m in &rc.mappings {
            queues.push((*m, self.queue(rc, m.function).await? as Arc<dyn Queue>));
        }
        Ok(queues)
    }
}
