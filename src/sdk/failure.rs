//! AWS SDK failures, sorted once: retryable or permanent, with the service's code, message and
//! request id when it answered. Every adapter (the DynamoDB store, EventBridge, SQS, the
//! replicator) turns its SDK errors into an [`SdkFailure`] through `From`, so the retry
//! decision is made in one place.

use std::error::Error;
use std::fmt::Debug;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::RequestId;

use crate::ports::Cause;

/// Error codes of a service that answered but may answer differently next time.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// One failed SDK call.
#[derive(Debug, thiserror::Error)]
#[error("{summary}")]
pub struct SdkFailure {
    /// Whether the same call may succeed when made again.
    pub retryable: bool,
    /// The service's error code, when it answered.
    pub code: Option<String>,
    /// The id AWS gave the request (`x-amzn-requestid`), when it answered: what AWS support
    /// asks for.
    pub request_id: Option<String>,
    summary: String,
    #[source]
    source: Option<Cause>,
}

impl SdkFailure {
    /// Whether the service answered with `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl<E> From<SdkError<E, HttpResponse>> for SdkFailure
where
    E: Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    fn from(e: SdkError<E, HttpResponse>) -> Self {
        match &e {
            SdkError::ServiceError(service) => {
                let err = service.err();
                let code = err.code().map(str::to_owned);
                let request_id = e.request_id().map(str::to_owned);
                let retryable = code
                    .as_deref()
                    .is_some_and(|c| RETRYABLE_CODES.contains(&c))
                    || service.raw().status().is_server_error();
                Self {
                    retryable,
                    summary: format!(
                        "{}: {} (request id {})",
                        code.as_deref().unwrap_or("unknown error"),
                        err.message().unwrap_or("(no message)"),
                        request_id.as_deref().unwrap_or("none")
                    ),
                    code,
                    request_id,
                    source: None,
                }
            }
            // The request was never built: a bug or a bad value, not the network.
            SdkError::ConstructionFailure(_) => Self::without_answer(e, false, "request not built"),
            SdkError::TimeoutError(_) => Self::without_answer(e, true, "timed out"),
            SdkError::DispatchFailure(_) => Self::without_answer(e, true, "no connection"),
            SdkError::ResponseError(_) => Self::without_answer(e, true, "unreadable response"),
            _ => Self::without_answer(e, true, "failed"),
        }
    }
}

impl SdkFailure {
    fn without_answer<E, R>(e: SdkError<E, R>, retryable: bool, what: &str) -> Self
    where
        E: Error + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        Self {
            retryable,
            code: None,
            request_id: None,
            summary: what.to_owned(),
            source: Some(e.into_source().unwrap_or_else(|e| Box::new(e))),
        }
    }
}

// SdkBody comes from aws-smithy-types, a dependency of the embedded engine (`local`).
#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_types::body::SdkBody;

    fn answered(status: u16, code: &str) -> SdkFailure {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("it went wrong")
            .build();
        let mut raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        raw.headers_mut().insert("x-amzn-requestid", "REQ-123");
        SdkError::service_error(GetItemError::generic(meta), raw).into()
    }

    #[test]
    fn a_service_error_keeps_its_code_message_and_request_id() {
        let e = answered(400, "ValidationException");
        assert!(!e.retryable);
        assert!(e.is("ValidationException"));
        assert_eq!(e.request_id.as_deref(), Some("REQ-123"));
        assert_eq!(
            e.to_string(),
            "ValidationException: it went wrong (request id REQ-123)"
        );
    }

    #[test]
    fn throttling_and_server_errors_are_worth_a_retry() {
        assert!(answered(400, "ThrottlingException").retryable);
        assert!(answered(500, "SomethingNew").retryable);
    }
}
