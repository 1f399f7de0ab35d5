//! The DynamoDB store: inboxes, stock shares, idempotency and failure records, written once
//! on the official SDK and run by both engines (on DynamoDB, or on the embedded DynamoDB).
//!
//! # The table
//!
//! One table per region: `pk` (S, hash key), `sk` (S, range key); TTL on `expires_at`
//! (epoch seconds); a stream of new and old images, which replication reads.
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | inbox entry | `inbox#<owner>` | `<id>` | `id`, `from`, `text`, `sent_at`, `in_reply_to`? |
//! | stock add (the ledger) | `stock` | `<product>#add#<event id>` | `product`, `region` (which applied it), `qty` (N) |
//! | stock share (the simulation's other designs) | `stock` | `<product>#<region>` | `product`, `region`, `qty` (N) |
//! | idempotency record | `applied#<function>#<event id>` | `applied` | `applied_at`, `digest`, `expires_at` (+7 days) |
//! | request record (front door) | `request#<event id>` | `request` | `accepted_at`, `digest`, `expires_at` (+7 days) |
//! | failure record | `failure#<message id>` | `failure` | `queue`, `reason`, `receive_count` (N), `expires_at` (+14 days) |
//! | replication position | `replication#<source region>` | `<shard id>` | `seq` (N) |
//!
//! Items handlers write also carry a replication stamp (see [`item`]). A product name may
//! contain `#`, so a query for one product keeps only the items whose `product` attribute is
//! that product.
//!
//! # Write to any region
//!
//! Every effect is an item whose key comes from the event alone: an inbox entry is keyed by its
//! message id, a stock add by its event id (the ledger; the stock is the sum of its adds). So an
//! event applied in two regions (a client's retry through another region's front door, a queue
//! drained after its region came back) writes the same item twice, and global tables' last
//! writer wins keeps one of them: nothing doubles, whichever regions applied it. An inbox is read
//! whole and put in order (`sent_at`, then id) by the reader.
//!
//! # Exactly once
//!
//! Each effect (an inbox entry, a share's `ADD`) and the idempotency record of its
//! [`EffectKey`] are written in one `TransactWriteItems`, the record with
//! `attribute_not_exists(pk)`. When the transaction is cancelled because the record exists,
//! the event was applied before: [`Outcome::Duplicate`], if the record's digest of the event's
//! content is this event's; otherwise the id was used again for another event, a permanent
//! [`PortError::Reused`]. The record expires after 7 days,
//! beyond any SQS or EventBridge redelivery.

mod coalesce;
mod failures;
pub mod item;
mod once;
mod requests;
pub mod schema;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::Utc;

use crate::contract::{Participant, Product, Quantity, Region};
use crate::ports::{
    EffectKey, InboxEntry, Inboxes, Outcome, PortError, StockShare, StockShares, MAX_SHARE,
};
use crate::sdk::SdkFailure;
use item::{n, s, text, timestamp, Item, REP_AT, REP_IN};

/// How long an idempotency record is kept: longer than any redelivery (SQS keeps a message 14
/// days at most, but retries stop after `max_receive_count` receives; EventBridge retries 24 h).
const APPLIED_TTL_SECONDS: i64 = 7 * 24 * 3600;
/// The index of the idempotency record in an effect's transaction (the effect is at 0).
const RECORD_INDEX: usize = 1;
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// The attribute of an idempotency record holding the digest of the event's content.
const DIGEST: &str = "digest";

/// A failed SDK call of `operation`, as the ports say it: retryable as the SDK's answer says.
pub(crate) fn storage(operation: impl Into<String>, e: impl Into<SdkFailure>) -> PortError {
    let e = e.into();
    PortError::Storage {
        operation: operation.into(),
        retryable: e.retryable,
        source: Box::new(e),
    }
}

/// One region's table, through a DynamoDB client built once (per cold start in Lambda).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    region: Region,
    table: String,
    dynamo: aws_sdk_dynamodb::Client,
    coalescer: std::sync::Arc<coalesce::Coalescer>,
}

impl DynamoStore {
    /// The store of `region`, in `table`, through `dynamo` (which signs for that region).
    pub fn new(region: Region, table: impl Into<String>, dynamo: aws_sdk_dynamodb::Client) -> Self {
        Self {
            region,
            table: table.into(),
            dynamo,
            coalescer: Default::default(),
        }
    }

    /// The region whose table this is.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamo
    }

    /// The replication stamp of a write made now in this region.
    fn stamp(&self) -> [(&'static str, aws_sdk_dynamodb::types::AttributeValue); 2] {
        [
            (REP_AT, s(item::rep_at(&Utc::now(), &self.region))),
            (REP_IN, s(self.region.as_str())),
        ]
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
            .map_err(|e| storage(format!("Query ({what})"), e))
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::Storage {
        operation: "building a DynamoDB request".into(),
        retryable: false,
        source: Box::new(e),
    }
}

#[async_trait]
impl Inboxes for DynamoStore {
    async fn deliver(
        &self,
        key: &EffectKey,
        owner: &Participant,
        entry: &InboxEntry,
    ) -> Result<Outcome, PortError> {
        let sent_at = timestamp(&entry.sent_at);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(item::inbox_pk(owner.as_str())))
            .item("sk", s(entry.id.as_str()))
            .item("id", s(entry.id.as_str()))
            .item("from", s(&entry.from))
            .item("text", s(&entry.text))
            .item("sent_at", s(sent_at));
        if let Some(r) = &entry.in_reply_to {
            put = put.item("in_reply_to", s(r.as_str()));
        }
        self.put_once(key, put, || format!("the inbox of {owner}"))
            .await
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, PortError> {
        let query = self
            .dynamo
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(item::inbox_pk(owner.as_str())))
            .consistent_read(true);
        // One entry that cannot be read back must not hide the others: it is reported, skipped.
        let mut entries: Vec<InboxEntry> = self
            .query_all("inbox", query)
            .await?
            .iter()
            .filter_map(|it| match item::inbox_entry(it) {
                Ok(entry) => Some(entry),
                Err(e) => {
                    let sk = text(it, "sk").unwrap_or("?");
                    tracing::error!(%owner, item = sk, error = %crate::report(&e), "skipped an unreadable inbox entry");
                    None
                }
            })
            .collect();
        entries.sort_by(|a, b| (a.sent_at, &a.id).cmp(&(b.sent_at, &b.id)));
        Ok(entries)
    }
}

