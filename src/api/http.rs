//! JSON over HTTP(S) for the API client: hyper's pooled client, TLS by rustls with the trust
//! roots every SDK client of moebi uses (`moebi::sdk::http`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::ApiError;
use crate::sdk::TrustRoots;

/// A JSON exchange's answer: the status and the body, parsed when it is JSON.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body (`Null` when empty or not JSON).
    pub body: Value,
}

/// One pooled HTTP(S) client.
#[derive(Clone, Debug)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    /// A client trusting the compiled-in roots and `AWS_CA_BUNDLE`'s.
    pub fn new() -> Result<Self, ApiError> {
        let roots = TrustRoots::from_env().map_err(|e| ApiError::Transport(Box::new(e)))?;
        let tls = roots.tls().map_err(|e| ApiError::Transport(Box::new(e)))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Sends `body` (JSON) with `method` to `url`, with extra headers; answers what came back.
    pub async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, ApiError> {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        if body.is_some()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| ApiError::Transport(Box::new(e)))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| ApiError::Transport(Box::new(e)))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ApiError::Transport(Box::new(e)))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// [`Self::exchange`] with a bearer token.
    pub async fn authorized(
        &self,
        method: Method,
        url: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ApiError> {
        let bearer = format!("Bearer {token}");
        let auth = AUTHORIZATION.as_str();
        self.exchange(method, url, &[(auth, &bearer)], body).await
    }
}
