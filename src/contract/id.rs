//! The client-chosen event id, on which every effect is deduplicated.

use serde::{Deserialize, Serialize};

use super::ContractError;

/// A client-chosen event id: 1..=128 characters of `A-Z a-z 0-9 - _ . :`.
///
/// Every effect is applied at most once per id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

/// What the ids moebi derives start with.
const DERIVED: &str = "moebi:";

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
                format!(
                    "must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_', '.', ':', got {}",
                    super::shown(value)
                ),
            ))
        }
    }

    /// A fresh random id (UUID v4), for clients.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// A stable id derived from this one: the same inputs always give the same id, so an
    /// event published again on a retry is recognised downstream as a duplicate.
    ///
    /// Derived ids live in their own namespace (`moebi:<purpose>:<uuid>`): an event may carry
    /// one only as the derivation of the event it answers ([`Event::check_id`]), so no
    /// client-chosen id can take the id of a reply moebi has yet to send.
    ///
    /// [`Event::check_id`]: super::Event::check_id
    pub fn derived(&self, purpose: &str) -> Self {
        let ns = uuid::Uuid::from_u128(0x6d6f_6562_6900_4000_8000_0000_0000_0001);
        let uuid = uuid::Uuid::new_v5(&ns, format!("{purpose}:{}", self.0).as_bytes());
        Self(format!("{DERIVED}{purpose}:{uuid}"))
    }

    /// Whether the id is in the namespace of the ids moebi derives.
    pub fn is_derived(&self) -> bool {
        self.0.starts_with(DERIVED)
    }
}

validated_text!(EventId);
