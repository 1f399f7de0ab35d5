//! stock-status: the asker's inbox gets the quantities, or a clear "no product".

use std::collections::BTreeMap;

use chrono::Utc;

use super::{here, HandlerError};
use crate::contract::{Product, StockStatus};
use crate::ports::{
    EffectKey, InboxEntry, Inboxes, Outcome, PortError, Site, StockShare, StockShares,
};
use crate::topology::Function;

/// Sums every region's shares and answers the asker, who must live in this region.
pub async fn answer(
    site: Site<'_>,
    stock: &dyn StockShares,
    inboxes: &dyn Inboxes,
    ask: &StockStatus,
) -> Result<Outcome, HandlerError> {
    let home = super::participant_home(
        site.topology,
        "detail.asker",
        &ask.asker,
        "a bot: only participants ask the stock",
    )?;
    here(site, "detail.asker", ask.asker.as_str(), home)?;
    let shares = stock.shares(ask.product.as_ref()).await?;
    let entry = InboxEntry {
        id: ask.id.derived("answer"),
        from: InboxEntry::STOCK.to_owned(),
        text: describe(ask.product.as_ref(), &totals(&shares)?),
        sent_at: Utc::now(),
        in_reply_to: Some(ask.id.clone()),
    };
    let key = EffectKey::new(Function::StockStatus, &ask.id, ask)?;
    Ok(inboxes.deliver(&key, &ask.asker, &entry).await?)
}

/// The total of each product over every region's share.
pub fn totals(shares: &[StockShare]) -> Result<BTreeMap<Product, u64>, PortError> {
    let mut totals = BTreeMap::new();
    for share in shares {
        let total: &mut u64 = totals.entry(share.product.clone()).or_default();
        *total = total
            .checked_add(share.qty)
            .ok_or_else(|| PortError::Overflow {
                product: share.product.clone(),
                limit: u64::MAX,
            })?;
    }
    totals.retain(|_, qty| *qty > 0);
    Ok(totals)
}

/// The answer's text: `nike: 35`, `there is no product puma`, or every product.
pub fn describe(product: Option<&Product>, totals: &BTreeMap<Product, u64>) -> String {
    match product {
        Some(p) => match totals.get(p) {
            Some(qty) => format!("{p}: {qty}"),
            None => format!("there is no product {p}"),
        },
        None if totals.is_empty() => "the stock is empty".to_owned(),
        None => totals
            .iter()
            .map(|(p, qty)| format!("{p}: {qty}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Region;

    fn part(product: &str, qty: u64) -> StockShare {
        StockShare {
            product: Product::parse(product).unwrap(),
            region: Region::parse("us-west-2").unwrap(),
            qty,
        }
    }

    #[test]
    fn a_total_past_64_bits_is_refused_naming_the_product_never_wrapped() {
        let parts = [part("nike", u64::MAX), part("puma", 1), part("nike", 1)];
        let err = totals(&parts).unwrap_err();
        assert!(err.to_string().contains("nike"), "{err}");
        let fits = totals(&[part("nike", u64::MAX - 1), part("nike", 1)]).unwrap();
        assert_eq!(fits[&Product::parse("nike").unwrap()], u64::MAX);
    }
}
