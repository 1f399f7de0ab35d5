//! Why the front door refused a request, and the HTTP answer each reason gets.

use crate::contract::{ContractError, EventId};
use crate::ports::PortError;

/// A refused request. Nothing is published for any of them.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No verified token claims, or none naming a user: 401.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller may not do this, or not as whom the body says: 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such route: 404.
    #[error("no route {0}")]
    NoRoute(String),
    /// The body is larger than any valid request: 413.
    #[error("the body is {size} bytes; a request takes at most {limit}")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The most a request takes.
        limit: usize,
    },
    /// The body breaks the contract: 400, naming the field.
    #[error(transparent)]
    Invalid(#[from] ContractError),
    /// The id was taken by another request: 409.
    #[error("id {0} was used before for another request: an id names one request")]
    Conflict(EventId),
    /// The store or the bus failed: 503 when a retry may help, else 500.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Unauthenticated(_) => 401,
            Refusal::Forbidden(_) => 403,
            Refusal::NoRoute(_) => 404,
            Refusal::TooLarge { .. } => 413,
            Refusal::Invalid(_) => 400,
            Refusal::Conflict(_) => 409,
            Refusal::Port(e) if e.is_retryable() => 503,
            Refusal::Port(_) => 500,
        }
    }

    /// What kind of refusal, for the body, the logs and the metrics.
    pub fn error_type(&self) -> &'static str {
        match self {
            Refusal::Unauthenticated(_) => "Unauthenticated",
            Refusal::Forbidden(_) => "Forbidden",
            Refusal::NoRoute(_) => "NoRoute",
            Refusal::TooLarge { .. } => "TooLarge",
            Refusal::Invalid(_) => "InvalidField",
            Refusal::Conflict(_) => "IdConflict",
            Refusal::Port(e) if e.is_retryable() => "Retryable.Unavailable",
            Refusal::Port(_) => "Permanent.Internal",
        }
    }

    /// The field a 400 names (`to`, `qty`), as the client spelled it.
    pub fn field(&self) -> Option<&str> {
        match self {
            Refusal::Invalid(ContractError::Field { field, .. })
            | Refusal::Invalid(ContractError::Unknown { field, .. }) => Some(field),
            _ => None,
        }
    }

    /// The answer's JSON body: `{"error": …, "type": …, "field"?: …}`.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "error": crate::report(self),
            "type": self.error_type(),
        });
        if let Some(field) = self.field() {
            body["field"] = field.into();
        }
        body
    }
}