impl DynamoStore {
    /// Writes the item `put` builds, stamped, with no condition of its own, and the idempotency
    /// record of `key`, once: an inbox entry or a ledger add. Only the record's condition can
    /// cancel the transaction; a cancellation naming the item would be a corrupt `what()`.
    async fn put_once(
        &self,
        key: &EffectKey,
        mut put: aws_sdk_dynamodb::types::builders::PutBuilder,
        what: impl FnOnce() -> String,
    ) -> Result<Outcome, PortError> {
        for (name, value) in self.stamp() {
            put = put.item(name, value);
        }
        let put = put.build().map_err(build_error)?;
        let effect = TransactWriteItem::builder().put(put).build();
        self.apply_once(key, effect, None, || PortError::Corrupt {
            what: what(),
            source: Box::new(once::Refused::UnconditionalEntry),
        })
        .await
    }

    /// Adds `qty` to the share of `product` kept for `share_region`, once per `key`: the
    /// designs moebi rejected, which the simulation runs to show what they lose or double. One
    /// share per region doubles an add applied in two regions; one share for every region
    /// loses updates. moebi writes a ledger instead ([`StockShares::add`]).
    pub async fn add_to_share(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
        share_region: &Region,
    ) -> Result<Outcome, PortError> {
        let q = u64::from(qty.get());
        let [(_, rep_at), (_, rep_in)] = self.stamp();
        let share = Share {
            table: self.table.clone(),
            product: product.clone(),
            region: share_region.clone(),
            rep: [rep_at, rep_in],
        };
        let effect = share.adding(q).map_err(build_error)?;
        // A batch's records adding to the same share may send one action of their total
        // ([`coalesce::Sum`]), if it still fits.
        let update = move |total: u64| share.adding(total).ok();
        let sum = coalesce::Sum {
            qty: q,
            build: Box::new(update),
        };
        self.apply_once(key, effect, Some(sum), || PortError::Overflow {
            product: product.clone(),
            limit: MAX_SHARE,
        })
        .await
    }
}

/// A stock share's item, and the stamp of the write adding to it.
struct Share {
    table: String,
    product: Product,
    region: Region,
    rep: [aws_sdk_dynamodb::types::AttributeValue; 2],
}

impl Share {
    /// The update adding `qty`, on condition that the share still fits once it is added.
    fn adding(&self, qty: u64) -> Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(item::STOCK_PK))
            .key("sk", s(item::share_sk(&self.product, &self.region)))
            .update_expression(
                "SET #product = :product, #region = :region, #rep_at = :rep_at, #rep_in = :rep_in ADD #qty :qty",
            )
            .condition_expression("attribute_not_exists(#qty) OR #qty <= :limit")
            .expression_attribute_names("#product", "product")
            .expression_attribute_names("#region", "region")
            .expression_attribute_names("#qty", "qty")
            .expression_attribute_names("#rep_at", REP_AT)
            .expression_attribute_names("#rep_in", REP_IN)
            .expression_attribute_values(":product", s(self.product.as_str()))
            .expression_attribute_values(":region", s(self.region.as_str()))
            .expression_attribute_values(":qty", n(qty))
            .expression_attribute_values(":limit", n(MAX_SHARE.saturating_sub(qty)))
            .expression_attribute_values(":rep_at", self.rep[0].clone())
            .expression_attribute_values(":rep_in", self.rep[1].clone())
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl StockShares for DynamoStore {
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(item::STOCK_PK))
            .item("sk", s(item::ledger_sk(product, &key.id)))
            .item("product", s(product.as_str()))
            .item("region", s(self.region.as_str()))
            .item("qty", n(qty.get()));
        self.put_once(key, put, || format!("the stock of {product}"))
            .await
    }

    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError> {
        let mut query = self
            .dynamo
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(item::STOCK_PK))
            .consistent_read(true);
        query = match product {
            Some(p) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(format!("{p}#"))),
            None => query.key_condition_expression("pk = :pk"),
        };
        let mut shares = Vec::new();
        for it in self.query_all("stock shares", query).await? {
            let share = item::stock_share(&it).map_err(|e| PortError::Corrupt {
                what: format!("stock share {}", text(&it, "sk").unwrap_or("?")),
                source: Box::new(e),
            })?;
            // `nike#…` also begins `nike#us-west-2`'s prefix for a product called `nike`.
            if product.is_none_or(|p| *p == share.product) {
                shares.push(share);
            }
        }
        Ok(shares)
    }
}
