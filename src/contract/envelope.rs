//! Parsing an [`Event`] from an EventBridge envelope or from its `detail`, with errors that
//! name the field (`detail.qty`) and the rule, never serde's wording of where it stopped.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ContractError, Event, Kind, SOURCE};

impl Event {
    /// Parses the `detail` of an envelope of kind `kind`; errors name `detail.<field>`.
    pub fn from_detail(kind: Kind, detail: &Value) -> Result<Self, ContractError> {
        if !detail.is_object() {
            return Err(ContractError::field("detail", "must be a JSON object"));
        }
        let event = match kind {
            Kind::ChatSend => Event::ChatSend(parse_detail(detail)?),
            Kind::StockAdd => Event::StockAdd(parse_detail(detail)?),
            Kind::StockStatus => Event::StockStatus(parse_detail(detail)?),
        };
        event.check_id()?;
        if let Event::ChatSend(msg) = &event {
            check_sent_at(&msg.sent_at)?;
        }
        Ok(event)
    }

    /// An id in moebi's own namespace is accepted only where moebi would have derived it: as
    /// the id of a reply, derived from the message it replies to.
    pub fn check_id(&self) -> Result<(), ContractError> {
        let id = self.id();
        if !id.is_derived() {
            return Ok(());
        }
        match self {
            Event::ChatSend(msg)
                if msg.in_reply_to.as_ref().map(|m| m.derived("reply")).as_ref() == Some(id) =>
            {
                Ok(())
            }
            _ => Err(ContractError::field(
                "detail.id",
                format!(
                    "ids starting with `moebi:` are moebi's own (a reply's, derived from what it answers), got {}",
                    super::shown(id.as_str())
                ),
            )),
        }
    }

    /// Parses an EventBridge event (the envelope as a rule delivers it).
    pub fn from_envelope(envelope: &Value) -> Result<Self, ContractError> {
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
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ContractError::Malformed(format!("not JSON: {e}")))?;
        Self::from_envelope(&value)
    }
}

/// Only times the stores write and read back in RFC 3339's four-digit years.
pub(crate) fn check_sent_at(t: &chrono::DateTime<chrono::Utc>) -> Result<(), ContractError> {
    use chrono::Datelike;
    if (1..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(ContractError::field(
            "detail.sent_at",
            format!("must be from year 1 to 9999, got {}", t.to_rfc3339()),
        ))
    }
}

/// Deserializes one kind's `detail`, reporting the failing field as `detail.<path>`.
fn parse_detail<T: DeserializeOwned>(detail: &Value) -> Result<T, ContractError> {
    serde_path_to_error::deserialize(detail).map_err(detail_error)
}

/// The field and rule a serde failure inside `detail` stands for.
fn detail_error(error: serde_path_to_error::Error<serde_json::Error>) -> ContractError {
    let path = error.path().to_string();
    let inner = error.into_inner().to_string();
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
