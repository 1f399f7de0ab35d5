//! How moebi's values are laid out in DynamoDB items, and read back.
//!
//! Every item a handler writes carries `rep_at` (`<when>#<region>`: RFC 3339 in UTC with
//! microseconds, then the region, so two regions never tie) and `rep_in` (the region that
//! wrote it): the replication stamp by which the replicator orders writes of different regions
//! (last writer wins), as global tables order theirs. A copy made
//! by the replicator also carries `rep_seq`, the sequence number of the stream record it came
//! from, which orders two writes of one region.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::contract::{EventId, Product, Region};
use crate::ports::{Cause, InboxEntry, StockShare};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// When the item was written (replication order).
pub const REP_AT: &str = "rep_at";
/// Which region wrote it.
pub const REP_IN: &str = "rep_in";
/// On a replica: the sequence number of the stream record it was copied from.
pub const REP_SEQ: &str = "rep_seq";

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The RFC 3339 form inbox keys sort by: UTC, microseconds, `Z`, always the same width.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The replication stamp `rep_at` of a write made at `t` in `region`.
pub fn rep_at(t: &DateTime<Utc>, region: &Region) -> String {
    format!("{}#{region}", timestamp(t))
}

/// The partition key of `owner`'s inbox.
pub fn inbox_pk(owner: &str) -> String {
    format!("inbox#{owner}")
}

/// The partition key all stock shares live under.
pub const STOCK_PK: &str = "stock";

/// The sort key of one region's share of a product.
pub fn share_sk(product: &Product, region: &Region) -> String {
    format!("{product}#{region}")
}

/// The sort key of one add of the ledger: the product, then the event id, so that an add
/// applied in two regions is one item.
pub fn ledger_sk(product: &Product, id: &EventId) -> String {
    format!("{product}#add#{id}")
}

/// A string attribute of an item.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// Why a stored item cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum BadItem {
    /// An attribute is missing.
    #[error("no `{0}`")]
    Missing(&'static str),
    /// An attribute holds what moebi would not have written.
    #[error("`{attribute}` is invalid")]
    Invalid {
        /// The attribute.
        attribute: &'static str,
        /// Why.
        #[source]
        source: Cause,
    },
}

fn field<'a>(item: &'a Item, name: &'static str) -> Result<&'a str, BadItem> {
    text(item, name).ok_or(BadItem::Missing(name))
}

fn invalid(attribute: &'static str) -> impl FnOnce(Cause) -> BadItem {
    move |source| BadItem::Invalid { attribute, source }
}

fn event_id(value: &str, attribute: &'static str) -> Result<EventId, BadItem> {
    EventId::parse(value).map_err(|e| invalid(attribute)(Box::new(e)))
}

/// Reads an inbox entry.
pub fn inbox_entry(item: &Item) -> Result<InboxEntry, BadItem> {
    Ok(InboxEntry {
        id: event_id(field(item, "id")?, "id")?,
        from: field(item, "from")?.to_owned(),
        text: field(item, "text")?.to_owned(),
        sent_at: DateTime::parse_from_rfc3339(field(item, "sent_at")?)
            .map_err(|e| invalid("sent_at")(Box::new(e)))?
            .with_timezone(&Utc),
        in_reply_to: text(item, "in_reply_to")
            .map(|r| event_id(r, "in_reply_to"))
            .transpose()?,
    })
}

/// Reads a stock share.
pub fn stock_share(item: &Item) -> Result<StockShare, BadItem> {
    let qty = item
        .get("qty")
        .and_then(|v| v.as_n().ok())
        .ok_or(BadItem::Missing("qty"))?;
    Ok(StockShare {
        product: Product::parse(field(item, "product")?)
            .map_err(|e| invalid("product")(Box::new(e)))?,
        region: Region::parse(field(item, "region")?)
            .map_err(|e| invalid("region")(Box::new(e)))?,
        qty: qty.parse().map_err(|e| invalid("qty")(Box::new(e)))?,
    })
}
