//! One region's ports on DynamoDB and EventBridge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{in_region, load_sdk_config, sdk_error, AwsConfig, AwsNames};
use crate::contract::{Event, EventId, Participant, Product, Quantity, Region};
use crate::engine::EngineError;
use crate::ports::{
    Bus, EffectKey, InboxEntry, Inboxes, Outcome, PortError, Ports, StockShare, StockShares,
    MAX_SHARE,
};
use crate::topology::Topology;

/// How long an idempotency record is kept: longer than any redelivery (SQS keeps a message 14
/// days at most, but retries stop after `max_receive_count` receives; EventBridge retries 24 h).
const APPLIED_TTL_SECONDS: i64 = 7 * 24 * 3600;
/// How long a failure record is kept: as long as SQS may keep the dead letter it explains.
const FAILURE_TTL_SECONDS: i64 = 14 * 24 * 3600;
/// Most entries EventBridge takes in one `PutEvents`.
const PUT_EVENTS_MAX: usize = 10;
/// Attempts at the entries of one `PutEvents` call that EventBridge rejects one by one.
const PUT_EVENTS_ATTEMPTS: u32 = 4;
/// The first pause before resending rejected entries; it doubles each time.
const PUT_EVENTS_BACKOFF: Duration = Duration::from_millis(100);

/// The index of the idempotency record in an effect's transaction (the effect is at 0).
const RECORD_INDEX: usize = 1;
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn storage(message: String) -> PortError {
    PortError::Storage(message)
}

fn build_error(e: impl std::fmt::Display) -> PortError {
    PortError::Storage(format!("cannot build a DynamoDB request: {e}"))
}

/// The RFC 3339 form inbox keys sort by: UTC, microseconds, `Z`, always the same width.
fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

type Item = HashMap<String, AttributeValue>;

/// One region's ports: DynamoDB and EventBridge clients, built once (per cold start in Lambda).
pub struct AwsPorts {
    region: Region,
    topology: Arc<Topology>,
    names: AwsNames,
    dynamo: aws_sdk_dynamodb::Client,
    events: aws_sdk_eventbridge::Client,
    /// Emulator only: the other regions' tables, into which this region's stock shares are
    /// copied as a global table would replicate them. Empty on AWS.
    replicas: Vec<(Region, aws_sdk_dynamodb::Client)>,
}

impl AwsPorts {
    /// Builds the ports of `region` (which must be one of the topology's) from `config`.
    pub async fn connect(
        config: &AwsConfig,
        topology: Arc<Topology>,
        region: &Region,
    ) -> Result<Self, EngineError> {
        config.names.validate()?;
        if !topology.has_region(region) {
            return Err(EngineError::Config(format!(
                "region {region} is not in the topology"
            )));
        }
        let sdk = load_sdk_config(config, region).await;
        Ok(Self::with_sdk(config, &sdk, topology, region))
    }

    /// Builds the ports of `region` from an already loaded SDK configuration.
    pub(super) fn with_sdk(
        config: &AwsConfig,
        sdk: &SdkConfig,
        topology: Arc<Topology>,
        region: &Region,
    ) -> Self {
        let here = in_region(sdk, region);
        let replicas = if config.emulated() {
            topology
                .regions
                .iter()
                .filter(|r| *r != region)
                .map(|r| (r.clone(), aws_sdk_dynamodb::Client::new(&in_region(sdk, r))))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            region: region.clone(),
            topology,
            names: config.names.clone(),
            dynamo: aws_sdk_dynamodb::Client::new(&here),
            events: aws_sdk_eventbridge::Client::new(&here),
            replicas,
        }
    }

