//! The ports: the small capabilities the handlers need, implemented by each engine.
//!
//! A handler asks only for what it uses. No port mentions AWS: the inboxes and stock shares
//! are implemented once, by [`crate::store::DynamoStore`] (on DynamoDB, or the embedded
//! DynamoDB), and the bus by each engine (in-process, or EventBridge).

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

/// What caused a failure: any error, kept whole so its chain can be reported and inspected.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the infrastructure behind a port, or of what it holds.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The store (DynamoDB, or the embedded one) could not do an operation.
    #[error("storage: {operation} failed")]
    Storage {
        /// The operation, e.g. `TransactWriteItems (inbox entry)`.
        operation: String,
        /// Whether doing it again may succeed.
        retryable: bool,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The store holds an item moebi cannot read back.
    #[error("storage: {what} is unreadable")]
    Corrupt {
        /// Which item.
        what: String,
        /// What is wrong with it.
        #[source]
        source: Cause,
    },
    /// The bus (in-process, EventBridge) could not take events.
    #[error("publishing: {operation} failed")]
    Bus {
        /// The operation.
        operation: String,
        /// Whether publishing again may succeed.
        retryable: bool,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The event's id was applied before, for an event with other content.
    #[error(
        "event id {id} was applied by {function} before, for other content: an id names one event"
    )]
    Reused {
        /// The id.
        id: EventId,
        /// The function that applied it.
        function: Function,
    },
    /// A stock total would no longer fit.
    #[error("the stock of {product} would exceed {limit}")]
    Overflow {
        /// The product.
        product: Product,
        /// The largest total a share may hold.
        limit: u64,
    },
}

impl PortError {
    /// Whether the same call may succeed later (the infrastructure, not the data, failed).
    pub fn is_retryable(&self) -> bool {
        match self {
            PortError::Storage { retryable, .. } | PortError::Bus { retryable, .. } => *retryable,
            PortError::Corrupt { .. } | PortError::Overflow { .. } | PortError::Reused { .. } => {
                false
            }
        }
    }
}

/// The idempotency key of one effect: which function applied which event, and a digest of
/// the event's content, kept with the record so that an id used again for other content is
/// told from a redelivery (as Powertools' payload validation does).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EffectKey {
    /// The function applying the effect.
    pub function: Function,
    /// The event it applies.
    pub id: EventId,
    /// [`digest`] of the event.
    pub digest: String,
}

impl EffectKey {
    /// The key of `function` applying event `id`, whose content is `event`. An event that
    /// cannot be serialized has no digest: an error, never a digest of nothing (which would
    /// make every such event a duplicate of the first).
    pub fn new(
        function: Function,
        id: &EventId,
        event: &impl serde::Serialize,
    ) -> Result<Self, PortError> {
        let digest = digest(event).map_err(|e| PortError::Storage {
            operation: format!("digesting event {id} for its idempotency record"),
            retryable: false,
            source: Box::new(e),
        })?;
        Ok(Self {
            function,
            id: id.clone(),
            digest,
        })
    }
}

/// SHA-256 (hex) of an event as JSON, without `sent_at`: a client that retries may stamp its
/// message again (moebi's own replies are stamped when published), but what it says, to whom,
/// is what one id must keep.
pub fn digest(event: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    use sha2::Digest;
    let mut value = serde_json::to_value(event)?;
    if let Some(fields) = value.as_object_mut() {
        fields.remove("sent_at");
    }
    let bytes = serde_json::to_vec(&value)?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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

/// One inbox entry as a line: `alex: hi`, with what it replies to. Control characters
/// (newlines, escapes) are shown escaped, so a message can neither forge another line nor
/// drive the terminal.
impl fmt::Display for InboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, text) = (printable(&self.from), printable(&self.text));
        match &self.in_reply_to {
            Some(r) => write!(f, "{from}: {text}  (reply to {r})"),
            None => write!(f, "{from}: {text}"),
        }
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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

/// A part of the stock of one product: one add of the ledger (or, in the designs the
/// simulation compares, one region's share). The stock of a product is the sum of its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockShare {
    /// The product.
    pub product: Product,
    /// The region whose stock-add wrote it.
    pub region: Region,
    /// Units held.
    pub qty: u64,
}

/// Largest total one share may hold: kept below what a signed 64-bit number holds, so every
/// reader (DynamoDB's numbers, the SDK, SQLite under dynoxide) reads it back exactly.
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

/// The stock: a ledger of adds, each keyed by its event id, whose sum is the stock.
#[async_trait]
pub trait StockShares: Send + Sync {
    /// Records the add of `qty` units of `product` under `key`'s event id, once: an add
    /// applied again, here or in another region, is the same item.
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError>;

    /// The parts of the stock of `product`, or of every product.
    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError>;
}

/// A request the front door took: the event id it publishes under, and a digest of what the
/// caller asked (who, which route, what body), so that a retry is told from an id used again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The event id the request publishes (client-chosen, or drawn by the front door).
    pub id: EventId,
    /// [`digest`] of the request.
    pub digest: String,
}

/// Whether a request was new, a retry of one taken before, or its id was taken by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// First time this id is seen: recorded now.
    New,
    /// The same request was taken before: answer as then (and publish again, which is safe).
    Again,
    /// The id was taken before for another request.
    Conflict,
}

/// The requests the front door took, keyed by event id.
#[async_trait]
pub trait Requests: Send + Sync {
    /// Records `key` unless its id is taken; answers whether it was new, the same, or another.
    async fn accept(&self, key: &RequestKey) -> Result<Acceptance, PortError>;
}

/// The region's `moebi` bus.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes events; delivery is at least once.
    async fn publish(&self, events: &[Event]) -> Result<(), PortError>;
}

/// Where a handler runs: its region, and who lives where.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    /// The region the handler runs in.
    pub region: &'a Region,
    /// Who lives where.
    pub topology: &'a Topology,
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

impl<'a> Ports<'a> {
    /// Where these ports are.
    pub fn site(&self) -> Site<'a> {
        Site {
            region: self.region,
            topology: self.topology,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> EventId {
        EventId::parse("e-1").unwrap()
    }

    #[test]
    fn an_event_that_cannot_be_serialized_has_no_key_rather_than_a_digest_of_nothing() {
        // JSON objects take only string keys: this map cannot be serialized.
        let unserializable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = EffectKey::new(Function::StockAdd, &id(), &unserializable).unwrap_err();
        assert!(!err.is_retryable(), "{err:?}");
        assert!(err.to_string().contains("digesting event e-1"), "{err}");
    }

    #[test]
    fn the_digest_tells_content_apart_but_not_a_new_sent_at() {
        let key = |v: serde_json::Value| EffectKey::new(Function::ChatSend, &id(), &v).unwrap();
        let a = key(serde_json::json!({ "text": "hi", "sent_at": "1" }));
        let b = key(serde_json::json!({ "text": "hi", "sent_at": "2" }));
        let c = key(serde_json::json!({ "text": "ho", "sent_at": "1" }));
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
    }
}
