//! What an event carries besides names: a quantity of stock, a chat text.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ContractError;

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
}

validated_text!(Text);
