//! `moebi --engine aws setup`: the tables, buses, queues and rules of every region, in an
//! emulator. Every step creates what is missing and leaves what exists, so it can run again.

use std::collections::HashMap;

use aws_sdk_eventbridge::types::RuleState;
use aws_sdk_sqs::types::QueueAttributeName;

use super::engine::RegionClients;
use super::sqs::{queue_arn, QueueHandle};
use super::AwsEngine;
use crate::contract::Region;
use crate::engine::pump::Mapping;
use crate::engine::EngineError;
use crate::sdk::SdkFailure;
use crate::store::schema;
use crate::topology::{Rule, Target};

/// How long SQS keeps a dead letter: the most it allows (14 days).
const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;
/// The id of the one target each rule has.
const TARGET_ID: &str = "moebi";

/// A failed setup call.
fn failed(operation: impl Into<String>) -> impl FnOnce(SdkFailure) -> EngineError {
    move |e| EngineError::state(format!("setup: {}", operation.into()), e)
}

/// A setup step that cannot go on, and why.
fn refused(operation: &str, why: String) -> EngineError {
    EngineError::Setup {
        operation: operation.to_owned(),
        why,
    }
}

impl AwsEngine {
    /// Creates (or keeps) in every region of the topology the table, the bus, the queues with
    /// their DLQs, and the rules with their targets. Emulator only: on AWS, Terraform does it.
    /// Answers a summary, one line per region.
    pub async fn setup(&self) -> Result<String, EngineError> {
        if !self.config.emulated() {
            return Err(EngineError::Config(
                "setup creates the resources in an emulator (give --endpoint-url); on AWS, `terraform apply` in infra/ creates them"
                    .into(),
            ));
        }
        // First what rules point at (tables, buses, queues), then the rules: a rule of one
        // region may forward to the bus of any other.
        let mut buses: HashMap<Region, String> = HashMap::new();
        for rc in &self.regions {
            self.create_table(rc).await?;
            buses.insert(rc.region.clone(), self.create_bus(rc).await?);
            for mapping in &rc.mappings {
                self.create_queue(rc, mapping).await?;
            }
        }
        let mut summary = Vec::new();
        for rc in &self.regions {
            let rules = self.put_rules(rc, &buses).await?;
            let queues: Vec<String> = rc
                .mappings
                .iter()
                .map(|m| self.config.names.queue(m.function))
                .collect();
            summary.push(format!(
                "{}: table {}, bus {}, queues {} (each with a -dlq), {rules} rule(s)",
                rc.region,
                self.config.names.table,
                self.config.names.bus,
                queues.join(", ")
            ));
        }
        Ok(summary.join("\n"))
    }

    async fn create_table(&self, rc: &RegionClients) -> Result<(), EngineError> {
        Ok(schema::ensure_table(rc.store.client(), &self.config.names.table).await?)
    }

