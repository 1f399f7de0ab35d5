//! The table's schema, created where it is missing: by `moebi setup` in an emulator and by the
//! embedded engine in its state directory (on AWS, Terraform creates it; `tests/drift.rs`
//! checks that both describe the same table).

use super::storage;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification, TimeToLiveStatus,
};

use crate::ports::PortError;

/// The attribute whose epoch seconds expire an item.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// What the stream shows of each write: global tables need both images.
pub const STREAM_VIEW: StreamViewType = StreamViewType::NewAndOldImages;
/// How long to wait for a new table to become active.
const TABLE_WAIT: Duration = Duration::from_secs(60);

fn build(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::Storage {
        operation: "building a CreateTable request".into(),
        retryable: false,
        source: Box::new(e),
    }
}

/// Creates `table` (keys, on-demand billing, stream) unless it exists, waits until it is
/// active, and turns its TTL on unless it is on.
pub async fn ensure_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), PortError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(build)
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build)
    };
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(STREAM_VIEW)
        .build()
        .map_err(build)?;
    let created = dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .stream_specification(stream)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(storage("CreateTable", e)),
    }
    dynamo
        .wait_until_table_exists()
        .table_name(table)
        .wait(TABLE_WAIT)
        .await
        .map_err(|e| PortError::Storage {
            operation: format!("waiting for table {table} to become active"),
            retryable: true,
            source: Box::new(e),
        })?;
    ensure_ttl(dynamo, table).await
}

/// Turns the table's TTL on unless it is on (enabling it again is an error in DynamoDB).
async fn ensure_ttl(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), PortError> {
    let ttl = dynamo
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| storage("DescribeTimeToLive", e))?;
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
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(build)?;
        dynamo
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| storage("UpdateTimeToLive", e))?;
    }
    Ok(())
}
