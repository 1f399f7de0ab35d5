//! What a deployment's tables, buses, rules and queues are called (the same in every region).

use crate::topology::Function;

/// The name everything is called by default.
const BASE: &str = "moebi";
/// Longest namespace: the longest rule name (`moebi-<ns>-stock-status-to-<region>`) must stay
/// within EventBridge's 64 characters.
const MAX_NAMESPACE: usize = 20;

/// A resource name AWS would refuse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadName(String);

/// The names of one deployment's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    /// The DynamoDB table.
    pub table: String,
    /// The EventBridge bus.
    pub bus: String,
    /// What rule and queue names start with (`moebi`, or `moebi-<namespace>`).
    pub prefix: String,
}

impl Default for ResourceNames {
    fn default() -> Self {
        Self {
            table: BASE.into(),
            bus: BASE.into(),
            prefix: BASE.into(),
        }
    }
}

impl ResourceNames {
    /// The names within namespace `ns`: `moebi-ns`, `moebi-ns-chat-send`, …
    pub fn namespaced(ns: &str) -> Self {
        let prefix = format!("{BASE}-{ns}");
        Self {
            table: prefix.clone(),
            bus: prefix.clone(),
            prefix,
        }
    }

    /// The names a function deployed by Terraform is given: its table and bus, default prefix.
    pub fn of_function(table: String, bus: String) -> Self {
        Self {
            table,
            bus,
            prefix: BASE.into(),
        }
    }

    /// The queue in front of `function`.
    pub fn queue(&self, function: Function) -> String {
        format!("{}-{}", self.prefix, function.name())
    }

    /// The dead-letter queue of `function`'s queue.
    pub fn dlq(&self, function: Function) -> String {
        format!("{}-dlq", self.queue(function))
    }

    /// The EventBridge name of a topology rule.
    pub fn rule(&self, rule: &str) -> String {
        format!("{}-{rule}", self.prefix)
    }

    /// The role EventBridge assumes to forward events to another region's bus.
    pub fn forward_role(&self) -> String {
        format!("{}-forward", self.prefix)
    }

    /// Checks every name against what DynamoDB, EventBridge and SQS accept.
    pub fn validate(&self) -> Result<(), BadName> {
        let ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 200
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        for (what, name) in [
            ("table", &self.table),
            ("bus", &self.bus),
            ("prefix", &self.prefix),
        ] {
            if !ok(name) {
                return Err(BadName(format!(
                    "invalid {what} name {name:?}: use 1 to 200 characters of A-Z, a-z, 0-9, '-', '_', '.'"
                )));
            }
        }
        if self.table.len() < 3 {
            return Err(BadName(format!(
                "invalid table name {:?}: DynamoDB needs at least 3 characters",
                self.table
            )));
        }
        if self.prefix.len() > BASE.len() + 1 + MAX_NAMESPACE {
            return Err(BadName(format!(
                "name prefix {:?} is too long: rule names would exceed 64 characters",
                self.prefix
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_to_moebi_and_take_a_namespace() {
        let n = ResourceNames::default();
        assert_eq!((n.table.as_str(), n.bus.as_str()), ("moebi", "moebi"));
        assert_eq!(n.queue(Function::ChatSend), "moebi-chat-send");
        assert_eq!(n.dlq(Function::StockAdd), "moebi-stock-add-dlq");
        let n = ResourceNames::namespaced("t1");
        assert_eq!(n.table, "moebi-t1");
        assert_eq!(n.queue(Function::ChatSend), "moebi-t1-chat-send");
        assert_eq!(n.rule("chat-to-us-east-1"), "moebi-t1-chat-to-us-east-1");
        assert!(n.validate().is_ok());
        assert!(ResourceNames::namespaced("a b").validate().is_err());
        assert!(ResourceNames::namespaced(&"x".repeat(21))
            .validate()
            .is_err());
    }
}