    /// Creates the region's bus; answers its ARN.
    async fn create_bus(&self, rc: &RegionClients) -> Result<String, EngineError> {
        let events = rc.bus.client();
        let bus = &self.config.names.bus;
        match events.create_event_bus().name(bus).send().await {
            Ok(out) => {
                if let Some(arn) = out.event_bus_arn() {
                    return Ok(arn.to_owned());
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_already_exists_exception()) => {}
            Err(e) => return Err(failed("CreateEventBus")(e.into())),
        }
        let out = events
            .describe_event_bus()
            .name(bus)
            .send()
            .await
            .map_err(|e| failed("DescribeEventBus")(e.into()))?;
        out.arn().map(str::to_owned).ok_or_else(|| {
            refused(
                "DescribeEventBus",
                format!("bus {bus} in {} has no ARN", rc.region),
            )
        })
    }

    /// Creates one queue and its DLQ, with the redrive policy between them.
    async fn create_queue(&self, rc: &RegionClients, mapping: &Mapping) -> Result<(), EngineError> {
        let names = &self.config.names;
        let dlq_name = names.dlq(mapping.function);
        let dlq_url = self.create_bare_queue(rc, &dlq_name).await?;
        rc.sqs
            .set_queue_attributes()
            .queue_url(&dlq_url)
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                DLQ_RETENTION_SECONDS.to_string(),
            )
            .send()
            .await
            .map_err(|e| failed("SetQueueAttributes")(e.into()))?;
        let dlq_arn = queue_arn(&rc.sqs, &dlq_url).await?;
        self.remember(
            &rc.region,
            &dlq_name,
            QueueHandle {
                url: dlq_url,
                arn: dlq_arn.clone(),
            },
        );
        let name = names.queue(mapping.function);
        let url = self.create_bare_queue(rc, &name).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": mapping.max_receives.to_string(),
        });
        // Set after creation, not in CreateQueue: CreateQueue fails on a queue whose
        // attributes differ, and setting them brings an existing queue up to date.
        rc.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                mapping.visibility_seconds.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| failed("SetQueueAttributes")(e.into()))?;
        let arn = queue_arn(&rc.sqs, &url).await?;
        self.remember(&rc.region, &name, QueueHandle { url, arn });
        Ok(())
    }

    /// Creates a queue with no attributes (so that creating it again succeeds); answers its URL.
    async fn create_bare_queue(
        &self,
        rc: &RegionClients,
        name: &str,
    ) -> Result<String, EngineError> {
        let out = rc
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| failed("CreateQueue")(e.into()))?;
        out.queue_url()
            .map(str::to_owned)
            .ok_or_else(|| refused("CreateQueue", format!("{name}: no URL in the answer")))
    }

    /// Puts the region's rules and their targets; answers how many.
    async fn put_rules(
        &self,
        rc: &RegionClients,
        buses: &HashMap<Region, String>,
    ) -> Result<usize, EngineError> {
        let events = rc.bus.client();
        let names = &self.config.names;
        let rules = self.topology.rules(&rc.region);
        for rule in &rules {
            let name = names.rule(&rule.name);
            let target = self.target(rc, rule, buses).await?;
            events
                .put_rule()
                .name(&name)
                .event_bus_name(&names.bus)
                .event_pattern(rule.pattern.to_string())
                .state(RuleState::Enabled)
                .description(format!("moebi: {} in {}", rule.name, rc.region))
                .send()
                .await
                .map_err(|e| failed(format!("PutRule {name}"))(e.into()))?;
            let out = events
                .put_targets()
                .rule(&name)
                .event_bus_name(&names.bus)
                .targets(target)
                .send()
                .await
                .map_err(|e| failed(format!("PutTargets {name}"))(e.into()))?;
            if let Some(failed) = out.failed_entries().first() {
                return Err(refused(
                    &format!("PutTargets {name}"),
                    format!(
                        "{}: {}",
                        failed.error_code().unwrap_or("?"),
                        failed.error_message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(rules.len())
    }

    /// The target of `rule`: a queue of the region, or another region's bus.
    async fn target(
        &self,
        rc: &RegionClients,
        rule: &Rule,
        buses: &HashMap<Region, String>,
    ) -> Result<aws_sdk_eventbridge::types::Target, EngineError> {
        let names = &self.config.names;
        let target = aws_sdk_eventbridge::types::Target::builder().id(TARGET_ID);
        let target = match &rule.target {
            // The emulator cannot invoke Lambda: a function's rule targets the queue that
            // stands in for it (see the module doc).
            Target::Queue(f) | Target::Function(f) => {
                let queue = self.handle(rc, &names.queue(*f)).await?;
                target.arn(queue.arn)
            }
            Target::Bus(other) => {
                let bus = buses.get(other).ok_or_else(|| {
                    EngineError::Config(format!(
                        "rule {} forwards to {other}, which has no bus",
                        rule.name
                    ))
                })?;
                // EventBridge forwards to another region's bus under a role; the emulator
                // does not check it, so it is only named (Terraform creates it on AWS).
                let account = bus.split(':').nth(4).unwrap_or_default();
                target.arn(bus).role_arn(format!(
                    "arn:aws:iam::{account}:role/{}",
                    names.forward_role()
                ))
            }
        };
        target
            .build()
            .map_err(|e| EngineError::state("setup: PutTargets", e))
    }
}
