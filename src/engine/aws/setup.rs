//! `moebi --engine aws setup`: the tables, buses, queues and rules of every region, in an
//! emulator. Every step creates what is missing and leaves what exists, so it can run again.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_eventbridge::types::RuleState;
use aws_sdk_sqs::types::QueueAttributeName;

use super::engine::{queue_arn, QueueHandle, QueueSpec, RegionClients};
use super::{sdk_error, AwsEngine};
use crate::contract::Region;
use crate::engine::EngineError;
use crate::topology::Target;

/// How long SQS keeps a dead letter: the most it allows (14 days).
const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;
/// How long to wait for a new table to become active.
const TABLE_WAIT: Duration = Duration::from_secs(60);
/// The id of the one target each rule has.
const TARGET_ID: &str = "moebi";

fn aws_err(message: String) -> EngineError {
    EngineError::Aws(message)
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
            for spec in &rc.queues {
                self.create_queue(rc, spec).await?;
            }
        }
        let mut summary = Vec::new();
        for rc in &self.regions {
            let rules = self.put_rules(rc, &buses).await?;
            let queues: Vec<String> = rc
                .queues
                .iter()
                .map(|q| self.config.names.queue(q.function))
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
        let dynamo = rc.ports.dynamo();
        let table = &self.config.names.table;
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| aws_err(format!("CreateTable: {e}")))
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| aws_err(format!("CreateTable: {e}")))
        };
        let created = dynamo
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) => {}
            Err(e) => return Err(aws_err(sdk_error("CreateTable", &e))),
        }
        dynamo
            .wait_until_table_exists()
            .table_name(table)
            .wait(TABLE_WAIT)
            .await
            .map_err(|e| {
                aws_err(format!(
                    "table {table} in {} did not become active: {}",
                    rc.region,
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                ))
            })?;
        let ttl = dynamo
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws_err(sdk_error("DescribeTimeToLive", &e)))?;
        let status = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        // Enabling it again is an error in DynamoDB.
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .map_err(|e| aws_err(format!("UpdateTimeToLive: {e}")))?;
            dynamo
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| aws_err(sdk_error("UpdateTimeToLive", &e)))?;
        }
        Ok(())
    }

    /// Creates the region's bus; answers its ARN.
    async fn create_bus(&self, rc: &RegionClients) -> Result<String, EngineError> {
        let events = rc.ports.events();
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
            Err(e) => return Err(aws_err(sdk_error("CreateEventBus", &e))),
        }
        let out = events
            .describe_event_bus()
            .name(bus)
            .send()
            .await
            .map_err(|e| aws_err(sdk_error("DescribeEventBus", &e)))?;
        out.arn()
            .map(str::to_owned)
            .ok_or_else(|| aws_err(format!("bus {bus} in {} has no ARN", rc.region)))
    }

    /// Creates one queue and its DLQ, with the redrive policy between them.
    async fn create_queue(&self, rc: &RegionClients, spec: &QueueSpec) -> Result<(), EngineError> {
        let names = &self.config.names;
        let dlq_name = names.dlq(spec.function);
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
            .map_err(|e| aws_err(sdk_error("SetQueueAttributes", &e)))?;
        let dlq_arn = queue_arn(&rc.sqs, &dlq_url).await?;
        self.remember(
            &rc.region,
            &dlq_name,
            QueueHandle {
                url: dlq_url,
                arn: dlq_arn.clone(),
            },
        );
        let name = names.queue(spec.function);
        let url = self.create_bare_queue(rc, &name).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": spec.max_receives.to_string(),
        });
        // Set after creation, not in CreateQueue: CreateQueue fails on a queue whose
        // attributes differ, and setting them brings an existing queue up to date.
        rc.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                self.topology.queues.visibility_timeout_seconds.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| aws_err(sdk_error("SetQueueAttributes", &e)))?;
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
            .map_err(|e| aws_err(sdk_error("CreateQueue", &e)))?;
        out.queue_url()
            .map(str::to_owned)
            .ok_or_else(|| aws_err(format!("CreateQueue {name} answered no URL")))
    }

    /// Puts the region's rules and their targets; answers how many.
    async fn put_rules(
        &self,
        rc: &RegionClients,
        buses: &HashMap<Region, String>,
    ) -> Result<usize, EngineError> {
        let events = rc.ports.events();
        let names = &self.config.names;
        let rules = self.topology.rules(&rc.region);
        for rule in &rules {
            let name = names.rule(&rule.name);
            let target = aws_sdk_eventbridge::types::Target::builder().id(TARGET_ID);
            let target = match &rule.target {
                // The emulator cannot invoke Lambda: a function's rule targets the queue that
                // stands in for it (see the module doc).
                Target::Queue(f) | Target::Function(f) => {
                    let queue = self.queue(rc, &names.queue(*f)).await?;
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
            let target = target
                .build()
                .map_err(|e| aws_err(format!("PutTargets: {e}")))?;
            events
                .put_rule()
                .name(&name)
                .event_bus_name(&names.bus)
                .event_pattern(rule.pattern.to_string())
                .state(RuleState::Enabled)
                .description(format!("moebi: {} in {}", rule.name, rc.region))
                .send()
                .await
                .map_err(|e| aws_err(sdk_error(&format!("PutRule {name}"), &e)))?;
            let out = events
                .put_targets()
                .rule(&name)
                .event_bus_name(&names.bus)
                .targets(target)
                .send()
                .await
                .map_err(|e| aws_err(sdk_error(&format!("PutTargets {name}"), &e)))?;
            if let Some(failed) = out.failed_entries().first() {
                return Err(aws_err(format!(
                    "PutTargets {name}: {}: {}",
                    failed.error_code().unwrap_or("?"),
                    failed.error_message().unwrap_or_default()
                )));
            }
        }
        Ok(rules.len())
    }
}
