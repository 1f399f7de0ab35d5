//! What a function runs against: its region's store and bus, built once per cold start.

use std::sync::Arc;

use super::config::FunctionConfig;
use super::config::StartError;
use super::eventbridge::EventBridgeBus;
use crate::ports::Ports;
use crate::store::DynamoStore;
use crate::topology::Topology;

/// What a Lambda function runs against in its region: the store and the bus, built once per
/// cold start.
pub struct FunctionPorts {
    topology: Arc<Topology>,
    store: DynamoStore,
    bus: EventBridgeBus,
}

impl FunctionPorts {
    /// Builds the clients of `config.region`, which must be one of the topology's.
    pub async fn connect(config: &FunctionConfig, topology: Topology) -> Result<Self, StartError> {
        config
            .names
            .validate()
            .map_err(|e| StartError::Config(e.to_string()))?;
        if !topology.has_region(&config.region) {
            return Err(StartError::Config(format!(
                "region {} is not in the topology",
                config.region
            )));
        }
        let sdk = crate::sdk::load(
            config.region.as_str(),
            config.endpoint_url.as_deref(),
            crate::sdk::lambda_credentials(),
        );
        let names = &config.names;
        Ok(Self {
            topology: Arc::new(topology),
            store: DynamoStore::new(
                config.region.clone(),
                names.table.clone(),
                aws_sdk_dynamodb::Client::new(&sdk),
            ),
            bus: EventBridgeBus::new(
                config.region.clone(),
                names.bus.clone(),
                aws_sdk_eventbridge::Client::new(&sdk),
            ),
        })
    }

    /// The ports bundle a handler takes.
    pub fn ports(&self) -> Ports<'_> {
        Ports {
            region: self.store.region(),
            topology: &self.topology,
            inboxes: &self.store,
            stock: &self.store,
            bus: &self.bus,
        }
    }

    /// What the front door runs against.
    pub fn front_ports(&self) -> crate::front::FrontPorts<'_> {
        crate::front::FrontPorts {
            site: self.ports().site(),
            bus: &self.bus,
            inboxes: &self.store,
            requests: &self.store,
        }
    }

    /// The store, for the failure records of a batch.
    pub fn store(&self) -> &DynamoStore {
        &self.store
    }
}
