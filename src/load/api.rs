//! A load run through the HTTP APIs (`moebi --engine api load`), on AWS or the rehearsal's
//! emulator: each event is a request to its sender's home region's API, as the signed-in
//! user, sent when due whatever the earlier ones are doing (each request on its own task).
//! Afterwards the stamps the system wrote say when each effect was applied: the front door's
//! request record (`accepted_at`) and each effect's idempotency record (`applied_at`), read
//! from every region's table. Reading waits until every answered event's stamps are there (or
//! `settle` passes); the times come from the stamps, not from the reading.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::http::Http;
use crate::api::ApiClient;
use crate::contract::{Event, EventId, Region};
use crate::topology::{Function, Topology};

use super::measure::{Outcome, Sent};
use super::plan::{Kind, Planned};
use super::{wall_ms, LoadError, Progress};

/// How long a user's requests go to the API that answered instead of the home region's,
/// after the home region failed; then the home region is tried first again.
const FAILBACK_MS: f64 = 10_000.0;

/// The hops through the API, and what each is.
pub const HOPS: [&str; 4] = ["accepted", "acknowledged", "handled", "answered"];
/// What [`HOPS`] are.
pub const HOPS_HELP: &str = "accepted = due → the front door's request record (API Gateway, the JWT authorizer, the function); acknowledged → the 202 back at the client (its PutEvents); handled → the effect applied in its region (from accepted: rules, forwarding across regions, the queue, the function); answered → the bot's answer in the sender's inbox. An add is timed to its store's region: global tables stamp no arrival, so its copies are checked, not timed";

/// The hops of an event published on a bus directly (`--engine aws`), and what each is.
pub const BUS_HOPS: [&str; 3] = ["published", "handled", "answered"];
/// What [`BUS_HOPS`] are.
pub const BUS_HOPS_HELP: &str = "published = due → PutEvents answered; handled → the effect applied in its region (rules, forwarding across regions, the queue, the function); answered → the bot's answer in the sender's inbox. An add is timed to its store's region; its copies are checked, not timed";

/// Where the stamps are read: each region's table, through the SDK.
pub struct Stamps {
    /// The table's name.
    pub table: String,
    /// A DynamoDB client per region.
    pub clients: HashMap<Region, aws_sdk_dynamodb::Client>,
}

/// The route and body of an event, as a client of the API sends it (with its own id).
fn request(event: &Event) -> (&'static str, Value) {
    match event {
        Event::ChatSend(m) => (
            "/messages",
            json!({"id": m.id.as_str(), "from": m.from.as_str(), "to": m.to.as_str(), "text": m.text.as_str()}),
        ),
        Event::StockAdd(a) => (
            "/stock",
            json!({"id": a.id.as_str(), "store": a.store.as_str(), "product": a.product.as_str(), "qty": a.qty.get()}),
        ),
        Event::StockStatus(s) => (
            "/stock/status",
            json!({"id": s.id.as_str(), "asker": s.asker.as_str(), "product": s.product.as_ref().map(|p| p.as_str())}),
        ),
    }
}

fn sender(event: &Event) -> String {
    match event {
        Event::ChatSend(m) => m.from.to_string(),
        Event::StockAdd(a) => a.store.to_string(),
        Event::StockStatus(s) => s.asker.to_string(),
    }
}

