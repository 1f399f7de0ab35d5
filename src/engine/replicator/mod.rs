//! Replication as DynamoDB global tables do it: each region's table stream is read, and every
//! item a region wrote is applied to the other regions' tables, last writer wins.
//!
//! On AWS, global tables replicate and this does not run. The embedded engine runs it, and so
//! does the AWS engine against an emulator (which has no global tables).
//!
//! - **What is copied.** Only items written in the stream's own region (their `rep_in`):
//!   copies are not copied again, and a full mesh of links reaches every region directly.
//! - **Last writer wins.** An image replaces the item of the other region unless that holds a
//!   later write: of another region, by `rep_at` (time, then region); of the same region, by
//!   the sequence number of the stream record it came from (`rep_seq`), which is commit order.
//!   So applying a record twice, or an older one after a newer one, changes nothing.
//! - **Durable position.** After applying, the last sequence number read is stored in the
//!   target table (`replication#<source>`); a crash before that re-applies, which is harmless.
//! - **Links.** Each (source, target) pair is open, lagged or partitioned; the simulation
//!   drives them, and [`Replicator::step`] copies a bounded number of records at a time.

mod apply;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use crate::contract::Region;
use crate::ports::PortError;
use crate::store::item::s;

use apply::{apply_all, position_pk, write_of, SEQ_TEXT};
use stream::{iterator, old_enough};

/// Most stream records read per call.
const PAGE: i32 = 100;

/// One region's table and the clients to read and write it.
#[derive(Clone, Debug)]
pub struct Replica {
    /// The region.
    pub region: Region,
    /// Its table.
    pub table: String,
    /// Its DynamoDB client.
    pub dynamo: aws_sdk_dynamodb::Client,
    /// Its DynamoDB Streams client.
    pub streams: aws_sdk_dynamodbstreams::Client,
}

/// The state of replication from one region to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    /// Records are copied as soon as they are read.
    #[default]
    Open,
    /// Records are copied once they are at least this old.
    Lagged(Duration),
    /// Nothing is copied until the link is open again.
    Partitioned,
}

/// What is told of each page replication applied: the source region, the target region, and
/// the partition keys of the items written there (the embedded engine journals the
/// idempotency records among them: when an effect became visible in each region).
pub type Witness = std::sync::Arc<dyn Fn(&Region, &Region, &[&str]) + Send + Sync>;

