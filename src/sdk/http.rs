//! The HTTP client every SDK client sends through: HTTP/1.1 over hyper, TLS by rustls on ring,
//! trusting the roots compiled in (`webpki-roots`) and the certificates of `AWS_CA_BUNDLE`.
//!
//! Why not the SDK's own client: it links HTTP/2 whatever is configured (h2, 440 KB of each
//! function) and, with rustls, reads and PEM-decodes the machine's whole certificate directory
//! at every cold start (6 ms on a machine with 292 files). AWS's regional endpoints of
//! DynamoDB, EventBridge and SQS speak HTTP/1.1; Lambda's base image is not where trust should
//! come from for a static binary either. docs/performance.md, "Lean functions", has the figures.
//!
//! A private endpoint or a test server signed by another CA is trusted by naming its PEM file
//! in `AWS_CA_BUNDLE`, the variable the AWS CLI and the other SDKs read for the same purpose.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The variable naming a PEM file of certificates to trust besides the compiled-in roots.
pub const CA_BUNDLE: &str = "AWS_CA_BUNDLE";

/// How long an idle connection is kept for the next call.
const IDLE: Duration = Duration::from_secs(60);

/// Whom the client trusts.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    extra: Vec<CertificateDer<'static>>,
    builtin: bool,
}

impl TrustRoots {
    /// The roots compiled in (Mozilla's, from `webpki-roots`), nothing else.
    pub fn builtin() -> Self {
        Self {
            extra: Vec::new(),
            builtin: true,
        }
    }

    /// No root at all: only what [`TrustRoots::with_pem`] adds (a test CA).
    pub fn none() -> Self {
        Self {
            extra: Vec::new(),
            builtin: false,
        }
    }

    /// The compiled-in roots and, when `AWS_CA_BUNDLE` names a file, its certificates.
    pub fn from_env() -> Result<Self, TrustError> {
        match std::env::var_os(CA_BUNDLE) {
            Some(path) if !path.is_empty() => Self::builtin().with_pem_file(Path::new(&path)),
            _ => Ok(Self::builtin()),
        }
    }

    /// These roots and the certificates of the PEM file at `path`.
    pub fn with_pem_file(self, path: &Path) -> Result<Self, TrustError> {
        let pem =
            std::fs::read(path).map_err(|e| TrustError(format!("{}: {e}", path.display())))?;
        self.with_pem(&pem)
            .map_err(|TrustError(e)| TrustError(format!("{}: {e}", path.display())))
    }

    /// These roots and the certificates of `pem`, of which there must be at least one.
    pub fn with_pem(mut self, pem: &[u8]) -> Result<Self, TrustError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrustError(format!("not a PEM file of certificates: {e}")))?;
        if certs.is_empty() {
            return Err(TrustError("holds no PEM certificate".into()));
        }
        self.extra.extend(certs);
        Ok(self)
    }

    pub(crate) fn tls(&self) -> Result<rustls::ClientConfig, TrustError> {
        let mut roots = rustls::RootCertStore::empty();
        if self.builtin {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in &self.extra {
            roots
                .add(cert.clone())
                .map_err(|e| TrustError(format!("a certificate cannot be a root: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// Trust roots that cannot be used, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("trusted certificates ({CA_BUNDLE}): {0}")]
pub struct TrustError(String);

/// The HTTP client of every SDK client, built once per process: the compiled-in roots and
/// `AWS_CA_BUNDLE`'s. A bundle that cannot be read is logged and left out, so that a call to a
/// server it would have vouched for fails naming the certificate, not the whole process.
pub fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let roots = TrustRoots::from_env().unwrap_or_else(|e| {
                tracing::error!(error = %e, "using the compiled-in roots only");
                TrustRoots::builtin()
            });
            https_client(&roots).expect("the compiled-in roots make a TLS configuration")
        })
        .clone()
}

/// An HTTP client trusting `roots` (and speaking plain HTTP to `http://` endpoints).
pub fn https_client(roots: &TrustRoots) -> Result<SharedHttpClient, TrustError> {
    let tls = roots.tls()?;
    Ok(SharedHttpClient::new(Http1 {
        tls: Some(Arc::new(tls)),
        connectors: Arc::default(),
    }))
}

/// A plain HTTP client, for an endpoint on loopback (the embedded DynamoDB): no TLS.
pub fn loopback_http_client() -> SharedHttpClient {
    SharedHttpClient::new(Http1 {
        tls: None,
        connectors: Arc::default(),
    })
}

/// HTTP/1.1 over hyper's pooled client; one connector (one pool) per connect timeout asked for.
#[derive(Debug, Clone)]
struct Http1 {
    tls: Option<Arc<rustls::ClientConfig>>,
    connectors: Arc<Mutex<HashMap<Option<Duration>, SharedHttpConnector>>>,
}

impl HttpClient for Http1 {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeout = settings.connect_timeout();
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        connectors
            .entry(timeout)
            .or_insert_with(|| SharedHttpConnector::new(self.connector(timeout)))
            .clone()
    }
}

impl Http1 {
    fn connector(&self, connect_timeout: Option<Duration>) -> Connector {
        let mut tcp = TcpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        tcp.enforce_http(self.tls.is_none());
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(IDLE)
            .pool_timer(TokioTimer::new());
        match &self.tls {
            Some(tls) => Connector::Tls(
                builder.build(
                    hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config((**tls).clone())
                        .https_or_http()
                        .enable_http1()
                        .wrap_connector(tcp),
                ),
            ),
            None => Connector::Plain(builder.build(tcp)),
        }
    }
}

/// One pool of connections.
#[derive(Debug, Clone)]
enum Connector {
    Tls(Client<hyper_rustls::HttpsConnector<TcpConnector>, SdkBody>),
    Plain(Client<TcpConnector, SdkBody>),
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = match self {
            Connector::Tls(client) => client.request(request),
            Connector::Plain(client) => client.request(request),
        };
        HttpConnectorFuture::new(async move {
            match response.await {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(sort(e)),
            }
        })
    }
}

/// A failed exchange as the SDK's retry policy reads it: a connection that could not be made,
/// broke or was closed is I/O (retried); a request hyper refused is the caller's.
fn sort(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let hyper = chain(&error).find_map(|e| e.downcast_ref::<hyper::Error>());
    if hyper.is_some_and(|h| h.is_user()) {
        return ConnectorError::user(error.into());
    }
    let io = chain(&error).any(|e| e.is::<std::io::Error>());
    if error.is_connect()
        || io
        || hyper.is_some_and(|h| h.is_closed() || h.is_canceled() || h.is_incomplete_message())
    {
        return ConnectorError::io(error.into());
    }
    ConnectorError::other(error.into(), None)
}

fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}
