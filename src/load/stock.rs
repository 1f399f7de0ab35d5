//! After a run through the API or the AWS engine: whether every region's stock holds what the
//! run's applied adds sum to.

use std::time::Duration;

use tokio::time::Instant;

use super::api::Stamps;
use super::measure::Outcome;
use super::plan::Planned;
use super::LoadError;
use crate::contract::Event;

impl Stamps {
    /// Whether every region's stock holds what the adds acknowledged sum to, per product of
    /// the run, waiting up to `settle` for replication; answers what disagrees.
    pub async fn check_stock(
        &self,
        schedule: &[Planned],
        outcomes: &[Outcome],
        settle: Duration,
    ) -> Result<Vec<String>, LoadError> {
        use crate::ports::StockShares;
        let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
        for (p, o) in schedule.iter().zip(outcomes) {
            if let (Event::StockAdd(a), 1) = (&p.event, o.applied) {
                *expected.entry(a.product.to_string()).or_default() += u64::from(a.qty.get());
            }
        }
        let deadline = Instant::now() + settle;
        loop {
            let mut problems = Vec::new();
            for (region, client) in &self.clients {
                let store = crate::store::DynamoStore::new(
                    region.clone(),
                    self.table.clone(),
                    client.clone(),
                );
                let shares = store.shares(None).await.map_err(|e| {
                    LoadError::Plan(format!(
                        "reading the stock in {region}: {}",
                        crate::report(&e)
                    ))
                })?;
                let mut held: std::collections::BTreeMap<String, u64> = Default::default();
                for s in shares {
                    *held.entry(s.product.to_string()).or_default() += s.qty;
                }
                for (product, want) in &expected {
                    let got = held.get(product).copied().unwrap_or(0);
                    if got != *want {
                        problems.push(format!(
                            "{region} holds {got} of {product}, the adds applied sum to {want}"
                        ));
                    }
                }
            }
            if problems.is_empty() || Instant::now() > deadline {
                return Ok(problems);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