/// The replicator of a set of regions.
pub struct Replicator {
    replicas: Vec<Replica>,
    links: Mutex<BTreeMap<(Region, Region), Link>>,
    streams: Mutex<HashMap<Region, String>>,
    /// Each stream's shards, as last described; described again once one is closed.
    shards: Mutex<HashMap<Region, Vec<String>>>,
    /// Where each (source, target, shard) was left: what this process knows, so an idle pass
    /// costs one `GetRecords` per pair. Lost with the process, and then read again.
    cursors: Mutex<HashMap<(Region, Region, String), Cursor>>,
    /// Whether a page is applied as transactions ([`apply`]) or one write at a time.
    batched: bool,
    witness: Option<Witness>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("replicas", &self.replicas)
            .field("batched", &self.batched)
            .field("witnessed", &self.witness.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the copy of one shard to one target was left.
#[derive(Debug, Clone, Default)]
struct Cursor {
    /// The last sequence number applied.
    position: Option<String>,
    /// The iterator after it, when the last page was read whole.
    iterator: Option<String>,
}

/// What replication needs and did not find.
#[derive(Debug, thiserror::Error)]
enum Missing {
    /// The replicator was asked about a region it has no table of.
    #[error("{0} has no replica")]
    Replica(Region),
    /// A table without a stream cannot be replicated.
    #[error("it has no stream: replication needs one")]
    Stream,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn storage(operation: &str, e: impl Into<crate::sdk::SdkFailure>) -> PortError {
    crate::store::storage(format!("replication: {operation}"), e)
}

impl Replicator {
    /// A replicator over `replicas`, every link open.
    pub fn new(replicas: Vec<Replica>) -> Self {
        Self {
            replicas,
            links: Mutex::new(BTreeMap::new()),
            streams: Mutex::new(HashMap::new()),
            shards: Mutex::new(HashMap::new()),
            cursors: Mutex::new(HashMap::new()),
            batched: true,
            witness: None,
        }
    }

    /// The same replicator, telling `witness` of every page it applies.
    pub fn witnessed(mut self, witness: Witness) -> Self {
        self.witness = Some(witness);
        self
    }

    /// The same replicator for moto: each record applied alone (`PutItem`, `DeleteItem`), and
    /// a fresh shard iterator on every pass. moto's `TransactWriteItems` deep-copies each table
    /// it touches and, when cancelled, puts the copies back (`moto/dynamodb/models/__init__.py`,
    /// `transact_write_items`), with no lock, so it would undo what other clients wrote
    /// meanwhile; and an iterator taken before the rollback still reads the old copy's stream,
    /// records of the cancelled transaction included (`tests/contract.rs` saw a duplicate add
    /// replicated as 14 where its region held 7).
    pub fn one_at_a_time(mut self) -> Self {
        self.batched = false;
        self
    }

    /// Sets the link from `from` to `to`.
    pub fn set_link(&self, from: &Region, to: &Region, link: Link) {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.insert((from.clone(), to.clone()), link);
    }

    /// Opens every link.
    pub fn heal(&self) {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The link from `from` to `to`.
    pub fn link(&self, from: &Region, to: &Region) -> Link {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .get(&(from.clone(), to.clone()))
            .copied()
            .unwrap_or_default()
    }

    /// Copies everything every link lets through; answers how many records were applied.
    pub async fn run(&self) -> Result<u64, PortError> {
        let mut applied = 0;
        for from in &self.replicas {
            for to in self.replicas.iter().filter(|r| r.region != from.region) {
                applied += self.copy(from, to, usize::MAX).await?;
            }
        }
        Ok(applied)
    }

    /// Copies at most `limit` records from `from` to `to`, as the link lets them through;
    /// answers how many were applied.
    pub async fn step(&self, from: &Region, to: &Region, limit: usize) -> Result<u64, PortError> {
        let find = |r: &Region| {
            self.replicas
                .iter()
                .find(|x| &x.region == r)
                .ok_or_else(|| PortError::Corrupt {
                    what: format!("replication from {from} to {to}"),
                    source: Box::new(Missing::Replica(r.clone())),
                })
        };
        self.copy(find(from)?, find(to)?, limit).await
    }

    async fn copy(&self, from: &Replica, to: &Replica, limit: usize) -> Result<u64, PortError> {
        let min_age = match self.link(&from.region, &to.region) {
            Link::Partitioned => return Ok(0),
            Link::Open => Duration::ZERO,
            Link::Lagged(lag) => lag,
        };
        let arn = self.stream_arn(from).await?;
        let shards = self.shards(from, &arn).await?;
        let mut applied = 0;
        let mut budget = limit;
        for shard in shards {
            let (n, read) = self
                .copy_shard(from, to, &arn, &shard, budget, min_age)
                .await?;
            applied += n;
            budget = budget.saturating_sub(read);
            if budget == 0 {
                break;
            }
        }
        Ok(applied)
    }

    /// The shards of `from`'s stream.
    async fn shards(&self, from: &Replica, arn: &str) -> Result<Vec<String>, PortError> {
        if let Some(shards) = lock(&self.shards).get(&from.region) {
            return Ok(shards.clone());
        }
        let stream = from
            .streams
            .describe_stream()
            .stream_arn(arn)
            .send()
            .await
            .map_err(|e| storage("DescribeStream", e))?;
        let shards: Vec<String> = stream
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        lock(&self.shards).insert(from.region.clone(), shards.clone());
        Ok(shards)
    }

    /// Copies one shard's records after the stored position; answers (applied, read).
    async fn copy_shard(
        &self,
        from: &Replica,
        to: &Replica,
        arn: &str,
        shard: &str,
        limit: usize,
        min_age: Duration,
    ) -> Result<(u64, usize), PortError> {
        let key = (from.region.clone(), to.region.clone(), shard.to_owned());
        let known = lock(&self.cursors).get(&key).cloned();
        let mut cursor = match known {
            Some(c) => c,
            None => Cursor {
                position: self.position(from, to, shard).await?,
                iterator: None,
            },
        };
        let (mut applied, mut read) = (0, 0);
        loop {
            let page = (limit - read).min(PAGE as usize) as i32;
            if page == 0 {
                break;
            }
            let it = match cursor.iterator.take() {
                Some(it) => it,
                None => match iterator(from, arn, shard, cursor.position.clone()).await? {
                    Some(it) => it,
                    None => break,
                },
            };
            let out = match from
                .streams
                .get_records()
                .shard_iterator(&it)
                .limit(page)
                .send()
                .await
            {
                Ok(out) => out,
                // An iterator kept too long expires: the position gives a fresh one.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_expired_iterator_exception()) =>
                {
                    continue;
                }
                Err(e) => return Err(storage("GetRecords", e)),
            };
            let records = out.records();
            let taken = records
                .iter()
                .take_while(|r| old_enough(r, min_age))
                .count();
            let mut writes = Vec::new();
            for record in &records[..taken] {
                writes.extend(write_of(from, to, record)?);
            }
            let last = records[..taken]
                .iter()
                .rev()
                .find_map(|r| r.dynamodb().and_then(|d| d.sequence_number()));
            if let Some(seq) = last {
                let keys: Vec<String> = match &self.witness {
                    Some(_) => writes.iter().map(|w| w.pk().to_owned()).collect(),
                    None => Vec::new(),
                };
                applied += apply_all(from, to, writes, (shard, seq), self.batched).await?;
                if let Some(witness) = &self.witness {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    witness(&from.region, &to.region, &keys);
                }
                cursor.position = Some(seq.to_owned());
            }
            read += taken;
            if taken < records.len() {
                // A record too young for the link: read again from the position next time.
                break;
            }
            let empty = records.is_empty();
            let records_read = records.len();
            match out.next_shard_iterator.clone() {
                Some(next) => cursor.iterator = Some(next),
                // The shard is closed: its children show in the stream's next description.
                None => {
                    lock(&self.shards).remove(&from.region);
                    break;
                }
            }
            // A short page is the shard's end for now: the next pass reads on from here.
            if empty || records_read < page as usize {
                break;
            }
        }
        if !self.batched {
            // See [`Replicator::one_at_a_time`]: moto's iterators outlive its rollbacks.
            cursor.iterator = None;
        }
        lock(&self.cursors).insert(key, cursor);
        Ok((applied, read))
    }

    async fn stream_arn(&self, replica: &Replica) -> Result<String, PortError> {
        if let Some(arn) = lock(&self.streams).get(&replica.region) {
            return Ok(arn.clone());
        }
        let out = replica
            .dynamo
            .describe_table()
            .table_name(&replica.table)
            .send()
            .await
            .map_err(|e| storage("DescribeTable", e))?;
        let arn = out
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| PortError::Corrupt {
                what: format!("table {} in {}", replica.table, replica.region),
                source: Box::new(Missing::Stream),
            })?
            .to_owned();
        lock(&self.streams).insert(replica.region.clone(), arn.clone());
        Ok(arn)
    }

    /// The last sequence number of `from`'s shard applied to `to`.
    async fn position(
        &self,
        from: &Replica,
        to: &Replica,
        shard: &str,
    ) -> Result<Option<String>, PortError> {
        let out = to
            .dynamo
            .get_item()
            .table_name(&to.table)
            .key("pk", s(position_pk(&from.region)))
            .key("sk", s(shard))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| storage("GetItem (position)", e))?;
        // The text the stream wrote; a position written before it was kept, the Number.
        let item = out.item();
        let text = item
            .and_then(|i| i.get(SEQ_TEXT))
            .and_then(|v| v.as_s().ok());
        let number = item.and_then(|i| i.get("seq")).and_then(|v| v.as_n().ok());
        Ok(text.or(number).cloned())
    }
}
