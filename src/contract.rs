//! The contract: the event kinds moebi carries and the validated values inside them.
//!
//! Everything that crosses a process boundary is parsed here, once. Once you hold a
//! [`Participant`], a [`Product`] or a [`Quantity`], it is valid: handlers trust it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The EventBridge `source` of every moebi event.
pub const SOURCE: &str = "moebi";

/// Why a value, a field or a whole event was rejected. Each message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A field breaks one of its rules.
    #[error("field `{field}`: {rule}")]
    Field {
        /// The field, as it is spelled in the JSON (`detail.qty`, `to`, …).
        field: String,
        /// The rule broken, in words.
        rule: String,
    },
    /// The payload is not JSON, or not of the shape expected.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The `detail-type` names no moebi kind.
    #[error("field `detail-type`: unknown kind {0:?} (expected one of chat.send, stock.add, stock.status)")]
    UnknownKind(String),
    /// The `source` is not moebi.
    #[error("field `source`: expected \"moebi\", got {0:?}")]
    WrongSource(String),
    /// A name is well formed but the topology does not know it.
    #[error("field `{field}`: unknown {what} {name:?}")]
    Unknown {
        /// The field holding the name.
        field: String,
        /// What the name should have been (participant, store, bot…).
        what: &'static str,
        /// The name given.
        name: String,
    },
}

impl ContractError {
    /// A field error.
    pub fn field(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The same error, reported under `prefix.` (e.g. `detail.qty`).
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Field { field, rule } => Self::Field {
                field: format!("{prefix}.{field}"),
                rule,
            },
            Self::Unknown { field, what, name } => Self::Unknown {
                field: format!("{prefix}.{field}"),
                what,
                name,
            },
            other => other,
        }
    }
}

/// Checks a name: 1..=32 characters, lowercase ASCII letters, digits and `-`, starting with a letter.
fn parse_name(field: &str, value: &str) -> Result<String, ContractError> {
    let rule = "must be 1 to 32 characters of a-z, 0-9 and '-', starting with a letter";
    let ok = (1..=32).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ContractError::field(
            field,
            format!("{rule}, got {value:?}"),
        ))
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the name.
            pub fn parse(value: &str) -> Result<Self, ContractError> {
                parse_name($field, value).map(Self)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ContractError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A participant or bot name: someone with an inbox (`alex`, `kate`, `moebi`).
    Participant,
    "participant"
);
name_type!(
    /// A store name (`store-1`).
    Store,
    "store"
);
name_type!(
    /// An AWS region name (`us-west-2`).
    Region,
    "region"
);

/// A product name: 1..=64 characters, no control characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Product(String);

