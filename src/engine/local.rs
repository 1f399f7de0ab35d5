//! The embedded engine: every region of the topology on one machine, in SQLite files.
//!
//! Each region is its own namespace: one database file (`<state>/<region>.sqlite`) holding
//! what DynamoDB holds there (inboxes, stock shares, idempotency records) and that region's
//! queues. Writes are replicated to every other region as a global table replicates its items;
//! every item has a single writer region, so copying it is safe.
//!
//! The bus evaluates the topology's event patterns (the ones Terraform writes) and delivers to:
//! an SQS-like queue in front of chat-send and stock-add (visibility timeout, receive count,
//! DLQ after `max_receive_count`, batches of up to `batch_size` honouring partial failures);
//! an async-invocation queue for the functions EventBridge invokes directly (three attempts,
//! as Lambda makes, then the on-failure destination); or another region's bus.
//!
//! Time in the queues is the engine's own clock, which jumps to the next visibility deadline
//! when nothing else is ready, so draining never sleeps and retries still happen in order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{DeadLetter, Engine, EngineError, RunReport};
use crate::contract::{Event, EventId, Participant, Product, Quantity, Region};
use crate::invoke::{self, Payload, Response};
use crate::pattern::Pattern;
use crate::ports::{
    Bus, EffectKey, InboxEntry, Inboxes, Outcome, PortError, Ports, StockShare, StockShares,
    MAX_SHARE,
};
use crate::topology::{Function, Target, Topology};

/// The account id the embedded engine reports in ARNs and envelopes.
pub const ACCOUNT: &str = "000000000000";

/// Attempts Lambda makes at an asynchronous (EventBridge) invocation before giving up.
const ASYNC_ATTEMPTS: u32 = 3;
/// Seconds between asynchronous retries.
const ASYNC_RETRY_SECONDS: i64 = 60;
/// Most forwarding hops an event may take; more means the routes loop.
const MAX_HOPS: usize = 4;
/// Most deliveries one run makes; more means something re-publishes forever.
const MAX_DELIVERIES: u64 = 10_000_000;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
-- WAL with NORMAL sync survives a crash of the process, not of the machine: enough for a
-- laptop engine, and it spares an fsync per transaction.
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS applied (
    effect      TEXT PRIMARY KEY,              -- '<function>#<event id>'
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner       TEXT NOT NULL,
    id          TEXT NOT NULL,
    sender      TEXT NOT NULL,
    text        TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    in_reply_to TEXT,
    UNIQUE (owner, id)
);
CREATE TABLE IF NOT EXISTS stock (
    product     TEXT NOT NULL,
    region      TEXT NOT NULL,                 -- the share's only writer
    qty         INTEGER NOT NULL CHECK (qty >= 0),
    PRIMARY KEY (product, region)
);
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL UNIQUE,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at    INTEGER NOT NULL,
    last_error    TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    reason        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clock (
    id  INTEGER PRIMARY KEY CHECK (id = 0),
    now INTEGER NOT NULL
);
INSERT OR IGNORE INTO clock (id, now) VALUES (0, 0);
";

/// How a queue hands its messages to its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// An SQS queue behind an event source mapping: batches, partial failures.
    Sqs,
    /// Lambda's queue of asynchronous invocations: one event at a time.
    Async,
}

#[derive(Debug, Clone)]
struct QueueSpec {
    name: String,
    function: Function,
    delivery: Delivery,
}

fn queue_for(function: Function, delivery: Delivery) -> QueueSpec {
    let name = match delivery {
        Delivery::Sqs => function.queue_name(),
        Delivery::Async => format!("{}-async", function.queue_name()),
    };
    QueueSpec {
        name,
        function,
        delivery,
    }
}

struct CompiledRule {
    pattern: Pattern,
    target: Target,
}

struct RegionState {
    db: Mutex<Connection>,
    rules: Vec<CompiledRule>,
    queues: Vec<QueueSpec>,
}

/// The embedded engine.
pub struct LocalEngine {
    topology: Arc<Topology>,
    dir: PathBuf,
    regions: BTreeMap<Region, RegionState>,
}

fn state_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::State(e.to_string())
}

fn storage(e: rusqlite::Error) -> PortError {
    PortError::Storage(e.to_string())
}

