//! A client's live socket: the WebSocket API of a region, opened with the signed-in user's
//! token, each frame an inbox entry pushed as it lands (`moebi::live`).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{ApiClient, ApiError};
use crate::ports::InboxEntry;
use crate::sdk::TrustRoots;

/// What a socket receives: one inbox entry and whose inbox it is in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pushed {
    /// Always `inbox`.
    pub kind: String,
    /// Whose inbox.
    pub owner: String,
    /// The entry, as `GET /inbox` gives it.
    pub entry: InboxEntry,
}

/// A byte stream a socket runs over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open socket.
pub struct LiveSocket {
    ws: WebSocketStream<Box<dyn Io>>,
    owner: String,
}

fn transport(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::Transport(Box::new(e))
}

fn said(what: String) -> ApiError {
    ApiError::Transport(what.into())
}

impl ApiClient {
    /// The region's settings the front door serves without a token (`GET /config.json`):
    /// `sockets_url`, `cognito_url`, `client_id`, `region`.
    /// The first of the user's APIs (home, then the failovers) that answers: a region that is
    /// down sends the socket to the next region's.
    pub async fn settings(&self) -> Result<serde_json::Value, ApiError> {
        let mut last = Err(ApiError::Transport("no API to ask".into()));
        for api in self.session.apis() {
            let url = format!("{api}/config.json");
            let call = self.http.exchange(Method::GET, &url, &[], None);
            let answer = match tokio::time::timeout(super::request_timeout(), call).await {
                Ok(answer) => answer,
                Err(_) => Err(ApiError::Transport(format!("no answer from {url}").into())),
            };
            match answer {
                Ok(a) if a.status == 200 => return Ok(a.body),
                Ok(a) => last = Err(said(format!("GET {url}: HTTP {}", a.status))),
                Err(e) => last = Err(e),
            }
        }
        last
    }

    /// Opens a socket at `url` (else at the URL the user's API names) with a fresh token.
    pub async fn open_socket(&mut self, url: Option<&str>) -> Result<LiveSocket, ApiError> {
        let url = match url {
            Some(u) => u.to_owned(),
            None => self.settings().await?["sockets_url"]
                .as_str()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| said("the API names no sockets_url (GET /config.json)".into()))?
                .to_owned(),
        };
        let token = self.token().await?;
        let request = format!("{url}?token={token}")
            .into_client_request()
            .map_err(transport)?;
        let uri = request.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| said(format!("{url}: no host")))?
            .to_owned();
        let tls = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(transport)?;
        tcp.set_nodelay(true).map_err(transport)?;
        let stream: Box<dyn Io> = if tls {
            let roots = TrustRoots::from_env().map_err(transport)?;
            let config = roots.tls().map_err(transport)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(transport)?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            Box::new(connector.connect(name, tcp).await.map_err(transport)?)
        } else {
            Box::new(tcp)
        };
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| said(format!("cannot open a socket at {url}: {e}")))?;
        Ok(LiveSocket {
            ws,
            owner: self.user().to_owned(),
        })
    }
}

impl LiveSocket {
    /// The next entry pushed to the owner's inbox; `None` when the socket closed.
    pub async fn next(&mut self) -> Option<Result<InboxEntry, ApiError>> {
        loop {
            let message = match self.ws.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(transport(e))),
            };
            let text = match message {
                Message::Text(t) => t.to_string(),
                Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                Message::Close(_) => return None,
                _ => continue,
            };
            // Anything but an entry of the owner's inbox (a heartbeat's answer) is skipped.
            if let Ok(p) = serde_json::from_str::<Pushed>(&text) {
                if p.kind == "inbox" && p.owner == self.owner {
                    return Some(Ok(p.entry));
                }
            }
        }
    }

    /// A heartbeat (`{"action":"ping"}`): traffic that keeps the socket inside API Gateway's
    /// 10-minute idle limit.
    pub async fn ping(&mut self) -> Result<(), ApiError> {
        self.ws
            .send(Message::text(r#"{"action":"ping"}"#))
            .await
            .map_err(transport)
    }
}