/// Sends `schedule` through the API as the users signed in under `sessions`; answers what
/// was sent (with the 202's time or the refusal) and the instant the schedule started at.
pub async fn send(
    sessions: &Path,
    schedule: &[Planned],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<Sent>, Vec<Option<f64>>, f64), LoadError> {
    // Per user: the APIs to try (home first), the token, and the failover in use: the API that
    // answered instead of the home region's, and when the home region last failed (ms).
    type Credentials = (Arc<Vec<String>>, String, Arc<(AtomicUsize, AtomicU64)>);
    let mut credentials: HashMap<String, Credentials> = HashMap::new();
    for p in schedule {
        let user = sender(&p.event);
        if let std::collections::hash_map::Entry::Vacant(slot) = credentials.entry(user) {
            let user = slot.key().clone();
            let failed =
                |e: crate::api::ApiError| LoadError::Plan(format!("{user}: {}", crate::report(&e)));
            let mut client = ApiClient::open(sessions, &user).map_err(failed)?;
            let (apis, token) = client.credentials().await.map_err(failed)?;
            let failover = (AtomicUsize::new(0), AtomicU64::new(0));
            slot.insert((Arc::new(apis), token, Arc::new(failover)));
        }
    }
    let http = Arc::new(Http::new().map_err(|e| LoadError::Plan(crate::report(&e)))?);
    let start = Instant::now() + Duration::from_millis(50);
    let start_ms = wall_ms() + 50.0;
    let mut tasks = tokio::task::JoinSet::new();
    let answered = Arc::new(AtomicU64::new(0));
    let mut last_report = Instant::now();
    for p in schedule {
        tokio::time::sleep_until(start + p.due).await;
        let (apis, token, active) = credentials[&sender(&p.event)].clone();
        let (path, body) = request(&p.event);
        let (http, counter) = (http.clone(), answered.clone());
        let (index, due_ms) = (p.index, start_ms + p.due.as_secs_f64() * 1000.0);
        tasks.spawn(async move {
            let sent_ms = wall_ms();
            // The home region's API, or the next that answers (the user's region is down); for
            // a while after the home region failed, the one that answered instead.
            let (in_use, home_failed_ms) = (&active.0, &active.1);
            let recent = sent_ms - (home_failed_ms.load(Ordering::Relaxed) as f64) < FAILBACK_MS;
            let mut at = if recent {
                in_use.load(Ordering::Relaxed)
            } else {
                0
            };
            let call = (hyper::Method::POST, path, token.as_str(), Some(&body));
            let answer = crate::api::with_failover(&http, &apis, &mut at, call).await;
            if at != 0 {
                in_use.store(at, Ordering::Relaxed);
                home_failed_ms.store(wall_ms() as u64, Ordering::Relaxed);
            }
            let refused = match answer {
                Ok(a) if a.status == 202 => None,
                Ok(a) => Some(format!(
                    "HTTP {}: {}",
                    a.status,
                    a.body["error"].as_str().unwrap_or(&a.body.to_string())
                )),
                Err(e) => Some(crate::report(&e)),
            };
            let acknowledged = refused.is_none().then(wall_ms);
            counter.fetch_add(1, Ordering::Relaxed);
            (
                index,
                Sent {
                    due_ms,
                    sent_ms,
                    refused,
                },
                acknowledged,
            )
        });
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            progress(Progress {
                elapsed: start.elapsed(),
                sent: p.index as u64 + 1,
                done: answered.load(Ordering::Relaxed),
                done_what: "requests answered",
            });
        }
    }
    let mut sent: Vec<Option<(Sent, Option<f64>)>> = vec![None; schedule.len()];
    while let Some(done) = tasks.join_next().await {
        let (index, s, acknowledged) =
            done.map_err(|e| LoadError::Plan(format!("a request's task failed: {e}")))?;
        sent[index] = Some((s, acknowledged));
    }
    let (sent, acknowledged) = sent
        .into_iter()
        .map(|s| s.expect("every request answered"))
        .unzip();
    Ok((sent, acknowledged, start_ms))
}

/// The stamps one event leaves: (region, pk) of each record to read: the front door's request
/// record first when it went through the API (`front`), a bot's reply, the effect last.
fn keys(topology: &Topology, p: &Planned, front: bool) -> Vec<(Region, String)> {
    let id = p.event.id();
    let home = |who| topology.home_of(who).cloned();
    let applied = |f: Function, id: &EventId| format!("applied#{}#{id}", f.name());
    let mut out = Vec::new();
    if front {
        out.push((p.region.clone(), format!("request#{id}")));
    }
    let effect = match &p.event {
        Event::ChatSend(m) if p.kind == Kind::Moebi => {
            if let Some(h) = home(&m.from) {
                out.push((h, applied(Function::ChatSend, &id.derived("reply"))));
            }
            home(&m.to).map(|r| (r, applied(Function::MoebiReply, id)))
        }
        Event::ChatSend(m) => home(&m.to).map(|r| (r, applied(Function::ChatSend, id))),
        Event::StockAdd(a) => topology
            .store_home(&a.store)
            .map(|r| (r.clone(), applied(Function::StockAdd, id))),
        Event::StockStatus(s) => home(&s.asker).map(|r| (r, applied(Function::StockStatus, id))),
    };
    out.extend(effect);
    out
}

