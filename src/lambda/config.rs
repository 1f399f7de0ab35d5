//! A function's configuration, from its environment.

use crate::contract::Region;
use crate::resources::ResourceNames;
use crate::topology::TopologyError;

/// Why a function cannot start: its configuration, named so that the init error says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A variable is missing or wrong, or the topology lacks the function's region.
    #[error("configuration: {0}")]
    Config(String),
    /// The topology (`MOEBI_TOPOLOGY`) does not load.
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

/// A Lambda function's configuration, from its environment.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The region the function runs in.
    pub region: Region,
    /// An emulator's endpoint (`AWS_ENDPOINT_URL`); `None` talks to AWS itself.
    pub endpoint_url: Option<String>,
    /// The table and the bus.
    pub names: ResourceNames,
}

impl FunctionConfig {
    /// Reads `MOEBI_REGION` (or `AWS_REGION`), `MOEBI_TABLE`, `MOEBI_BUS` and
    /// `AWS_ENDPOINT_URL` from the process environment.
    pub fn from_env() -> Result<Self, StartError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (an environment); an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StartError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let required = |name: &str, what: &str| {
            get(name)
                .ok_or_else(|| StartError::Config(format!("{name} is not set: it names {what}")))
        };
        let (variable, region) = match get("MOEBI_REGION") {
            Some(r) => ("MOEBI_REGION", r),
            None => (
                "AWS_REGION",
                get("AWS_REGION").ok_or_else(|| {
                    StartError::Config(
                        "MOEBI_REGION (or AWS_REGION) is not set: it names the region the function runs in"
                            .into(),
                    )
                })?,
            ),
        };
        let region =
            Region::parse(&region).map_err(|e| StartError::Config(format!("{variable}: {e}")))?;
        let names = ResourceNames::of_function(
            required("MOEBI_TABLE", "the DynamoDB table")?,
            required("MOEBI_BUS", "the EventBridge bus")?,
        );
        names
            .validate()
            .map_err(|e| StartError::Config(format!("MOEBI_TABLE or MOEBI_BUS: {e}")))?;
        Ok(Self {
            region,
            endpoint_url: get("AWS_ENDPOINT_URL"),
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn function_config_names_the_missing_variable() {
        let err = FunctionConfig::from_lookup(env(&[("MOEBI_BUS", "moebi")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MOEBI_REGION (or AWS_REGION)"), "{err}");
        let err = FunctionConfig::from_lookup(env(&[
            ("AWS_REGION", "eu-west-1"),
            ("MOEBI_BUS", "moebi"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("MOEBI_TABLE"), "{err}");
        let err = FunctionConfig::from_lookup(env(&[
            ("MOEBI_REGION", "eu-west-1"),
            ("MOEBI_TABLE", "moebi"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("MOEBI_BUS"), "{err}");
        let err = FunctionConfig::from_lookup(env(&[
            ("MOEBI_REGION", "Mars"),
            ("MOEBI_TABLE", "moebi"),
            ("MOEBI_BUS", "moebi"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("configuration: MOEBI_REGION"), "{err}");
    }

    #[test]
    fn function_config_prefers_moebi_region_and_reads_the_endpoint() {
        let c = FunctionConfig::from_lookup(env(&[
            ("MOEBI_REGION", "eu-west-1"),
            ("AWS_REGION", "us-east-1"),
            ("MOEBI_TABLE", "moebi-x"),
            ("MOEBI_BUS", "moebi-x"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(c.region.as_str(), "eu-west-1");
        assert_eq!(c.names.table, "moebi-x");
        assert!(c.endpoint_url.is_some());
        let c = FunctionConfig::from_lookup(env(&[
            ("AWS_REGION", "us-east-1"),
            ("MOEBI_TABLE", "moebi"),
            ("MOEBI_BUS", "moebi"),
            ("AWS_ENDPOINT_URL", ""),
        ]))
        .unwrap();
        assert_eq!(c.region.as_str(), "us-east-1");
        assert!(c.endpoint_url.is_none());
    }
}
