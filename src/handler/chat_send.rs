//! chat-send: a message lands in its recipient's inbox, once.

use super::{here, known, HandlerError};
use crate::contract::ChatSend;
use crate::ports::{EffectKey, InboxEntry, Inboxes, Outcome, Site};
use crate::topology::Function;

/// Delivers `msg` into the inbox of its recipient, who must live in this region.
pub async fn deliver(
    site: Site<'_>,
    inboxes: &dyn Inboxes,
    msg: &ChatSend,
) -> Result<Outcome, HandlerError> {
    known(site.topology, "detail.from", &msg.from)?;
    let home = super::participant_home(
        site.topology,
        "detail.to",
        &msg.to,
        "a bot: moebi-reply answers it, chat-send delivers only to participants",
    )?;
    here(site, "detail.to", msg.to.as_str(), home)?;
    let key = EffectKey::new(Function::ChatSend, &msg.id, msg)?;
    Ok(inboxes
        .deliver(&key, &msg.to, &InboxEntry::from_chat(msg))
        .await?)
}
