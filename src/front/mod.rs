//! The front door: the function behind each region's HTTP API. API Gateway's JWT authorizer has
//! proved the caller's Cognito token; the front door takes the sender, store or asker from its
//! claims ([`Caller`]), never from the body, validates the body through the contract, and
//! publishes the event on its region's bus, whose rules route it as any other.
//!
//! | route | who | body | answer |
//! | --- | --- | --- | --- |
//! | `POST /messages` | participants | `{to, text, id?, in_reply_to?, from?}` | 202 `{id}` |
//! | `POST /stock` | stores | `{product, qty, id?, store?}` | 202 `{id}` |
//! | `POST /stock/status` | participants | `{product?, id?, asker?}` | 202 `{id}`: the answer lands in the inbox |
//! | `GET /inbox` | participants | `?after=<id>` | 200 `{participant, entries}` |
//!
//! A body naming someone else (`from`, `store`, `asker`) is 403, as is a route of the other
//! kind. A client-chosen `id` makes a retry safe: the same id with the same request answers as
//! before; with another request, 409. Refusals ([`Refusal`]) publish nothing.

mod caller;
mod payload;
mod refusal;

pub use caller::{Caller, PARTICIPANTS, STORES};
pub use payload::HttpPayload;
pub use refusal::Refusal;

use std::collections::HashMap;

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::contract::{ContractError, Event, EventId, Kind};
use crate::ports::{digest, Acceptance, Bus, Inboxes, RequestKey, Requests, Site};

/// The largest body a valid request can have (a 4096-character text is at most 16 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the front door runs against in its region.
#[derive(Clone, Copy)]
pub struct FrontPorts<'a> {
    /// Its region and the topology.
    pub site: Site<'a>,
    /// The region's bus, where it publishes.
    pub bus: &'a dyn Bus,
    /// The inboxes (the region's replica), for `GET /inbox`.
    pub inboxes: &'a dyn Inboxes,
    /// Its request records.
    pub requests: &'a dyn Requests,
}

/// One HTTP request as the front door reads it from API Gateway's payload.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`…
    pub method: &'a str,
    /// The path, without the stage.
    pub path: &'a str,
    /// The query parameter `after` (`GET /inbox?after=<id>`).
    pub after: Option<&'a str>,
    /// The body, decoded.
    pub body: &'a [u8],
    /// The claims of the verified token (`requestContext.authorizer.jwt.claims`).
    pub claims: Option<&'a HashMap<String, String>>,
}

/// An answer: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl From<Refusal> for Reply {
    fn from(refusal: Refusal) -> Self {
        Self {
            status: refusal.status(),
            body: refusal.body(),
        }
    }
}

/// Answers one request; every refusal is logged with its type.
#[tracing::instrument(name = "request", skip_all, fields(method = request.method, path = request.path))]
pub async fn answer(ports: &FrontPorts<'_>, request: &Request<'_>) -> Reply {
    match route(ports, request).await {
        Ok(reply) => {
            tracing::info!(status = reply.status, "answered");
            reply
        }
        Err(refusal) => {
            tracing::warn!(status = refusal.status(), error_type = refusal.error_type(), error = %crate::report(&refusal), "refused");
            refusal.into()
        }
    }
}

