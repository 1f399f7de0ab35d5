//! A client of moebi's HTTP API, as a person's CLI uses it on AWS (or on the rehearsal's
//! emulator): sign in to the Cognito user pool, keep and refresh the tokens, and send, read,
//! add and ask through the region's front door.
//!
//! Sessions are files (`<dir>/<user>.json`, mode 0600): the tokens, the API's URL and the app
//! client. `moebi login` writes one; the other commands read it and refresh it when the access
//! token is about to expire.

mod cognito;
pub mod http;
pub mod live;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::contract::EventId;
use crate::ports::{Cause, InboxEntry};

/// Why a call to the API (or to Cognito) failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API refused the request: its status and its words.
    #[error("the API answered {status} ({error_type}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The refusal's type (`Forbidden`, `InvalidField`…).
        error_type: String,
        /// What the API said.
        message: String,
    },
    /// Cognito refused the sign-in or the refresh.
    #[error("sign-in refused ({code}): {message}")]
    SignIn {
        /// Cognito's error code (`NotAuthorizedException`…).
        code: String,
        /// Cognito's message.
        message: String,
    },
    /// No session for this user.
    #[error("{user} is not signed in: run `moebi login {user} --api URL --client-id ID --cognito-url URL`")]
    NotSignedIn {
        /// The user.
        user: String,
    },
    /// The session file cannot be read or written.
    #[error("session file {}", .0.display())]
    SessionFile(PathBuf, #[source] std::io::Error),
    /// The connection failed.
    #[error("cannot reach the API")]
    Transport(#[source] Cause),
    /// The answer to a question did not arrive in time.
    #[error("no answer to {id} in the inbox after {waited:?}")]
    Unanswered {
        /// The question's id.
        id: String,
        /// How long the client looked.
        waited: Duration,
    },
}

/// A signed-in user: where they sign in and call, and their tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The user (a participant or store of the topology).
    pub user: String,
    /// The HTTP API's base URL (one region's: the user's home region's).
    pub api: String,
    /// The APIs of the other regions, in the order to try them when `api` cannot be reached
    /// (the home region's standby first): each request carries its client-chosen id, so
    /// sending it again elsewhere applies it once.
    #[serde(default)]
    pub failover: Vec<String>,
    /// Cognito's endpoint (`https://cognito-idp.<region>.amazonaws.com`, or an emulator's).
    pub cognito_url: String,
    /// The app client's id.
    pub client_id: String,
    /// The access token the API's authorizer checks.
    pub access_token: String,
    /// The ID token.
    pub id_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

/// Where a user's session lives under `dir`.
pub fn session_path(dir: &Path, user: &str) -> PathBuf {
    dir.join(format!("{user}.json"))
}

impl Session {
    /// Signs `user` in with `password` (Cognito's `USER_PASSWORD_AUTH`).
    pub async fn login(
        http: &http::Http,
        cognito_url: &str,
        client_id: &str,
        (api, failover): (&str, &[String]),
        user: &str,
        password: &str,
    ) -> Result<Self, ApiError> {
        let tokens = cognito::password(http, cognito_url, client_id, user, password).await?;
        Ok(Self {
            user: user.to_owned(),
            api: api.trim_end_matches('/').to_owned(),
            failover: failover
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            cognito_url: cognito_url.to_owned(),
            client_id: client_id.to_owned(),
            access_token: tokens.access,
            id_token: tokens.id,
            refresh_token: tokens
                .refresh
                .ok_or_else(|| cognito::refused("Cognito returned no refresh token"))?,
            expires_at: tokens.expires_at,
        })
    }

    /// Reads `user`'s session from `dir`.
    pub fn load(dir: &Path, user: &str) -> Result<Self, ApiError> {
        let path = session_path(dir, user);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::NotSignedIn { user: user.into() })
            }
            Err(e) => return Err(ApiError::SessionFile(path, e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            ApiError::SessionFile(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// Every API to try, in order: the home region's, then the failovers.
    pub fn apis(&self) -> Vec<String> {
        std::iter::once(self.api.clone())
            .chain(self.failover.iter().cloned())
            .collect()
    }

    /// Writes the session to `dir`, readable by its owner only (it holds the tokens).
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ApiError> {
        let path = session_path(dir, &self.user);
        let fail = |e| ApiError::SessionFile(path.clone(), e);
        std::fs::create_dir_all(dir).map_err(fail)?;
        let text = serde_json::to_string_pretty(self).expect("a session serializes");
        let temp = path.with_extension("json.new");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp).map_err(fail)?;
            file.write_all(text.as_bytes()).map_err(fail)?;
        }
        std::fs::rename(&temp, &path).map_err(fail)?;
        Ok(path)
    }
}

/// How long a request waits for an API before trying the next region's
/// (`MOEBI_API_TIMEOUT_MS`, default 5,000).
pub fn request_timeout() -> Duration {
    let ms = std::env::var("MOEBI_API_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    Duration::from_millis(ms)
}

/// Whether an API's answer says its region cannot serve: no connection, no answer in time, or
/// API Gateway's 5xx of a function that cannot run. A refusal (4xx) is the API's word, never
/// retried elsewhere.
pub fn region_failed(answer: &Result<http::Answer, ApiError>) -> bool {
    match answer {
        Err(ApiError::Transport(_)) => true,
        Ok(a) => matches!(a.status, 500 | 502 | 503 | 504),
        Err(_) => false,
    }
}

/// Sends `method path` with `body` to the first of `apis` that can serve it, starting at
/// `*active` (which is left at the API that answered). Answers the answer and that API.
pub async fn with_failover(
    http: &http::Http,
    apis: &[String],
    active: &mut usize,
    (method, path, token, body): (Method, &str, &str, Option<&Value>),
) -> Result<http::Answer, ApiError> {
    let timeout = request_timeout();
    let mut last = Err(ApiError::Transport("no API to call".into()));
    for step in 0..apis.len() {
        let at = (*active + step) % apis.len();
        let url = format!("{}{path}", apis[at]);
        let call = http.authorized(method.clone(), &url, token, body);
        let answer = match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(ApiError::Transport(
                format!("no answer from {} in {timeout:?}", apis[at]).into(),
            )),
        };
        if !region_failed(&answer) {
            if at != *active {
                tracing::warn!(from = %apis[*active], to = %apis[at], "failed over to another region's API");
                *active = at;
            }
            return answer;
        }
        last = answer;
    }
    last
}

/// A signed-in user's client of the API.
pub struct ApiClient {
    http: http::Http,
    session: Session,
    dir: PathBuf,
    /// The index in [`Session::apis`] of the API calls go to: the home region's until it
    /// cannot be reached.
    active: usize,
}

impl ApiClient {
    /// The client of `user`, whose session is in `dir`.
    pub fn open(dir: &Path, user: &str) -> Result<Self, ApiError> {
        Ok(Self {
            http: http::Http::new()?,
            session: Session::load(dir, user)?,
            dir: dir.to_owned(),
            active: 0,
        })
    }

    /// The signed-in user.
    pub fn user(&self) -> &str {
        &self.session.user
    }

    /// A token with at least a minute to live, refreshed (and saved) when needed.
    async fn token(&mut self) -> Result<String, ApiError> {
        if self.session.expires_at - Utc::now() < chrono::Duration::seconds(60) {
            let s = &self.session;
            let tokens =
                cognito::refresh(&self.http, &s.cognito_url, &s.client_id, &s.refresh_token)
                    .await?;
            self.session.access_token = tokens.access;
            self.session.id_token = tokens.id;
            self.session.expires_at = tokens.expires_at;
            self.session.save(&self.dir)?;
        }
        Ok(self.session.access_token.clone())
    }

    /// The user's APIs (home first, then the failovers) and a token with at least a minute
    /// to live: what a caller sending many requests at once (`moebi load`) sends them with.
    pub async fn credentials(&mut self) -> Result<(Vec<String>, String), ApiError> {
        let token = self.token().await?;
        Ok((self.session.apis(), token))
    }

    /// Calls `method path` with `body`; a refusal becomes [`ApiError::Refused`] with the API's words.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let token = self.token().await?;
        let apis = self.session.apis();
        let call = (method, path, token.as_str(), body.as_ref());
        let answer = with_failover(&self.http, &apis, &mut self.active, call).await?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let text = |k: &str| answer.body[k].as_str().map(str::to_owned);
        Err(ApiError::Refused {
            status: answer.status,
            error_type: text("type").unwrap_or_else(|| "Unknown".into()),
            message: text("error")
                .or_else(|| text("message"))
                .unwrap_or_else(|| answer.body.to_string()),
        })
    }

    /// Sends a message as `from` (the API refuses any `from` but the signed-in user's).
    pub async fn send(&mut self, from: &str, to: &str, text: &str) -> Result<EventId, ApiError> {
        let id = EventId::random();
        let body = json!({ "id": id.as_str(), "from": from, "to": to, "text": text });
        self.call(Method::POST, "/messages", Some(body)).await?;
        Ok(id)
    }

    /// The signed-in participant's inbox, oldest first; only what came after `after` if given.
    pub async fn inbox(&mut self, after: Option<&EventId>) -> Result<Vec<InboxEntry>, ApiError> {
        let path = match after {
            Some(id) => format!("/inbox?after={id}"),
            None => "/inbox".to_owned(),
        };
        let body = self.call(Method::GET, &path, None).await?;
        serde_json::from_value(body["entries"].clone())
            .map_err(|e| ApiError::Transport(Box::new(e)))
    }

    /// Adds stock as `store` (the signed-in store).
    pub async fn add_stock(
        &mut self,
        store: &str,
        product: &str,
        qty: i64,
    ) -> Result<EventId, ApiError> {
        let id = EventId::random();
        let body = json!({ "id": id.as_str(), "store": store, "product": product, "qty": qty });
        self.call(Method::POST, "/stock", Some(body)).await?;
        Ok(id)
    }

    /// Asks the stock as `asker`; the answer lands in the inbox. Answers the question's id.
    pub async fn ask(&mut self, asker: &str, product: Option<&str>) -> Result<EventId, ApiError> {
        let id = EventId::random();
        let mut body = json!({ "id": id.as_str(), "asker": asker });
        if let Some(p) = product {
            body["product"] = p.into();
        }
        self.call(Method::POST, "/stock/status", Some(body)).await?;
        Ok(id)
    }

    /// Asks the stock as `asker`; answers the text that lands in the inbox, looking for up to
    /// `wait`.
    pub async fn ask_stock(
        &mut self,
        asker: &str,
        product: Option<&str>,
        wait: Duration,
    ) -> Result<String, ApiError> {
        let id = self.ask(asker, product).await?;
        let started = std::time::Instant::now();
        loop {
            let answer = self
                .inbox(None)
                .await?
                .into_iter()
                .find(|e| e.in_reply_to.as_ref() == Some(&id));
            if let Some(answer) = answer {
                return Ok(answer.text);
            }
            if started.elapsed() > wait {
                return Err(ApiError::Unanswered {
                    id: id.to_string(),
                    waited: wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
