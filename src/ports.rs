//! The ports: the small capabilities the handlers need, implemented by each engine.
//!
//! A handler asks only for what it uses. No port mentions AWS; `engine::local` implements
//! them on SQLite and an in-process bus, `engine::aws` on DynamoDB and EventBridge.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{ChatSend, Event, EventId, Participant, Product, Quantity, Region};
use crate::topology::{Function, Topology};

/// Whether a write took effect, or had already been applied for that event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The effect was applied now.
    Applied,
    /// The effect had been applied before: nothing changed.
    Duplicate,
}

/// A failure of the infrastructure behind a port: transient, worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The store (SQLite, DynamoDB) failed.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The bus (in-process, EventBridge) failed.
    #[error("publishing failed: {0}")]
    Bus(String),
    /// A stock total would no longer fit.
    #[error("field `detail.qty`: the stock of {product} would exceed {limit}")]
    Overflow {
        /// The product.
        product: Product,
        /// The largest total a share may hold.
        limit: u64,
    },
}

/// The idempotency key of one effect: which function applied which event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EffectKey {
    /// The function applying the effect.
    pub function: Function,
    /// The event it applies.
    pub id: EventId,
}

impl EffectKey {
    /// The key of `function` applying event `id`.
    pub fn new(function: Function, id: &EventId) -> Self {
        Self {
            function,
            id: id.clone(),
        }
    }
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.function, self.id)
    }
}

/// One message in an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The id of the message (for an answer of the stock, derived from the question's id).
    pub id: EventId,
    /// Who sent it: a participant, a bot, or `stock` for the stock's answers.
    pub from: String,
    /// What it says.
    pub text: String,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// The message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<EventId>,
}

impl InboxEntry {
    /// The sender of the stock's answers.
    pub const STOCK: &'static str = "stock";

    /// The entry a chat message makes in its recipient's inbox.
    pub fn from_chat(msg: &ChatSend) -> Self {
        Self {
            id: msg.id.clone(),
            from: msg.from.to_string(),
            text: msg.text.as_str().to_owned(),
            sent_at: msg.sent_at,
            in_reply_to: msg.in_reply_to.clone(),
        }
    }
}

/// One region's share of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockShare {
    /// The product.
    pub product: Product,
    /// The region whose stock-add wrote this share (its only writer).
    pub region: Region,
    /// Units held.
    pub qty: u64,
}

/// Largest total one share may hold: both SQLite and DynamoDB keep it as a signed 64-bit number.
pub const MAX_SHARE: u64 = i64::MAX as u64;

/// The participants' inboxes.
#[async_trait]
pub trait Inboxes: Send + Sync {
    /// Puts `entry` into `owner`'s inbox, once per `key`.
    async fn deliver(
        &self,
        key: &EffectKey,
        owner: &Participant,
        entry: &InboxEntry,
    ) -> Result<Outcome, PortError>;

    /// `owner`'s inbox, oldest first.
    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, PortError>;
}

/// The stock, kept as one share per (product, region).
#[async_trait]
pub trait StockShares: Send + Sync {
    /// Grows this region's share of `product` by `qty`, once per `key`.
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError>;

    /// Every region's shares of `product`, or of every product.
    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError>;
}

/// The region's `moebi` bus.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes events; delivery is at least once.
    async fn publish(&self, events: &[Event]) -> Result<(), PortError>;
}

/// What a handler runs against: one region's ports and the topology.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// The region the handler runs in.
    pub region: &'a Region,
    /// Who lives where.
    pub topology: &'a Topology,
    /// Inboxes.
    pub inboxes: &'a dyn Inboxes,
    /// Stock shares.
    pub stock: &'a dyn StockShares,
    /// The region's bus.
    pub bus: &'a dyn Bus,
}
