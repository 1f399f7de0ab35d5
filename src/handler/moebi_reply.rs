//! moebi-reply: a bot records every message it gets and answers the sender with its fixed text.

use chrono::Utc;

use super::{here, known, HandlerError};
use crate::contract::{ChatSend, ContractError, Event};
use crate::ports::{Bus, EffectKey, InboxEntry, Inboxes, Outcome, Site};
use crate::topology::Function;

/// Records `msg` in the bot's inbox and publishes the bot's answer to the sender.
///
/// The answer's id is derived from `msg.id`, so publishing it again on a retry (at least once)
/// still lands it once: chat-send applies each id once. Bots never answer bots, so two bots
/// cannot talk forever.
pub async fn answer(
    site: Site<'_>,
    inboxes: &dyn Inboxes,
    bus: &dyn Bus,
    msg: &ChatSend,
) -> Result<Outcome, HandlerError> {
    known(site.topology, "detail.from", &msg.from)?;
    let bot = site
        .topology
        .bot(&msg.to)
        .ok_or_else(|| ContractError::Unknown {
            field: "detail.to".into(),
            what: "bot",
            name: msg.to.to_string(),
        })?;
    here(site, "detail.to", bot.name.as_str(), &bot.home)?;
    let key = EffectKey::new(Function::MoebiReply, &msg.id, msg)?;
    let outcome = inboxes
        .deliver(&key, &bot.name, &InboxEntry::from_chat(msg))
        .await?;
    if site.topology.bot(&msg.from).is_none() {
        let reply = ChatSend {
            id: msg.id.derived("reply"),
            from: bot.name.clone(),
            to: msg.from.clone(),
            text: bot.answer.clone(),
            sent_at: Utc::now(),
            in_reply_to: Some(msg.id.clone()),
        };
        let reply_id = reply.id.clone();
        bus.publish(&[Event::ChatSend(reply)]).await?;
        // The answer's id, so the logs lead from the message to its answer.
        tracing::info!(reply = %reply_id, "answered");
    }
    Ok(outcome)
}
