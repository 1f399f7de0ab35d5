//! The WebSocket API's sign-in check: a Cognito token verified by the `sockets` function itself
//! (API Gateway has no JWT authorizer for WebSocket APIs), with `jsonwebtoken`.
//!
//! What a token must be to open a socket, as the HTTP API's JWT authorizer checks it:
//! - signed (RS256) by a key of the pool's JWKS, found by the token's `kid`. The JWKS is fetched
//!   once per cold start and kept; a `kid` it lacks (the pool rotated its keys) fetches it again,
//!   at most once a minute, so a flood of forged `kid`s cannot make the function hammer Cognito;
//! - issued by the pool (`iss`), not expired (`exp`, with a minute of leeway for clock skew);
//! - for moebi's app client: `client_id` of an access token, `aud` of an ID token
//!   (`token_use` says which, and no other use is accepted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Why a token opens no socket. Each names the problem; none says which key would have worked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No token was given (`?token=` is missing or empty).
    #[error("no token: connect with ?token=<an access or ID token of the pool>")]
    Missing,
    /// The token is not a JWT, or its signature, issuer or expiry does not hold.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    /// No key of the pool has the token's `kid`, even after fetching the JWKS again.
    #[error("no key of the pool has kid {0:?}: the token is not the pool's")]
    UnknownKey(String),
    /// The token is the pool's but not for moebi's app client, or not an access or ID token.
    #[error("the token is not for moebi: {0}")]
    WrongAudience(String),
    /// The pool's JWKS cannot be read: the check cannot be made, so nothing is admitted.
    #[error("cannot read the pool's keys at {url}: {reason}")]
    Keys {
        /// Where the JWKS was looked for.
        url: String,
        /// Why it could not be read.
        reason: String,
    },
}

/// Where the keys come from: the pool's JWKS document (`<issuer>/.well-known/jwks.json`).
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The JWKS document, parsed.
    async fn fetch(&self) -> Result<JwkSet, TokenError>;
}

/// The claims of a verified token that moebi reads; the signature covers all of them.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// `access` or `id`.
    pub token_use: Option<String>,
    /// The app client of an access token.
    pub client_id: Option<String>,
    /// The app client of an ID token.
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// The user name: `username` in an access token, `cognito:username` in an ID token.
    pub username: Option<String>,
    /// The user name of an ID token.
    #[serde(rename = "cognito:username")]
    pub cognito_username: Option<String>,
    /// The user's groups (participants, stores).
    #[serde(rename = "cognito:groups", default)]
    pub groups: Vec<String>,
    /// Expiry, epoch seconds.
    pub exp: u64,
}

impl Claims {
    /// The claims as the front door reads them ([`crate::front::Caller::from_claims`]).
    pub fn as_strings(&self) -> HashMap<String, String> {
        let mut claims = HashMap::new();
        if let Some(name) = self.username.as_ref().or(self.cognito_username.as_ref()) {
            claims.insert("username".to_owned(), name.clone());
        }
        claims.insert(
            "cognito:groups".to_owned(),
            serde_json::to_string(&self.groups).unwrap_or_default(),
        );
        claims
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// How often an unknown `kid` may fetch the JWKS again.
const REFETCH_EVERY: Duration = Duration::from_secs(60);

/// Verifies tokens of one pool for one app client, keeping the pool's keys.
pub struct Verifier {
    issuer: String,
    client_id: String,
    source: Box<dyn KeySource>,
    keys: Mutex<Keys>,
    fetches: AtomicUsize,
}

#[derive(Default)]
struct Keys {
    set: Option<JwkSet>,
    fetched_at: Option<Instant>,
}

impl Verifier {
    /// A verifier of `issuer`'s tokens for the app client `client_id`, its keys from `source`.
    pub fn new(issuer: &str, client_id: &str, source: Box<dyn KeySource>) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            source,
            keys: Mutex::new(Keys::default()),
            fetches: AtomicUsize::new(0),
        }
    }

    /// How many times the JWKS was fetched (once per cold start, again on a new `kid`).
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The token's verified claims, or why it opens nothing.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("not a JWT ({e})")))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid(format!(
                "signed with {:?}; the pool signs with RS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("the token names no key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // The audience is checked below: an access token carries `client_id`, not `aud`.
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        match claims.token_use.as_deref() {
            Some("access") if claims.client_id.as_deref() == Some(&self.client_id) => Ok(claims),
            Some("id") if claims.aud.iter().any(|a| a == &self.client_id) => Ok(claims),
            Some(use_ @ ("access" | "id")) => Err(TokenError::WrongAudience(format!(
                "an {use_} token of another app client"
            ))),
            other => Err(TokenError::WrongAudience(format!(
                "token_use is {other:?}, not access or id"
            ))),
        }
    }

    /// The key `kid`: from the kept JWKS, else from a fresh one (at most once a minute).
    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        let refetch = {
            let keys = self.keys.lock().expect("keys lock");
            if let Some(jwk) = keys.set.as_ref().and_then(|s| s.find(kid)) {
                return DecodingKey::from_jwk(jwk)
                    .map_err(|e| TokenError::Invalid(format!("the pool's key {kid}: {e}")));
            }
            keys.fetched_at
                .is_none_or(|at| at.elapsed() >= REFETCH_EVERY)
        };
        if !refetch {
            return Err(TokenError::UnknownKey(kid.to_owned()));
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        // A failed fetch is not remembered: the next token tries again.
        let set = self.source.fetch().await?;
        let found = set.find(kid).map(DecodingKey::from_jwk);
        let mut keys = self.keys.lock().expect("keys lock");
        keys.fetched_at = Some(Instant::now());
        keys.set = Some(set);
        match found {
            Some(key) => key.map_err(|e| TokenError::Invalid(format!("the pool's key {kid}: {e}"))),
            None => Err(TokenError::UnknownKey(kid.to_owned())),
        }
    }
}
