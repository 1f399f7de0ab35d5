//! A fault-injecting HTTP proxy in front of the emulators: DynamoDB and its streams go to one
//! embedded DynamoDB (dynoxide) per region, the rest (SQS, EventBridge) to moto. Every request
//! is forwarded, or, at a seeded rate, answered with an error (500 `InternalFailure`), throttled (400
//! `ThrottlingException`), dropped before it reaches the emulator (the connection closes), or
//! forwarded and its response dropped (the write happened; the caller never hears).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The kinds of fault, in the order of [`Proxy::injected`].
pub const KINDS: [&str; 4] = [
    "errors",
    "throttles",
    "dropped connections",
    "dropped responses",
];

struct State {
    upstream: String,
    dynamo: std::collections::BTreeMap<String, String>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    rng: Mutex<fastrand::Rng>,
    /// Per mille, for each kind.
    rate: u32,
    on: AtomicBool,
    injected: [AtomicU64; 4],
    forwarded: AtomicU64,
}

/// A running proxy.
pub struct Proxy {
    /// Where it listens.
    pub url: String,
    state: Arc<State>,
}

/// The connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injected: connection dropped")
    }
}

impl std::error::Error for Dropped {}

impl Proxy {
    /// Starts a proxy to `upstream`, and to `dynamo` (region → URL) for DynamoDB, injecting
    /// each kind of fault at `per_mille`/1000 of the requests once [`Proxy::inject`] is on.
    pub async fn start(
        upstream: &str,
        dynamo: std::collections::BTreeMap<String, String>,
        seed: u64,
        per_mille: u32,
    ) -> Proxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            dynamo,
            client: Client::builder(TokioExecutor::new()).build_http(),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            rate: per_mille,
            on: AtomicBool::new(false),
            injected: Default::default(),
            forwarded: AtomicU64::new(0),
        });
        let serving = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy { url, state }
    }

    /// Turns the faults on or off.
    pub fn inject(&self, on: bool) {
        self.state.on.store(on, Ordering::SeqCst);
    }

    /// Faults injected so far, per kind of [`KINDS`].
    pub fn injected(&self) -> [u64; 4] {
        let i = &self.state.injected;
        [0, 1, 2, 3].map(|k| i[k].load(Ordering::SeqCst))
    }

    /// Requests forwarded to the emulator.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

fn aws_error(status: StatusCode, code: &str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"__type":"{code}","message":"fault injected"}}"#);
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", code)
        .header("x-amzn-query-error", format!("{code};Receiver"))
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let fault = if state.on.load(Ordering::SeqCst) {
        let roll = state.rng.lock().unwrap().u32(0..1000);
        (0..4).find(|k| roll >= k * state.rate && roll < (k + 1) * state.rate)
    } else {
        None
    };
    if let Some(k) = fault {
        state.injected[k as usize].fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(0) => {
            return Ok(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
            ))
        }
        Some(1) => return Ok(aws_error(StatusCode::BAD_REQUEST, "ThrottlingException")),
        Some(2) => return Err(Box::new(Dropped)),
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let upstream = upstream(&state, &parts.headers);
    let mut forward = Request::builder()
        .method(parts.method)
        .uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST {
            forward = forward.header(name, value);
        }
    }
    let response = state.client.request(forward.body(Full::new(body))?).await?;
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    if fault == Some(3) {
        return Err(Box::new(Dropped));
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Where a request goes: DynamoDB (and its streams) to the region's embedded DynamoDB, named
/// by the region of the request's signature; everything else to moto.
fn upstream<'a>(state: &'a State, headers: &hyper::HeaderMap) -> &'a str {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let dynamo = header("x-amz-target").is_some_and(|t| t.starts_with("DynamoDB"));
    let region = header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2));
    match (dynamo, region.and_then(|r| state.dynamo.get(r))) {
        (true, Some(url)) => url,
        _ => &state.upstream,
    }
}