    /// The ports bundle a handler takes.
    pub fn ports(&self) -> Ports<'_> {
        Ports {
            region: &self.region,
            topology: &self.topology,
            inboxes: self,
            stock: self,
            bus: self,
        }
    }

    /// The region these ports serve.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The region's DynamoDB client.
    pub(super) fn dynamo(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamo
    }

    /// The region's EventBridge client.
    pub(super) fn events(&self) -> &aws_sdk_eventbridge::Client {
        &self.events
    }

    /// Keeps why an SQS message failed (its `receive_count`-th receive, in `queue`), so that
    /// the dead letter it may become can say why.
    pub async fn record_failure(
        &self,
        queue: &str,
        message_id: &str,
        receive_count: u32,
        reason: &str,
    ) -> Result<(), PortError> {
        let now = Utc::now();
        self.dynamo
            .put_item()
            .table_name(&self.names.table)
            .item("pk", s(format!("failure#{message_id}")))
            .item("sk", s("failure"))
            .item("queue", s(queue))
            .item("reason", s(reason))
            .item("receive_count", n(receive_count))
            .item("failed_at", s(timestamp(&now)))
            .item("expires_at", n(now.timestamp() + FAILURE_TTL_SECONDS))
            .send()
            .await
            .map_err(|e| storage(sdk_error("PutItem (failure record)", &e)))?;
        Ok(())
    }

    /// Why an SQS message last failed, and on which receive, if it was recorded.
    pub async fn failure(&self, message_id: &str) -> Result<Option<(String, u32)>, PortError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.names.table)
            .key("pk", s(format!("failure#{message_id}")))
            .key("sk", s("failure"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage(sdk_error("GetItem (failure record)", &e)))?;
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

    /// The idempotency record of `key`, written only if absent.
    fn applied_record(&self, key: &EffectKey) -> Result<TransactWriteItem, PortError> {
        let now = Utc::now();
        let put = Put::builder()
            .table_name(&self.names.table)
            .item("pk", s(format!("applied#{key}")))
            .item("sk", s("applied"))
            .item("applied_at", s(timestamp(&now)))
            .item("expires_at", n(now.timestamp() + APPLIED_TTL_SECONDS))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes `effect` and the idempotency record of `key` in one transaction. A failed
    /// condition on the record means the effect was applied before; one on the effect is
    /// answered by `on_effect_condition`.
    async fn apply_once(
        &self,
        key: &EffectKey,
        effect: TransactWriteItem,
        on_effect_condition: impl FnOnce() -> PortError,
    ) -> Result<Outcome, PortError> {
        let result = self
            .dynamo
            .transact_write_items()
            .transact_items(effect)
            .transact_items(self.applied_record(key)?)
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(Outcome::Applied),
            Err(e) => e,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            e.as_service_error()
        {
            let code = |i: usize| {
                cancelled
                    .cancellation_reasons()
                    .get(i)
                    .and_then(|r| r.code())
            };
            if code(RECORD_INDEX) == Some(CONDITION_FAILED) {
                return Ok(Outcome::Duplicate);
            }
            if code(0) == Some(CONDITION_FAILED) {
                return Err(on_effect_condition());
            }
        }
        Err(storage(sdk_error("TransactWriteItems", &e)))
    }

    /// Emulator only: copies this region's share of `product` into every other region's table,
    /// as a global table would replicate it. A share only grows and has one writer, so a copy
    /// never replaces a larger quantity (a later copy may have overtaken this one).
    async fn replicate_share(&self, product: &Product) -> Result<(), PortError> {
        if self.replicas.is_empty() {
            return Ok(());
        }
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.names.table)
            .key("pk", s("stock"))
            .key("sk", s(share_key(product, &self.region)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage(sdk_error("GetItem (stock share)", &e)))?;
        let Some(item) = out.item else {
            return Ok(());
        };
        let qty = item
            .get("qty")
            .cloned()
            .ok_or_else(|| storage(format!("stock share {product}/{} has no qty", self.region)))?;
        for (region, client) in &self.replicas {
            let put = client
                .put_item()
                .table_name(&self.names.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#qty) OR #qty <= :qty")
                .expression_attribute_names("#qty", "qty")
                .expression_attribute_values(":qty", qty.clone())
                .send()
                .await;
            match put {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                {
                    tracing::debug!(%region, %product, "a newer copy of the share is there already");
                }
                Err(e) => {
                    return Err(storage(sdk_error(
                        &format!("PutItem (copy of a stock share into {region})"),
                        &e,
                    )))
                }
            }
        }
        Ok(())
    }

    async fn query_all(
        &self,
        what: &str,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, PortError> {
        query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| storage(sdk_error(&format!("Query ({what})"), &e)))
    }
}

fn share_key(product: &Product, region: &Region) -> String {
    format!("{product}#{region}")
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn inbox_entry(item: &Item) -> Result<InboxEntry, String> {
    let field = |name: &str| text(item, name).ok_or_else(|| format!("no `{name}`"));
    Ok(InboxEntry {
        id: EventId::parse(field("id")?).map_err(|e| e.to_string())?,
        from: field("from")?.to_owned(),
        text: field("text")?.to_owned(),
        sent_at: DateTime::parse_from_rfc3339(field("sent_at")?)
            .map_err(|e| format!("`sent_at`: {e}"))?
            .with_timezone(&Utc),
        in_reply_to: text(item, "in_reply_to")
            .map(EventId::parse)
            .transpose()
            .map_err(|e| e.to_string())?,
    })
}

fn stock_share(item: &Item) -> Result<StockShare, String> {
    let field = |name: &str| text(item, name).ok_or_else(|| format!("no `{name}`"));
    let qty = item
        .get("qty")
        .and_then(|v| v.as_n().ok())
        .ok_or("no `qty`")?;
    Ok(StockShare {
        product: Product::parse(field("product")?).map_err(|e| e.to_string())?,
        region: Region::parse(field("region")?).map_err(|e| e.to_string())?,
        qty: qty.parse().map_err(|e| format!("`qty` {qty:?}: {e}"))?,
    })
}

#[async_trait]
impl Inboxes for AwsPorts {
    async fn deliver(
        &self,
        key: &EffectKey,
        owner: &Participant,
        entry: &InboxEntry,
    ) -> Result<Outcome, PortError> {
        let sent_at = timestamp(&entry.sent_at);
        let mut put = Put::builder()
            .table_name(&self.names.table)
            .item("pk", s(format!("inbox#{owner}")))
            .item("sk", s(format!("{sent_at}#{}", entry.id)))
            .item("id", s(entry.id.as_str()))
            .item("from", s(&entry.from))
            .item("text", s(&entry.text))
            .item("sent_at", s(sent_at));
        if let Some(r) = &entry.in_reply_to {
            put = put.item("in_reply_to", s(r.as_str()));
        }
        let put = put.build().map_err(build_error)?;
        // The entry has no condition of its own, so only the record's can cancel the transaction.
        self.apply_once(key, TransactWriteItem::builder().put(put).build(), || {
            storage(format!("the inbox entry of {owner} was refused"))
        })
        .await
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, PortError> {
        let query = self
            .dynamo
            .query()
            .table_name(&self.names.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("inbox#{owner}")))
            .consistent_read(true);
        self.query_all("inbox", query)
            .await?
            .iter()
            .map(|item| {
                inbox_entry(item)
                    .map_err(|e| storage(format!("inbox of {owner} holds a bad entry: {e}")))
            })
            .collect()
    }
}

#[async_trait]
impl StockShares for AwsPorts {
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError> {
        let q = u64::from(qty.get());
        let update = Update::builder()
            .table_name(&self.names.table)
            .key("pk", s("stock"))
            .key("sk", s(share_key(product, &self.region)))
            .update_expression("SET #product = :product, #region = :region ADD #qty :qty")
            // The share must still fit in a signed 64-bit number once `qty` is added.
            .condition_expression("attribute_not_exists(#qty) OR #qty <= :limit")
            .expression_attribute_names("#product", "product")
            .expression_attribute_names("#region", "region")
            .expression_attribute_names("#qty", "qty")
            .expression_attribute_values(":product", s(product.as_str()))
            .expression_attribute_values(":region", s(self.region.as_str()))
            .expression_attribute_values(":qty", n(q))
            .expression_attribute_values(":limit", n(MAX_SHARE - q))
            .build()
            .map_err(build_error)?;
        let outcome = self
            .apply_once(
                key,
                TransactWriteItem::builder().update(update).build(),
                || PortError::Overflow {
                    product: product.clone(),
                    limit: MAX_SHARE,
                },
            )
            .await?;
        // Also after a duplicate: the first attempt may have stopped before its copies.
        self.replicate_share(product).await?;
        Ok(outcome)
    }

    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError> {
        let mut query = self
            .dynamo
            .query()
            .table_name(&self.names.table)
            .expression_attribute_values(":pk", s("stock"))
            .consistent_read(true);
        query = match product {
            Some(p) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(format!("{p}#"))),
            None => query.key_condition_expression("pk = :pk"),
        };
        let mut shares = Vec::new();
        for item in self.query_all("stock shares", query).await? {
            let share = stock_share(&item).map_err(|e| {
                let sk = text(&item, "sk").unwrap_or("?");
                storage(format!("stock share {sk} is bad: {e}"))
            })?;
            // `nike#…` also begins `nike#us-west-2`'s prefix for a product called `nike`.
            if product.is_none_or(|p| *p == share.product) {
                shares.push(share);
            }
        }
        Ok(shares)
    }
}

#[async_trait]
impl Bus for AwsPorts {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        for chunk in events.chunks(PUT_EVENTS_MAX) {
            let mut pending: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .source(crate::contract::SOURCE)
                        .detail_type(event.kind().detail_type())
                        .detail(event.detail().to_string())
                        .event_bus_name(&self.names.bus)
                        .build()
                })
                .collect();
            let mut attempt = 1;
            loop {
                let out = self
                    .events
                    .put_events()
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| PortError::Bus(sdk_error("PutEvents", &e)))?;
                if out.failed_entry_count() == 0 {
                    break;
                }
                // Results come in the order of the entries; an entry with an error code was not
                // put. Without results to match, every entry is sent again (at least once).
                let results = out.entries();
                let (rejected, codes): (Vec<_>, Vec<_>) = if results.len() == pending.len() {
                    pending
                        .into_iter()
                        .zip(results)
                        .filter_map(|(entry, r)| r.error_code().map(|c| (entry, c.to_owned())))
                        .unzip()
                } else {
                    let n = pending.len();
                    (pending, vec!["(no per-entry result)".to_owned(); n])
                };
                if rejected.is_empty() {
                    break;
                }
                if attempt >= PUT_EVENTS_ATTEMPTS {
                    let mut codes = codes;
                    codes.sort();
                    codes.dedup();
                    return Err(PortError::Bus(format!(
                        "bus {} in {} rejected {} event(s) {attempt} times: {}",
                        self.names.bus,
                        self.region,
                        rejected.len(),
                        codes.join(", ")
                    )));
                }
                tracing::warn!(
                    rejected = rejected.len(),
                    codes = %codes.join(", "),
                    attempt,
                    "PutEvents rejected entries; sending them again"
                );
                tokio::time::sleep(PUT_EVENTS_BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
                pending = rejected;
            }
        }
        Ok(())
    }
}
