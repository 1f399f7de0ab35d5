//! What participants and stores do, over any engine: publish to their home region's bus, let
//! the engine run until idle, read the result.

use chrono::Utc;

use crate::contract::{
    ChatSend, ContractError, Event, EventId, Participant, Product, Quantity, Region, StockAdd,
    StockStatus, Store, Text,
};
use crate::engine::{Engine, EngineError};
use crate::ports::InboxEntry;

/// A client of moebi.
pub struct Client<'a> {
    engine: &'a dyn Engine,
}

impl<'a> Client<'a> {
    /// A client over `engine`.
    pub fn new(engine: &'a dyn Engine) -> Self {
        Self { engine }
    }

    fn home(&self, field: &str, who: &Participant) -> Result<Region, ContractError> {
        self.engine.topology().home(field, who).cloned()
    }

    fn participant(field: &str, name: &str) -> Result<Participant, ContractError> {
        Participant::parse(name).map_err(|e| rename(e, field))
    }

    /// `from` sends `text` to `to`; answers the message's id once every effect has settled.
    pub async fn send(&self, from: &str, to: &str, text: &str) -> Result<EventId, EngineError> {
        let from = Self::participant("from", from)?;
        let to = Self::participant("to", to)?;
        let region = self.home("from", &from)?;
        self.home("to", &to)?;
        let msg = ChatSend {
            id: EventId::random(),
            from,
            to,
            text: Text::parse(text)?,
            sent_at: Utc::now(),
            in_reply_to: None,
        };
        let id = msg.id.clone();
        self.engine
            .publish(&region, &[Event::ChatSend(msg)])
            .await?;
        self.settle(&id).await?;
        Ok(id)
    }

    /// Runs the engine until idle, then answers whether event `id` was set aside as a dead
    /// letter: a command reports the outcome of its own event.
    pub async fn settle(&self, id: &EventId) -> Result<(), EngineError> {
        self.engine.run_until_idle().await?;
        let dead = self.engine.dead_letters(None).await?;
        match dead.into_iter().find(|d| carries(&d.body, id)) {
            Some(d) => Err(EngineError::DeadLetter {
                id: id.clone(),
                queue: d.queue,
                region: d.region,
                reason: d.reason,
            }),
            None => Ok(()),
        }
    }

    /// `who`'s inbox, oldest first.
    pub async fn inbox(&self, who: &str) -> Result<Vec<InboxEntry>, EngineError> {
        let who = Self::participant("participant", who)?;
        self.home("participant", &who)?;
        self.engine.inbox(&who).await
    }

    /// `store` adds `qty` units of `product`.
    pub async fn add_stock(
        &self,
        store: &str,
        product: &str,
        qty: i64,
    ) -> Result<EventId, EngineError> {
        let store = Store::parse(store)?;
        let region = self
            .engine
            .topology()
            .store_home(&store)
            .cloned()
            .ok_or_else(|| ContractError::Unknown {
                field: "store".into(),
                what: "store",
                name: store.to_string(),
            })?;
        let qty = u64::try_from(qty)
            .map_err(|_| ContractError::field("qty", format!("must be at least 1, got {qty}")))
            .and_then(Quantity::new)?;
        let add = StockAdd {
            id: EventId::random(),
            store,
            product: Product::parse(product)?,
            qty,
        };
        let id = add.id.clone();
        self.engine
            .publish(&region, &[Event::StockAdd(add)])
            .await?;
        self.settle(&id).await?;
        Ok(id)
    }

    /// `asker` asks for `product` (or the whole stock); answers the text that landed in their inbox.
    pub async fn ask_stock(
        &self,
        asker: &str,
        product: Option<&str>,
    ) -> Result<String, EngineError> {
        let asker = Self::participant("asker", asker)?;
        let region = self.home("asker", &asker)?;
        if self.engine.topology().bot(&asker).is_some() {
            return Err(ContractError::field(
                "asker",
                format!("{asker} is a bot; only participants ask the stock"),
            )
            .into());
        }
        let ask = StockStatus {
            id: EventId::random(),
            asker: asker.clone(),
            product: product.map(Product::parse).transpose()?,
        };
        let id = ask.id.clone();
        self.engine
            .publish(&region, &[Event::StockStatus(ask)])
            .await?;
        self.engine.run_until_idle().await?;
        let inbox = self.engine.inbox(&asker).await?;
        inbox
            .into_iter()
            .rev()
            .find(|e| e.in_reply_to.as_ref() == Some(&id))
            .map(|e| e.text)
            .ok_or_else(|| EngineError::Unanswered {
                asker: asker.clone(),
                id,
            })
    }
}

/// Whether a queued message (an EventBridge event) is event `id`.
fn carries(body: &str, id: &EventId) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["detail"]["id"].as_str().map(|d| d == id.as_str()))
        .unwrap_or(false)
}

fn rename(e: ContractError, field: &str) -> ContractError {
    match e {
        ContractError::Field { rule, .. } => ContractError::Field {
            field: field.into(),
            rule,
        },
        other => other,
    }
}