impl Product {
    /// Longest product name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Parses and validates a product name.
    pub fn parse(value: &str) -> Result<Self, ContractError> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            return Err(ContractError::field("product", "must not be empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(ContractError::field(
                "product",
                format!(
                    "must be at most {} characters, got {chars}",
                    Self::MAX_CHARS
                ),
            ));
        }
        if value.chars().any(char::is_control) || value.trim() != value {
            return Err(ContractError::field(
                "product",
                "must have no control characters and no leading or trailing spaces",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Product {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Product> for String {
    fn from(value: Product) -> String {
        value.0
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many units one `stock.add` brings: 1..=1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Quantity(u32);

impl Quantity {
    /// Largest quantity one add may carry.
    pub const MAX: u32 = 1_000_000;

    /// Validates a quantity.
    pub fn new(value: u64) -> Result<Self, ContractError> {
        if value == 0 {
            return Err(ContractError::field("qty", "must be at least 1, got 0"));
        }
        if value > u64::from(Self::MAX) {
            return Err(ContractError::field(
                "qty",
                format!("must be at most {}, got {value}", Self::MAX),
            ));
        }
        Ok(Self(value as u32))
    }

    /// The quantity as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Take any JSON number so that negative, fractional and huge ones get the rule, not a
        // serde type error.
        let n = serde_json::Number::deserialize(d)?;
        let q = if let Some(v) = n.as_u64() {
            Quantity::new(v)
        } else if n.as_i64().is_some() {
            Err(ContractError::field(
                "qty",
                format!("must be at least 1, got {n}"),
            ))
        } else {
            Err(ContractError::field(
                "qty",
                format!("must be a whole number from 1 to {}, got {n}", Self::MAX),
            ))
        };
        q.map_err(|e| match e {
            ContractError::Field { rule, .. } => serde::de::Error::custom(rule),
            other => serde::de::Error::custom(other),
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A chat message text: 1..=4096 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// Longest text, in characters.
    pub const MAX_CHARS: usize = 4096;

    /// Parses and validates a text.
    pub fn parse(value: &str) -> Result<Self, ContractError> {
        if value.trim().is_empty() {
            return Err(ContractError::field("text", "must not be empty"));
        }
        let chars = value.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(ContractError::field(
                "text",
                format!(
                    "must be at most {} characters, got {chars}",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Text {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Text> for String {
    fn from(value: Text) -> String {
        value.0
    }
}

/// A client-chosen event id: 1..=128 characters of `A-Z a-z 0-9 - _ . :`.
///
/// Every effect is applied at most once per id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// Parses and validates an id.
    pub fn parse(value: &str) -> Result<Self, ContractError> {
        let ok = (1..=128).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ContractError::field(
                "id",
                format!("must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_', '.', ':', got {value:?}"),
            ))
        }
    }

    /// A fresh random id (UUID v4), for clients.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A stable id derived from this one: the same inputs always give the same id, so an
    /// event published again on a retry is recognised downstream as a duplicate.
    pub fn derived(&self, purpose: &str) -> Self {
        let ns = uuid::Uuid::from_u128(0x6d6f_6562_6900_4000_8000_0000_0000_0001);
        Self(uuid::Uuid::new_v5(&ns, format!("{purpose}:{}", self.0).as_bytes()).to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EventId> for String {
    fn from(value: EventId) -> String {
        value.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

    /// Parses the `detail` of an envelope of kind `kind`; errors name `detail.<field>`.
    pub fn from_detail(kind: Kind, detail: &serde_json::Value) -> Result<Self, ContractError> {
        fn parse<T: serde::de::DeserializeOwned>(
            detail: &serde_json::Value,
        ) -> Result<T, ContractError> {
            serde_path_to_error::deserialize(detail).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                // serde reports a missing field at the parent: move the name into the path.
                let (path, rule) = match inner.strip_prefix("missing field `") {
                    Some(rest) => {
                        let name = rest.split('`').next().unwrap_or_default();
                        (name.to_owned(), "is required".to_owned())
                    }
                    None => (path, strip_position(strip_field(&inner))),
                };
                let field = if path == "." || path.is_empty() {
                    "detail".to_owned()
                } else {
                    format!("detail.{path}")
                };
                ContractError::field(field, rule)
            })
        }
        if !detail.is_object() {
            return Err(ContractError::field("detail", "must be a JSON object"));
        }
        Ok(match kind {
            Kind::ChatSend => Event::ChatSend(parse(detail)?),
            Kind::StockAdd => Event::StockAdd(parse(detail)?),
            Kind::StockStatus => Event::StockStatus(parse(detail)?),
        })
    }

    /// Parses an EventBridge event (the envelope as a rule delivers it).
    pub fn from_envelope(envelope: &serde_json::Value) -> Result<Self, ContractError> {
        let obj = envelope.as_object().ok_or_else(|| {
            ContractError::Malformed("an EventBridge event must be a JSON object".into())
        })?;
        let text = |name: &str| -> Result<&str, ContractError> {
            obj.get(name)
                .ok_or_else(|| ContractError::field(name, "is required"))?
                .as_str()
                .ok_or_else(|| ContractError::field(name, "must be a string"))
        };
        let source = text("source")?;
        if source != SOURCE {
            return Err(ContractError::WrongSource(source.to_owned()));
        }
        let kind = Kind::parse(text("detail-type")?)?;
        let detail = obj
            .get("detail")
            .ok_or_else(|| ContractError::field("detail", "is required"))?;
        Self::from_detail(kind, detail)
    }

    /// Parses the text of an EventBridge event (an SQS body, a file).
    pub fn from_envelope_json(text: &str) -> Result<Self, ContractError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ContractError::Malformed(format!("not JSON: {e}")))?;
        Self::from_envelope(&value)
    }
}

/// A newtype's own error, seen through serde, already names its field: keep only the rule.
fn strip_field(message: &str) -> &str {
    match message
        .strip_prefix("field `")
        .and_then(|rest| rest.split_once("`: "))
    {
        Some((_, rule)) => rule,
        None => message,
    }
}

/// serde's messages end with "at line L column C", which means nothing to a reader of a field.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(detail: serde_json::Value) -> Result<Event, ContractError> {
        Event::from_detail(Kind::ChatSend, &detail)
    }

    #[test]
    fn names_follow_their_rule() {
        assert!(Participant::parse("alex").is_ok());
        assert!(Participant::parse("store-1").is_ok());
        for bad in ["", "Alex", "1alex", "al ex", &"a".repeat(33)] {
            let err = Participant::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("field `participant`"), "{err}");
        }
    }

    #[test]
    fn quantity_limits_are_named() {
        let q = |v: serde_json::Value| {
            Event::from_detail(
                Kind::StockAdd,
                &json!({"id": "a", "store": "store-1", "product": "nike", "qty": v}),
            )
        };
        assert!(q(json!(1)).is_ok());
        assert!(q(json!(1_000_000)).is_ok());
        for (bad, rule) in [
            (json!(0), "must be at least 1, got 0"),
            (json!(-3), "must be at least 1, got -3"),
            (json!(1_000_001), "must be at most 1000000, got 1000001"),
            (json!(1.5), "must be a whole number"),
            (json!(1e30), "must be a whole number"),
            (json!("5"), "invalid type: string"),
        ] {
            let err = q(bad).unwrap_err().to_string();
            assert!(err.starts_with("field `detail.qty`: "), "{err}");
            assert!(err.contains(rule), "{err} should contain {rule}");
        }
    }

    #[test]
    fn text_must_be_one_to_4096_characters() {
        let base =
            json!({"id": "m1", "from": "alex", "to": "kate", "sent_at": "2026-01-01T00:00:00Z"});
        let with_text = |t: &str| {
            let mut d = base.clone();
            d["text"] = json!(t);
            chat(d)
        };
        assert!(with_text("hi").is_ok());
        assert!(with_text(&"é".repeat(4096)).is_ok());
        assert_eq!(
            with_text("").unwrap_err().to_string(),
            "field `detail.text`: must not be empty"
        );
        assert_eq!(
            with_text(&"x".repeat(4097)).unwrap_err().to_string(),
            "field `detail.text`: must be at most 4096 characters, got 4097"
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let err = chat(
            json!({"id": "m1", "from": "alex", "to": "kate", "sent_at": "2026-01-01T00:00:00Z"}),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "field `detail.text`: is required");
        let err = chat(
            json!({"id": "m1", "from": "alex", "to": "kate", "text": "x",
            "sent_at": "2026-01-01T00:00:00Z", "colour": "red"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn envelope_names_kind_and_source() {
        let env = json!({"source": "moebi", "detail-type": "chat.shout", "detail": {}});
        assert!(matches!(
            Event::from_envelope(&env),
            Err(ContractError::UnknownKind(k)) if k == "chat.shout"
        ));
        let env = json!({"source": "other", "detail-type": "chat.send", "detail": {}});
        assert!(matches!(
            Event::from_envelope(&env),
            Err(ContractError::WrongSource(_))
        ));
        assert!(matches!(
            Event::from_envelope_json("{not json"),
            Err(ContractError::Malformed(_))
        ));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = EventId::parse("m1").unwrap();
        assert_eq!(a.derived("reply"), a.derived("reply"));
        assert_ne!(
            a.derived("reply"),
            EventId::parse("m2").unwrap().derived("reply")
        );
        assert!(EventId::parse(a.derived("reply").as_str()).is_ok());
    }

    #[test]
    fn events_round_trip_through_their_detail() {
        let e = chat(
            json!({"id": "m1", "from": "alex", "to": "kate", "text": "hi",
            "sent_at": "2026-01-01T00:00:00Z", "in_reply_to": "m0"}),
        )
        .unwrap();
        assert_eq!(Event::from_detail(Kind::ChatSend, &e.detail()).unwrap(), e);
    }
}