impl LocalEngine {
    /// Opens (creating if needed) the state of every region of `topology` under `dir`.
    pub fn open(dir: &Path, topology: Topology) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            EngineError::State(format!(
                "cannot create state directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut regions = BTreeMap::new();
        for region in &topology.regions {
            let path = dir.join(format!("{region}.sqlite"));
            let conn = Connection::open(&path)
                .map_err(|e| EngineError::State(format!("cannot open {}: {e}", path.display())))?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(state_err)?;
            conn.execute_batch(SCHEMA).map_err(|e| {
                EngineError::State(format!("cannot prepare {}: {e}", path.display()))
            })?;
            let mut rules = Vec::new();
            let mut queues = Vec::new();
            for rule in topology.rules(region) {
                let pattern =
                    Pattern::parse(&rule.pattern).map_err(|e| EngineError::State(e.to_string()))?;
                match rule.target {
                    Target::Queue(f) => queues.push(queue_for(f, Delivery::Sqs)),
                    Target::Function(f) => queues.push(queue_for(f, Delivery::Async)),
                    Target::Bus(_) => {}
                }
                rules.push(CompiledRule {
                    pattern,
                    target: rule.target,
                });
            }
            regions.insert(
                region.clone(),
                RegionState {
                    db: Mutex::new(conn),
                    rules,
                    queues,
                },
            );
        }
        Ok(Self {
            topology: Arc::new(topology),
            dir: dir.to_owned(),
            regions,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn region(&self, region: &Region) -> Result<&RegionState, EngineError> {
        self.regions
            .get(region)
            .ok_or_else(|| super::unknown_region(&self.topology, region))
    }

    fn db(&self, region: &Region) -> Result<MutexGuard<'_, Connection>, PortError> {
        let state = self
            .regions
            .get(region)
            .ok_or_else(|| PortError::Storage(format!("unknown region {region}")))?;
        // A panic while holding the lock cannot leave SQLite half-written: its transaction
        // rolls back, so the connection is still good.
        Ok(state.db.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The ports of one region, as a handler running there sees them.
    pub fn ports_of(&self, region: &Region) -> RegionPorts<'_> {
        RegionPorts {
            engine: self,
            region: region.clone(),
        }
    }

    /// Applies `write` in `region`'s database once per `key`, then replicates it elsewhere.
    fn apply_once<T>(
        &self,
        region: &Region,
        key: &EffectKey,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, PortError>,
        replicate: impl Fn(&Connection, &T) -> rusqlite::Result<()>,
    ) -> Result<Outcome, PortError> {
        let effect = key.to_string();
        let now = Utc::now().to_rfc3339();
        let written = {
            let mut conn = self.db(region)?;
            let tx = conn.transaction().map_err(storage)?;
            let fresh = tx
                .execute(
                    "INSERT INTO applied (effect, applied_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![effect, now],
                )
                .map_err(storage)?;
            if fresh == 0 {
                return Ok(Outcome::Duplicate);
            }
            let written = write(&tx)?;
            tx.commit().map_err(storage)?;
            written
        };
        // Replication, as a global table does it: the same items, in every other region.
        for other in self.regions.keys().filter(|r| *r != region) {
            let conn = self.db(other)?;
            conn.execute(
                "INSERT INTO applied (effect, applied_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![effect, now],
            )
            .map_err(storage)?;
            replicate(&conn, &written).map_err(storage)?;
        }
        Ok(Outcome::Applied)
    }

    /// Puts one event on `region`'s bus: every matching rule delivers it to its target.
    fn put_event(&self, region: &Region, envelope: &Value, hops: usize) -> Result<(), PortError> {
        if hops > MAX_HOPS {
            return Err(PortError::Bus(format!(
                "event forwarded more than {MAX_HOPS} times: the routes loop"
            )));
        }
        let state = self
            .regions
            .get(region)
            .ok_or_else(|| PortError::Bus(format!("no bus in region {region}")))?;
        let mut matched = false;
        for rule in state.rules.iter().filter(|r| r.pattern.matches(envelope)) {
            matched = true;
            match &rule.target {
                Target::Queue(f) => {
                    self.enqueue(region, &queue_for(*f, Delivery::Sqs).name, envelope)?
                }
                Target::Function(f) => {
                    self.enqueue(region, &queue_for(*f, Delivery::Async).name, envelope)?
                }
                Target::Bus(other) => self.put_event(other, envelope, hops + 1)?,
            }
        }
        if !matched {
            // EventBridge drops an event no rule matches; so does this bus, but says so.
            tracing::warn!(%region, event = %envelope, "no rule matched the event");
        }
        Ok(())
    }

    fn enqueue(&self, region: &Region, queue: &str, envelope: &Value) -> Result<(), PortError> {
        let conn = self.db(region)?;
        conn.execute(
            "INSERT INTO messages (queue, message_id, body, visible_at)
             VALUES (?1, ?2, ?3, (SELECT now FROM clock))",
            params![
                queue,
                uuid::Uuid::new_v4().to_string(),
                envelope.to_string()
            ],
        )
        .map_err(storage)?;
        Ok(())
    }

    /// Receives up to `max` visible messages, moving those received too often to the DLQ.
    fn receive(
        &self,
        region: &Region,
        queue: &QueueSpec,
        max: u32,
    ) -> Result<(Vec<Received>, u64), PortError> {
        let settings = self.topology.queues;
        let (max_receives, hide_for) = match queue.delivery {
            Delivery::Sqs => (
                settings.max_receive_count,
                i64::from(settings.visibility_timeout_seconds),
            ),
            Delivery::Async => (ASYNC_ATTEMPTS, ASYNC_RETRY_SECONDS),
        };
        let mut conn = self.db(region)?;
        let tx = conn.transaction().map_err(storage)?;
        let now: i64 = tx
            .query_row("SELECT now FROM clock", [], |r| r.get(0))
            .map_err(storage)?;
        let mut received = Vec::new();
        let mut dead = 0;
        {
            let mut ready = tx
                .prepare(
                    "SELECT seq, message_id, body, receive_count, last_error FROM messages
                     WHERE queue = ?1 AND visible_at <= ?2 ORDER BY seq",
                )
                .map_err(storage)?;
            let rows = ready
                .query_map(params![queue.name, now], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            for (seq, message_id, body, count, last_error) in rows {
                if received.len() as u32 >= max {
                    break;
                }
                if count >= max_receives {
                    tx.execute(
                        "INSERT INTO dead_letters (queue, message_id, body, receive_count, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            queue.name,
                            message_id,
                            body,
                            count,
                            last_error.unwrap_or_default()
                        ],
                    )
                    .map_err(storage)?;
                    tx.execute("DELETE FROM messages WHERE seq = ?1", params![seq])
                        .map_err(storage)?;
                    dead += 1;
                    continue;
                }
                tx.execute(
                    "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2 WHERE seq = ?1",
                    params![seq, now + hide_for],
                )
                .map_err(storage)?;
                received.push(Received {
                    message_id,
                    body,
                    receive_count: count + 1,
                });
            }
        }
        tx.commit().map_err(storage)?;
        Ok((received, dead))
    }

    fn settle(
        &self,
        region: &Region,
        message_id: &str,
        failure: Option<&str>,
    ) -> Result<(), PortError> {
        let conn = self.db(region)?;
        match failure {
            None => conn.execute(
                "DELETE FROM messages WHERE message_id = ?1",
                params![message_id],
            ),
            Some(reason) => conn.execute(
                "UPDATE messages SET last_error = ?2 WHERE message_id = ?1",
                params![message_id, reason],
            ),
        }
        .map_err(storage)?;
        Ok(())
    }

    /// Delivers one round: every ready message of every queue of every region.
    async fn deliver_ready(&self, report: &mut RunReport) -> Result<bool, EngineError> {
        let mut progressed = false;
        for (region, state) in &self.regions {
            for queue in &state.queues {
                loop {
                    let batch_size = match queue.delivery {
                        Delivery::Sqs => self.topology.queues.batch_size,
                        Delivery::Async => 1,
                    };
                    let (batch, dead) = self.receive(region, queue, batch_size)?;
                    report.dead += dead;
                    progressed |= dead > 0;
                    if batch.is_empty() {
                        break;
                    }
                    progressed = true;
                    if report.handled + report.failed > MAX_DELIVERIES {
                        return Err(EngineError::State(
                            "events keep coming: the run does not settle".into(),
                        ));
                    }
                    self.deliver(region, queue, batch, report).await?;
                }
            }
        }
        Ok(progressed)
    }

    async fn deliver(
        &self,
        region: &Region,
        queue: &QueueSpec,
        batch: Vec<Received>,
        report: &mut RunReport,
    ) -> Result<(), EngineError> {
        let ports = self.ports_of(region);
        let ports = ports.ports();
        match queue.delivery {
            Delivery::Sqs => {
                let event = sqs_event(region, &queue.name, &batch);
                let (_, failures) = invoke::batch_of(queue.function, &ports, &event).await;
                for msg in &batch {
                    let failure = failures
                        .iter()
                        .find(|(id, _)| id == &msg.message_id)
                        .map(|(_, e)| e.to_string());
                    self.settle(region, &msg.message_id, failure.as_deref())?;
                    match failure {
                        Some(_) => report.failed += 1,
                        None => report.handled += 1,
                    }
                }
            }
            Delivery::Async => {
                for msg in &batch {
                    let envelope: Value = serde_json::from_str(&msg.body).map_err(state_err)?;
                    let result = invoke::single(queue.function, &ports, &envelope).await;
                    let failure = result.err().map(|e| e.to_string());
                    self.settle(region, &msg.message_id, failure.as_deref())?;
                    match failure {
                        Some(_) => report.failed += 1,
                        None => report.handled += 1,
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves every region's clock to its earliest visibility deadline; false when no message waits.
    fn advance_clocks(&self) -> Result<bool, EngineError> {
        let mut waiting = false;
        for region in self.regions.keys() {
            let conn = self.db(region)?;
            let next: Option<i64> = conn
                .query_row("SELECT MIN(visible_at) FROM messages", [], |r| r.get(0))
                .optional()
                .map_err(state_err)?
                .flatten();
            if let Some(next) = next {
                waiting = true;
                conn.execute("UPDATE clock SET now = MAX(now, ?1)", params![next])
                    .map_err(state_err)?;
            }
        }
        Ok(waiting)
    }
}

struct Received {
    message_id: String,
    body: String,
    receive_count: u32,
}

/// The SQS batch Lambda's event source mapping would build from received messages.
fn sqs_event(region: &Region, queue: &str, batch: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for msg in batch {
        let mut record = SqsMessage::default();
        record.message_id = Some(msg.message_id.clone());
        record.receipt_handle = Some(msg.message_id.clone());
        record.body = Some(msg.body.clone());
        record.attributes.insert(
            "ApproximateReceiveCount".into(),
            msg.receive_count.to_string(),
        );
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(format!("arn:aws:sqs:{region}:{ACCOUNT}:{queue}"));
        record.aws_region = Some(region.to_string());
        event.records.push(record);
    }
    event
}

/// The envelope EventBridge wraps a published event in.
pub fn envelope(region: &Region, event: &Event) -> Value {
    let mut e: EventBridgeEvent<Value> = EventBridgeEvent::default();
    e.version = Some("0".into());
    e.id = Some(uuid::Uuid::new_v4().to_string());
    e.detail_type = event.kind().detail_type().into();
    e.source = crate::contract::SOURCE.into();
    e.account = Some(ACCOUNT.into());
    e.time = Some(Utc::now());
    e.region = Some(region.to_string());
    e.resources = Some(Vec::new());
    e.detail = event.detail();
    serde_json::to_value(e).expect("an EventBridge event serializes")
}

#[async_trait]
impl Engine for LocalEngine {
    fn topology(&self) -> &Topology {
        &self.topology
    }

    async fn publish(&self, region: &Region, events: &[Event]) -> Result<(), EngineError> {
        self.region(region)?;
        Ok(self.ports_of(region).publish(events).await?)
    }

    async fn run_until_idle(&self) -> Result<RunReport, EngineError> {
        let mut report = RunReport::default();
        loop {
            if self.deliver_ready(&mut report).await? {
                continue;
            }
            if !self.advance_clocks()? {
                return Ok(report);
            }
        }
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, EngineError> {
        let home = self
            .topology
            .home_of(owner)
            .ok_or_else(|| crate::contract::ContractError::Unknown {
                field: "participant".into(),
                what: "participant",
                name: owner.to_string(),
            })?
            .clone();
        Ok(self.ports_of(&home).inbox(owner).await?)
    }

    async fn dead_letters(&self, region: Option<&Region>) -> Result<Vec<DeadLetter>, EngineError> {
        let regions: Vec<&Region> = match region {
            Some(r) => {
                self.region(r)?;
                vec![r]
            }
            None => self.regions.keys().collect(),
        };
        let mut out = Vec::new();
        for region in regions {
            let conn = self.db(region)?;
            let mut stmt = conn
                .prepare("SELECT queue, message_id, receive_count, reason, body FROM dead_letters ORDER BY seq")
                .map_err(state_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(DeadLetter {
                        region: region.clone(),
                        queue: r.get(0)?,
                        message_id: r.get(1)?,
                        receive_count: r.get(2)?,
                        reason: r.get(3)?,
                        body: r.get(4)?,
                    })
                })
                .map_err(state_err)?;
            for row in rows {
                out.push(row.map_err(state_err)?);
            }
        }
        Ok(out)
    }

    async fn invoke(
        &self,
        region: &Region,
        function: Function,
        payload: &Payload,
    ) -> Result<Response, EngineError> {
        self.region(region)?;
        let ports = self.ports_of(region);
        Ok(invoke::invoke(function, &ports.ports(), payload).await)
    }
}

/// One region's ports on the embedded engine.
pub struct RegionPorts<'a> {
    engine: &'a LocalEngine,
    region: Region,
}

impl RegionPorts<'_> {
    /// The ports bundle a handler takes.
    pub fn ports(&self) -> Ports<'_> {
        Ports {
            region: &self.region,
            topology: &self.engine.topology,
            inboxes: self,
            stock: self,
            bus: self,
        }
    }
}

#[async_trait]
impl Inboxes for RegionPorts<'_> {
    async fn deliver(
        &self,
        key: &EffectKey,
        owner: &Participant,
        entry: &InboxEntry,
    ) -> Result<Outcome, PortError> {
        let insert = |conn: &Connection| {
            conn.execute(
                "INSERT INTO inbox (owner, id, sender, text, sent_at, in_reply_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![
                    owner.as_str(),
                    entry.id.as_str(),
                    entry.from,
                    entry.text,
                    entry
                        .sent_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    entry.in_reply_to.as_ref().map(EventId::as_str)
                ],
            )
            .map(|_| ())
        };
        self.engine.apply_once(
            &self.region,
            key,
            |tx| insert(tx).map_err(storage),
            |conn, ()| insert(conn),
        )
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, PortError> {
        let conn = self.engine.db(&self.region)?;
        let mut stmt = conn
            .prepare(
                "SELECT id, sender, text, sent_at, in_reply_to FROM inbox
                 WHERE owner = ?1 ORDER BY sent_at, seq",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![owner.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(storage)?;
        let corrupt =
            |e: String| PortError::Storage(format!("inbox of {owner} holds a bad entry: {e}"));
        let mut entries = Vec::new();
        for row in rows {
            let (id, from, text, sent_at, in_reply_to) = row.map_err(storage)?;
            entries.push(InboxEntry {
                id: EventId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
                from,
                text,
                sent_at: DateTime::parse_from_rfc3339(&sent_at)
                    .map_err(|e| corrupt(e.to_string()))?
                    .with_timezone(&Utc),
                in_reply_to: in_reply_to
                    .map(|r| EventId::parse(&r))
                    .transpose()
                    .map_err(|e| corrupt(e.to_string()))?,
            });
        }
        Ok(entries)
    }
}

#[async_trait]
impl StockShares for RegionPorts<'_> {
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError> {
        let region = self.region.as_str();
        self.engine.apply_once(
            &self.region,
            key,
            |tx| {
                let held: i64 = tx
                    .query_row(
                        "SELECT qty FROM stock WHERE product = ?1 AND region = ?2",
                        params![product.as_str(), region],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(storage)?
                    .unwrap_or(0);
                let total = (held as u64)
                    .checked_add(u64::from(qty.get()))
                    .filter(|t| *t <= MAX_SHARE)
                    .ok_or_else(|| PortError::Overflow {
                        product: product.clone(),
                        limit: MAX_SHARE,
                    })?;
                tx.execute(
                    "INSERT INTO stock (product, region, qty) VALUES (?1, ?2, ?3)
                     ON CONFLICT (product, region) DO UPDATE SET qty = excluded.qty",
                    params![product.as_str(), region, total as i64],
                )
                .map_err(storage)?;
                Ok(total as i64)
            },
            |conn, total| {
                conn.execute(
                    "INSERT INTO stock (product, region, qty) VALUES (?1, ?2, ?3)
                     ON CONFLICT (product, region) DO UPDATE SET qty = excluded.qty",
                    params![product.as_str(), region, total],
                )
                .map(|_| ())
            },
        )
    }

    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError> {
        let conn = self.engine.db(&self.region)?;
        let mut stmt = conn
            .prepare("SELECT product, region, qty FROM stock WHERE ?1 IS NULL OR product = ?1 ORDER BY product, region")
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![product.map(Product::as_str)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(storage)?;
        let mut shares = Vec::new();
        for row in rows {
            let (p, r, qty) = row.map_err(storage)?;
            let corrupt =
                |e: String| PortError::Storage(format!("stock share {p}/{r} is bad: {e}"));
            shares.push(StockShare {
                product: Product::parse(&p).map_err(|e| corrupt(e.to_string()))?,
                region: Region::parse(&r).map_err(|e| corrupt(e.to_string()))?,
                qty: u64::try_from(qty).map_err(|e| corrupt(e.to_string()))?,
            });
        }
        Ok(shares)
    }
}

#[async_trait]
impl Bus for RegionPorts<'_> {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        for event in events {
            self.engine
                .put_event(&self.region, &envelope(&self.region, event), 0)?;
        }
        Ok(())
    }
}
