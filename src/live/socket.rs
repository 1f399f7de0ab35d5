//! The `sockets` function's work: the WebSocket API's REQUEST authorizer on `$connect`, and the
//! `$connect`, `$disconnect` and `$default` routes.

use serde_json::{json, Value};

use super::token::{TokenError, Verifier};
use super::{Connections, LiveError};
use crate::contract::Participant;
use crate::front::{Caller, Refusal};
use crate::topology::Topology;

/// What the WebSocket API hands the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// The REQUEST authorizer of `$connect`: the token (`?token=`) and the route's ARN.
    Authorize {
        /// The token, if one was given.
        token: Option<String>,
        /// `methodArn`, which the policy allows or denies.
        method_arn: String,
    },
    /// A connection opened (after the authorizer allowed it).
    Connect {
        /// The connection id.
        connection: String,
        /// Who, as the authorizer named them.
        who: Option<String>,
    },
    /// A connection closed (by the client, by API Gateway's limits, or by DeleteConnection).
    Disconnect {
        /// The connection id.
        connection: String,
        /// Who, as the authorizer named them at `$connect`.
        who: Option<String>,
    },
    /// A frame from the client (`$default`): a heartbeat `{"action":"ping"}`.
    Message {
        /// The connection id.
        connection: String,
        /// The frame's text.
        body: String,
    },
}

impl SocketEvent {
    /// Reads a WebSocket API payload; anything else is named in the error.
    pub fn parse(payload: &Value) -> Result<Self, String> {
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(method_arn) = text(&payload["methodArn"]) {
            // `?token=`: a browser cannot set headers on a WebSocket; a header is read too.
            let token = text(&payload["queryStringParameters"]["token"]).or_else(|| {
                let headers = payload["headers"].as_object()?;
                let auth = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?
                    .1
                    .as_str()?;
                Some(auth.strip_prefix("Bearer ").unwrap_or(auth).to_owned())
            });
            return Ok(SocketEvent::Authorize { token, method_arn });
        }
        let context = &payload["requestContext"];
        let connection = text(&context["connectionId"])
            .ok_or("not a WebSocket API event: no requestContext.connectionId")?;
        let authorizer = &context["authorizer"];
        let who = text(&authorizer["participant"]).or_else(|| text(&authorizer["principalId"]));
        let event_type = text(&context["eventType"]).unwrap_or_default();
        let route = text(&context["routeKey"]).unwrap_or_default();
        match (event_type.as_str(), route.as_str()) {
            ("CONNECT", _) | (_, "$connect") => Ok(SocketEvent::Connect { connection, who }),
            ("DISCONNECT", _) | (_, "$disconnect") => {
                Ok(SocketEvent::Disconnect { connection, who })
            }
            _ => Ok(SocketEvent::Message {
                connection,
                body: payload["body"].as_str().unwrap_or_default().to_owned(),
            }),
        }
    }
}

/// The authorizer's answer: an IAM policy allowing or denying `$connect`, the participant in
/// its context (API Gateway hands it to every route of the connection).
fn policy(effect: &str, principal: &str, method_arn: &str, context: Value) -> Value {
    json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{ "Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn }]
        },
        "context": context,
    })
}

/// Allows a participant of the pool's valid tokens to open a socket; denies anything else,
/// naming why in the log (the client sees only 403). Stores do not chat: denied.
pub async fn authorize(
    verifier: &Verifier,
    topology: &Topology,
    token: Option<&str>,
    method_arn: &str,
) -> Result<Value, TokenError> {
    let verdict = async {
        let claims = verifier.verify(token.unwrap_or_default()).await?;
        let caller = Caller::from_claims(topology, Some(&claims.as_strings()))
            .map_err(|r| TokenError::WrongAudience(r.to_string()))?;
        caller
            .participant("open a socket")
            .cloned()
            .map_err(|r: Refusal| TokenError::WrongAudience(r.to_string()))
    }
    .await;
    match verdict {
        Ok(who) => {
            tracing::info!(participant = %who, "allowed a socket");
            Ok(policy(
                "Allow",
                who.as_str(),
                method_arn,
                json!({ "participant": who.as_str() }),
            ))
        }
        // Without the pool's keys nothing can be checked: an error (API Gateway answers 500),
        // not a denial that would blame the client.
        Err(e @ TokenError::Keys { .. }) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, error_type = "Refused.Token", "denied a socket");
            Ok(policy("Deny", "anonymous", method_arn, json!({})))
        }
    }
}

/// A route's answer: API Gateway closes the handshake unless `$connect` answers 2xx. No body:
/// without a route response AWS sends none to the client (MiniStack would send any).
fn status(code: u16) -> Value {
    json!({ "statusCode": code })
}

/// `$connect`, `$disconnect`, `$default`: the connection recorded or forgotten, a heartbeat
/// answered.
pub async fn route(
    event: SocketEvent,
    connections: &dyn Connections,
    now: i64,
) -> Result<Value, LiveError> {
    let participant = |who: Option<String>| who.and_then(|w| Participant::parse(&w).ok());
    match event {
        SocketEvent::Connect { connection, who } => match participant(who) {
            Some(who) => {
                connections.open(&who, &connection, now).await?;
                tracing::info!(participant = %who, %connection, "connected");
                Ok(status(200))
            }
            // The route ran without the authorizer's participant: a wiring error; no socket.
            None => {
                tracing::error!(%connection, error_type = "Permanent.NoParticipant", "a connection without a participant (is the authorizer on $connect?)");
                Ok(status(401))
            }
        },
        SocketEvent::Disconnect { connection, who } => {
            if let Some(who) = participant(who) {
                connections.close(&who, &connection).await?;
                tracing::info!(participant = %who, %connection, "disconnected");
            }
            Ok(status(200))
        }
        SocketEvent::Message { connection, body } => {
            let action = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["action"].as_str().map(str::to_owned));
            match action.as_deref() {
                Some("ping") => Ok(status(200)),
                _ => {
                    tracing::warn!(%connection, error_type = "Refused.Frame", "a frame that is not a heartbeat");
                    Ok(status(400))
                }
            }
        }
        SocketEvent::Authorize { .. } => Ok(status(500)),
    }
}
