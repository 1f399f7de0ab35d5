//! What the simulation does to the system: a crash in the middle of a handler, and the designs
//! moebi rejected.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::contract::{Event, Participant, Product, Quantity, Region};
use crate::ports::{
    Bus, EffectKey, InboxEntry, Inboxes, Outcome, PortError, Ports, StockShare, StockShares,
};
use crate::store::DynamoStore;

/// A crash inside a handler: the first `calls` calls to the ports go through, every later one
/// fails. With `drop_response`, the last call that goes through takes effect but its answer is
/// lost (the process dies as the response arrives). What the handler answers is thrown away,
/// and the batch is neither deleted nor released: the process is gone.
pub struct Fuse {
    left: AtomicUsize,
    drop_response: bool,
}

impl Fuse {
    /// A fuse that blows after `calls` calls.
    pub fn new(calls: usize, drop_response: bool) -> Self {
        Self {
            left: AtomicUsize::new(calls),
            drop_response,
        }
    }

    /// Runs `call` unless the process has crashed by then.
    async fn call<T, F>(&self, call: F) -> Result<T, PortError>
    where
        F: std::future::Future<Output = Result<T, PortError>>,
    {
        let left = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .unwrap_or(0);
        if left == 0 {
            return Err(crashed());
        }
        let out = call.await;
        if left == 1 && self.drop_response {
            return Err(crashed());
        }
        out
    }
}

/// The simulated process died in the middle of a call.
#[derive(Debug, thiserror::Error)]
#[error("the process died")]
struct Crash;

fn crashed() -> PortError {
    PortError::Storage {
        operation: "simulated crash".into(),
        retryable: true,
        source: Box::new(Crash),
    }
}

/// The ports of a handler whose process crashes at the fuse.
pub struct Fused<'a> {
    /// The ports it would have.
    pub ports: Ports<'a>,
    /// When it crashes.
    pub fuse: &'a Fuse,
}

#[async_trait]
impl Inboxes for Fused<'_> {
    async fn deliver(
        &self,
        key: &EffectKey,
        owner: &Participant,
        entry: &InboxEntry,
    ) -> Result<Outcome, PortError> {
        self.fuse
            .call(self.ports.inboxes.deliver(key, owner, entry))
            .await
    }

    async fn inbox(&self, owner: &Participant) -> Result<Vec<InboxEntry>, PortError> {
        self.fuse.call(self.ports.inboxes.inbox(owner)).await
    }
}

#[async_trait]
impl StockShares for Fused<'_> {
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError> {
        self.fuse
            .call(self.ports.stock.add(key, product, qty))
            .await
    }

    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError> {
        self.fuse.call(self.ports.stock.shares(product)).await
    }
}

#[async_trait]
impl Bus for Fused<'_> {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        self.fuse.call(self.ports.bus.publish(events)).await
    }
}

/// The stock designs moebi rejected, kept as shares added to with `ADD` (replication copies the
/// whole item, last writer wins). Each add is still applied once in its region.
/// - `shared: Some(region)`: one item per product, which every region adds to: replication
///   loses some adds ([`super::Design::Naive`]).
/// - `shared: None`: one share per (product, region), each region adding to its own: an add
///   applied in two regions (after a failover) is counted twice ([`super::Design::Shares`]).
pub struct ShareStock {
    /// The region's store.
    pub store: DynamoStore,
    /// The region whose share every region's adds go to, or none for the region's own.
    pub shared: Option<Region>,
}

#[async_trait]
impl StockShares for ShareStock {
    async fn add(
        &self,
        key: &EffectKey,
        product: &Product,
        qty: Quantity,
    ) -> Result<Outcome, PortError> {
        let share = self.shared.as_ref().unwrap_or(self.store.region());
        self.store.add_to_share(key, product, qty, share).await
    }

    async fn shares(&self, product: Option<&Product>) -> Result<Vec<StockShare>, PortError> {
        self.store.shares(product).await
    }
}