async fn route(ports: &FrontPorts<'_>, request: &Request<'_>) -> Result<Reply, Refusal> {
    let caller = Caller::from_claims(ports.site.topology, request.claims)?;
    if request.body.len() > MAX_BODY_BYTES {
        return Err(Refusal::TooLarge {
            size: request.body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    match (request.method, request.path.trim_end_matches('/')) {
        ("POST", "/messages") => {
            let from = caller.participant("send messages")?;
            let mut body = object(request.body)?;
            claim(&mut body, "from", from.as_str())?;
            refuse_field(&body, "sent_at", "is stamped by the front door")?;
            let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
            body.insert("sent_at".into(), now.into());
            let event = event(Kind::ChatSend, body)?;
            if let Event::ChatSend(msg) = &event {
                ports.site.topology.home("to", &msg.to)?;
            }
            publish(ports, event).await
        }
        ("POST", "/stock") => {
            let store = caller.store("add stock")?;
            let mut body = object(request.body)?;
            claim(&mut body, "store", store.as_str())?;
            publish(ports, event(Kind::StockAdd, body)?).await
        }
        ("POST", "/stock/status") => {
            let asker = caller.participant("ask the stock")?;
            let mut body = object(request.body)?;
            claim(&mut body, "asker", asker.as_str())?;
            publish(ports, event(Kind::StockStatus, body)?).await
        }
        ("GET", "/inbox") => {
            let owner = caller.participant("read an inbox")?;
            let mut entries = ports.inboxes.inbox(owner).await?;
            if let Some(after) = request.after {
                // Entries are oldest first: keep those after the one the client last showed.
                if let Some(at) = entries.iter().position(|e| e.id.as_str() == after) {
                    entries.drain(..=at);
                }
            }
            Ok(Reply {
                status: 200,
                body: json!({ "participant": owner.as_str(), "entries": entries }),
            })
        }
        (method, path) => Err(Refusal::NoRoute(format!("{method} {path}"))),
    }
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if body.is_empty() {
        return Err(ContractError::field("body", "is required: a JSON object").into());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ContractError::field("body", "must be a JSON object").into()),
        Err(e) => Err(ContractError::Malformed(format!("the body is not JSON: {e}")).into()),
    }
}

/// Puts the caller into `field`: a body that names someone else there is forbidden.
fn claim(body: &mut Map<String, Value>, field: &str, caller: &str) -> Result<(), Refusal> {
    match body.get(field) {
        None => {}
        Some(Value::String(named)) if named == caller => {}
        Some(named) => {
            return Err(Refusal::Forbidden(format!(
                "field `{field}`: {caller} cannot act as {named}: the sender is the token's user"
            )))
        }
    }
    body.insert(field.into(), caller.into());
    Ok(())
}

fn refuse_field(body: &Map<String, Value>, field: &str, rule: &str) -> Result<(), Refusal> {
    match body.contains_key(field) {
        true => Err(ContractError::field(field, rule).into()),
        false => Ok(()),
    }
}

/// The event the body describes, validated by the contract; errors name the body's fields.
fn event(kind: Kind, mut body: Map<String, Value>) -> Result<Event, Refusal> {
    match body.get("id") {
        None => {
            body.insert("id".into(), EventId::random().as_str().into());
        }
        Some(Value::String(id)) if id.starts_with("moebi:") => {
            return Err(
                ContractError::field("id", "ids starting with `moebi:` are moebi's own").into(),
            )
        }
        Some(_) => {}
    }
    Event::from_detail(kind, &Value::Object(body))
        .map_err(unprefixed)
        .map_err(Refusal::from)
}

/// A contract error about `detail.<field>` as the client wrote it: `<field>`.
fn unprefixed(e: ContractError) -> ContractError {
    let strip = |f: String| f.strip_prefix("detail.").map(str::to_owned).unwrap_or(f);
    match e {
        ContractError::Field { field, rule } => ContractError::Field {
            field: strip(field),
            rule,
        },
        ContractError::Unknown { field, what, name } => ContractError::Unknown {
            field: strip(field),
            what,
            name,
        },
        other => other,
    }
}

/// Records the request under its id, then publishes its event: 202 with the id, the same for a
/// retry (published again: every effect is once per id downstream), 409 for another request.
async fn publish(ports: &FrontPorts<'_>, event: Event) -> Result<Reply, Refusal> {
    let id = event.id().clone();
    let digest = digest(&event.detail()).map_err(|e| ContractError::Malformed(e.to_string()))?;
    let key = RequestKey {
        id: id.clone(),
        digest,
    };
    match ports.requests.accept(&key).await? {
        Acceptance::Conflict => return Err(Refusal::Conflict(id)),
        Acceptance::New | Acceptance::Again => {}
    }
    ports.bus.publish(&[event]).await?;
    Ok(Reply {
        status: 202,
        body: json!({ "id": id.as_str() }),
    })
}
