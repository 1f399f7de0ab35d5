//! The three kinds of event and [`Event`], any one of them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ContractError, EventId, Participant, Product, Quantity, Store, Text};

/// `chat.send`: `from` says `text` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSend {
    /// The client-chosen id.
    pub id: EventId,
    /// Who speaks.
    pub from: Participant,
    /// Who is spoken to.
    pub to: Participant,
    /// What is said.
    pub text: Text,
    /// When the sender sent it.
    pub sent_at: DateTime<Utc>,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<EventId>,
}

/// `stock.add`: `store` brings `qty` units of `product`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockAdd {
    /// The client-chosen id.
    pub id: EventId,
    /// The store adding.
    pub store: Store,
    /// The product added.
    pub product: Product,
    /// How many units.
    pub qty: Quantity,
}

/// `stock.status`: `asker` asks how much of `product` there is (or of everything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockStatus {
    /// The client-chosen id.
    pub id: EventId,
    /// Who asks; the answer lands in their inbox.
    pub asker: Participant,
    /// One product, or the whole stock when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
}

/// The kinds of event, as EventBridge `detail-type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `chat.send`
    ChatSend,
    /// `stock.add`
    StockAdd,
    /// `stock.status`
    StockStatus,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::ChatSend, Kind::StockAdd, Kind::StockStatus];

    /// The `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Kind::ChatSend => "chat.send",
            Kind::StockAdd => "stock.add",
            Kind::StockStatus => "stock.status",
        }
    }

    /// The kind a `detail-type` names.
    pub fn parse(detail_type: &str) -> Result<Self, ContractError> {
        Self::ALL
            .into_iter()
            .find(|k| k.detail_type() == detail_type)
            .ok_or_else(|| ContractError::UnknownKind(detail_type.to_owned()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail_type())
    }
}

/// One moebi event, of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A chat message.
    ChatSend(ChatSend),
    /// Stock brought by a store.
    StockAdd(StockAdd),
    /// A question about the stock.
    StockStatus(StockStatus),
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Event::ChatSend(_) => Kind::ChatSend,
            Event::StockAdd(_) => Kind::StockAdd,
            Event::StockStatus(_) => Kind::StockStatus,
        }
    }

    /// The client-chosen id.
    pub fn id(&self) -> &EventId {
        match self {
            Event::ChatSend(e) => &e.id,
            Event::StockAdd(e) => &e.id,
            Event::StockStatus(e) => &e.id,
        }
    }

    /// The `detail` object of the event's envelope.
    pub fn detail(&self) -> serde_json::Value {
        let v = match self {
            Event::ChatSend(e) => serde_json::to_value(e),
            Event::StockAdd(e) => serde_json::to_value(e),
            Event::StockStatus(e) => serde_json::to_value(e),
        };
        v.expect("contract types always serialize")
    }
}
