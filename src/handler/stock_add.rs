//! stock-add: this region's share of a product grows, once.

use super::{here, HandlerError};
use crate::contract::{ContractError, StockAdd};
use crate::ports::{EffectKey, Outcome, Site, StockShares};
use crate::topology::Function;

/// Adds `add.qty` to this region's share of `add.product`. The store must live in this region:
/// each region writes only its own shares, so no share ever has two writers.
pub async fn add(
    site: Site<'_>,
    stock: &dyn StockShares,
    add: &StockAdd,
) -> Result<Outcome, HandlerError> {
    let home = site
        .topology
        .store_home(&add.store)
        .ok_or_else(|| ContractError::Unknown {
            field: "detail.store".into(),
            what: "store",
            name: add.store.to_string(),
        })?;
    here(site, "detail.store", add.store.as_str(), home)?;
    let key = EffectKey::new(Function::StockAdd, &add.id, add)?;
    Ok(stock.add(&key, &add.product, add.qty).await?)
}
