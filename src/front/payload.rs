//! API Gateway's HTTP API payload (format 2.0) in and out, as `aws_lambda_events` types it.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{header, HeaderMap, HeaderValue};
use serde_json::Value;

use super::{Reply, Request};
use crate::contract::{ContractError, Region};

/// An HTTP API request, parsed from Lambda's payload, its body decoded.
#[derive(Debug, Clone)]
pub struct HttpPayload {
    request: ApiGatewayV2httpRequest,
    body: Vec<u8>,
}

impl HttpPayload {
    /// Parses a payload 2.0 request; a payload of another shape is malformed (a wiring error).
    pub fn parse(payload: Value) -> Result<Self, ContractError> {
        let request: ApiGatewayV2httpRequest = serde_json::from_value(payload).map_err(|e| {
            ContractError::Malformed(format!("not an HTTP API (payload 2.0) request: {e}"))
        })?;
        let text = request.body.as_deref().unwrap_or_default();
        let body = if request.is_base64_encoded {
            aws_smithy_types::base64::decode(text).map_err(|e| {
                ContractError::Malformed(format!("the body is not valid base64: {e}"))
            })?
        } else {
            text.as_bytes().to_vec()
        };
        Ok(Self { request, body })
    }

    /// Whether a payload is an HTTP API request (it has `requestContext.http`).
    pub fn is_http(payload: &Value) -> bool {
        payload["requestContext"]["http"].is_object()
    }

    /// The region of the API that took the request, from its domain name
    /// (`<api>.execute-api.<region>.amazonaws.com`).
    pub fn region(&self) -> Option<Result<Region, ContractError>> {
        let domain = self.request.request_context.domain_name.as_deref()?;
        let mut labels = domain.split('.');
        labels.find(|l| *l == "execute-api")?;
        labels.next().map(Region::parse)
    }

    /// The request as the front door reads it. The route is the API's route key
    /// (`POST /messages`) where there is one, else the method and the path.
    pub fn request(&self) -> Request<'_> {
        let context = &self.request.request_context;
        let from_key = context
            .route_key
            .as_deref()
            .and_then(|key| key.split_once(' '));
        let (method, path) = from_key.unwrap_or((
            context.http.method.as_str(),
            self.request
                .raw_path
                .as_deref()
                .or(context.http.path.as_deref())
                .unwrap_or("/"),
        ));
        Request {
            method,
            path,
            after: self.request.query_string_parameters.first("after"),
            body: &self.body,
            claims: context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
        }
    }
}

impl Reply {
    /// The answer as API Gateway takes it: the status, a JSON body.
    pub fn to_response(&self) -> ApiGatewayV2httpResponse {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let mut response = ApiGatewayV2httpResponse::default();
        response.status_code = i64::from(self.status);
        response.headers = headers;
        response.body = Some(Body::Text(self.body.to_string()));
        response
    }
}
