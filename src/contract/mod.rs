//! The contract: the event kinds moebi carries and the validated values inside them.
//!
//! Everything that crosses a process boundary is parsed here, once. Once you hold a
//! [`Participant`], a [`Product`] or a [`Quantity`], it is valid: handlers trust it.
//!
//! - `names`: who and what is named ([`Participant`], [`Store`], [`Region`], [`Product`]).
//! - `values`: what an event carries ([`Quantity`], [`Text`]).
//! - `id`: the client-chosen [`EventId`] every effect is deduplicated on.
//! - `event`: the three kinds ([`ChatSend`], [`StockAdd`], [`StockStatus`]) and [`Event`].
//! - `envelope`: an [`Event`] parsed from an EventBridge envelope or its `detail`.

/// What every validated text type has besides its `parse`: `as_str`, from a `String` through
/// `parse` (so serde validates what it reads), into a `String`, and `Display` (which pads).
macro_rules! validated_text {
    ($name:ident) => {
        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::contract::ContractError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

mod envelope;
mod event;
mod id;
mod names;
mod values;

#[cfg(test)]
mod tests;

pub use event::{ChatSend, Event, Kind, StockAdd, StockStatus};
pub use id::EventId;
pub use names::{Participant, Product, Region, Store};
pub use values::{Quantity, Text};

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
    #[error("field `detail-type`: unknown kind {} (expected one of chat.send, stock.add, stock.status)", shown(.0))]
    UnknownKind(String),
    /// The `source` is not moebi.
    #[error("field `source`: expected \"moebi\", got {}", shown(.0))]
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

/// Most characters of a rejected value an error repeats.
const SHOWN_CHARS: usize = 64;

/// A rejected value as an error shows it: quoted, and cut after [`SHOWN_CHARS`] characters
/// (with its length), so a huge value never makes a huge line.
pub fn shown(value: &str) -> String {
    let count = value.chars().count();
    if count <= SHOWN_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(SHOWN_CHARS).collect();
    format!("{head:?}… ({count} characters)")
}