impl Stamps {
    /// The time (ms since the epoch) in `attribute` of each record of `wanted` found.
    async fn read(
        &self,
        wanted: &[(Region, String)],
    ) -> Result<HashMap<(Region, String), f64>, LoadError> {
        let mut found = HashMap::new();
        let mut by_region: HashMap<&Region, Vec<&String>> = HashMap::new();
        for (r, pk) in wanted {
            by_region.entry(r).or_default().push(pk);
        }
        for (region, pks) in by_region {
            let client = self
                .clients
                .get(region)
                .ok_or_else(|| LoadError::Plan(format!("no DynamoDB client for {region}")))?;
            for chunk in pks.chunks(100) {
                let keys = chunk.iter().map(|pk| {
                    let sk = if pk.starts_with("request#") {
                        "request"
                    } else {
                        "applied"
                    };
                    HashMap::from([
                        ("pk".to_owned(), AttributeValue::S((*pk).clone())),
                        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
                    ])
                });
                let ask = KeysAndAttributes::builder()
                    .set_keys(Some(keys.collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| LoadError::Plan(format!("BatchGetItem: {e}")))?;
                let mut request = HashMap::from([(self.table.clone(), ask)]);
                // Keys DynamoDB leaves unprocessed are asked again.
                while !request.is_empty() {
                    let out = client
                        .batch_get_item()
                        .set_request_items(Some(request))
                        .send()
                        .await
                        .map_err(|e| {
                            LoadError::Plan(format!(
                                "reading the stamps in {region}: {}",
                                crate::report(&e)
                            ))
                        })?;
                    for item in out
                        .responses()
                        .and_then(|r| r.get(&self.table))
                        .into_iter()
                        .flatten()
                    {
                        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
                        let at = text("applied_at").or_else(|| text("accepted_at"));
                        if let (Some(pk), Some(at)) = (text("pk"), at) {
                            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) {
                                let ms = t.timestamp_micros() as f64 / 1000.0;
                                found.insert((region.clone(), pk.clone()), ms);
                            }
                        }
                    }
                    request = out.unprocessed_keys().cloned().unwrap_or_default();
                }
            }
        }
        Ok(found)
    }

    /// Every event's outcome from its stamps, read until all answered events have theirs or
    /// `settle` has passed since the last answer; `front`: sent through the API (its hops are
    /// [`HOPS`]), else published on a bus directly ([`BUS_HOPS`]).
    pub async fn outcomes(
        &self,
        topology: &Topology,
        (schedule, sent, acknowledged): (&[Planned], &[Sent], &[Option<f64>]),
        front: bool,
        settle: Duration,
    ) -> Result<Vec<Outcome>, LoadError> {
        let wanted: Vec<(Region, String)> = schedule
            .iter()
            .zip(sent)
            .filter(|(_, s)| s.refused.is_none())
            .flat_map(|(p, _)| keys(topology, p, front))
            .collect();
        let deadline = Instant::now() + settle;
        let mut found = HashMap::new();
        loop {
            let missing: Vec<(Region, String)> = wanted
                .iter()
                .filter(|k| !found.contains_key(*k))
                .cloned()
                .collect();
            if missing.is_empty() || Instant::now() > deadline {
                break;
            }
            found.extend(self.read(&missing).await?);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(schedule
            .iter()
            .zip(sent)
            .zip(acknowledged)
            .map(|((p, s), ack)| outcome(topology, p, s, *ack, front, &found))
            .collect())
    }
}

fn outcome(
    topology: &Topology,
    p: &Planned,
    s: &Sent,
    acknowledged: Option<f64>,
    front: bool,
    found: &HashMap<(Region, String), f64>,
) -> Outcome {
    let stamps: Vec<Option<f64>> = keys(topology, p, front)
        .iter()
        .map(|k| found.get(k).copied())
        .collect();
    let gap = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let accepted = if front {
        stamps.first().copied().flatten()
    } else {
        None
    };
    let effect = stamps.last().copied().flatten();
    let (visible, answered) = match p.kind {
        // [request, reply in the sender's inbox, the bot's own]
        Kind::Moebi => {
            let reply = stamps.get(usize::from(front)).copied().flatten();
            (reply, gap(effect, reply))
        }
        _ => (effect, None),
    };
    let hops = if front {
        vec![
            gap(Some(s.due_ms), accepted),
            gap(accepted, acknowledged),
            gap(accepted, effect),
            answered,
        ]
    } else {
        vec![
            gap(Some(s.due_ms), acknowledged),
            gap(acknowledged, effect),
            answered,
        ]
    };
    let complete = s.refused.is_none() && visible.is_some();
    Outcome {
        index: p.index,
        kind: p.kind,
        due_ms: s.due_ms,
        sent_ms: s.sent_ms,
        visible_ms: visible,
        applied: u32::from(complete),
        failure: s.refused.clone(),
        hops,
    }
}
