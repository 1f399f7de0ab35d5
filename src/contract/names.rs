//! Names: who has an inbox, which store, which region, which product.

use serde::{Deserialize, Serialize};

use super::ContractError;

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
            format!("{rule}, got {}", super::shown(value)),
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
        }

        validated_text!($name);
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
}

validated_text!(Product);
