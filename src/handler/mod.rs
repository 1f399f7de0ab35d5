//! The handlers, one file per function. Each takes only the ports it uses (and its [`Site`]);
//! [`handle`] hands each the right ones from a region's [`Ports`].

pub mod chat_send;
pub mod moebi_reply;
pub mod stock_add;
pub mod stock_status;

use crate::contract::{ContractError, Event, Kind, Participant, Region};
use crate::ports::{Outcome, PortError, Ports, Site};
use crate::topology::{Function, Topology};

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is invalid: retrying cannot help.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The event was given to a function that does not handle its kind.
    #[error("function {function} does not handle {kind}")]
    WrongKind {
        /// The function.
        function: Function,
        /// The kind it was given.
        kind: Kind,
    },
    /// The event is routed to a region that neither is its home nor stands by for it: a
    /// wiring error.
    #[error("field `{field}`: {name} lives in {home}, which {here} does not stand by for")]
    WrongRegion {
        /// The field naming whom the event is for.
        field: &'static str,
        /// Whom it is for.
        name: String,
        /// Their home region.
        home: Region,
        /// The region the handler runs in.
        here: Region,
    },
    /// The infrastructure failed: retrying may help.
    #[error(transparent)]
    Port(#[from] PortError),
    /// Handling the event panicked: a bug, which fails this record alone.
    #[error("the handler panicked: {0}")]
    Panicked(String),
}

impl HandlerError {
    /// Whether the error is in the event itself (or in what the store holds), so no retry
    /// can succeed.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, HandlerError::Port(e) if e.is_retryable())
    }

    /// The error type Lambda reports (its `Diagnostic`), which says whether a retry may help:
    /// `Retryable.<what>` or `Permanent.<what>`, so logs, metrics and alarms can tell.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Contract(_) => "Permanent.InvalidEvent",
            HandlerError::WrongKind { .. } => "Permanent.WrongFunction",
            HandlerError::WrongRegion { .. } => "Permanent.WrongRegion",
            HandlerError::Panicked(_) => "Permanent.Panic",
            HandlerError::Port(e) => match e {
                PortError::Overflow { .. } => "Permanent.Overflow",
                PortError::Reused { .. } => "Permanent.IdReused",
                PortError::Corrupt { .. } => "Permanent.CorruptState",
                PortError::Storage {
                    retryable: true, ..
                } => "Retryable.Storage",
                PortError::Storage { .. } => "Permanent.Storage",
                PortError::Bus {
                    retryable: true, ..
                } => "Retryable.Bus",
                PortError::Bus { .. } => "Permanent.Bus",
            },
        }
    }
}

/// Runs `function` on one event.
#[tracing::instrument(name = "handle", skip_all, fields(function = %function, event_id = %event.id(), kind = %event.kind()))]
pub async fn handle(
    function: Function,
    ports: &Ports<'_>,
    event: &Event,
) -> Result<Outcome, HandlerError> {
    let site = ports.site();
    let outcome = match (function, event) {
        (Function::ChatSend, Event::ChatSend(msg)) => {
            chat_send::deliver(site, ports.inboxes, msg).await
        }
        (Function::MoebiReply, Event::ChatSend(msg)) => {
            moebi_reply::answer(site, ports.inboxes, ports.bus, msg).await
        }
        (Function::StockAdd, Event::StockAdd(add)) => stock_add::add(site, ports.stock, add).await,
        (Function::StockStatus, Event::StockStatus(ask)) => {
            stock_status::answer(site, ports.stock, ports.inboxes, ask).await
        }
        (function, event) => Err(HandlerError::WrongKind {
            function,
            kind: event.kind(),
        }),
    };
    match &outcome {
        Ok(o) => tracing::info!(outcome = ?o, "handled"),
        Err(e) => {
            tracing::warn!(error = %crate::report(e), error_type = e.error_type(), "rejected")
        }
    }
    outcome
}

/// Checks that `who` (in `field`) is a participant or bot of the topology.
pub(crate) fn known(
    topology: &Topology,
    field: &str,
    who: &Participant,
) -> Result<(), ContractError> {
    topology.home(field, who).map(|_| ())
}

/// The home of participant `who` (in `field`); a bot is named as a bot, with `bot_rule`.
pub(crate) fn participant_home<'t>(
    topology: &'t Topology,
    field: &str,
    who: &Participant,
    bot_rule: &str,
) -> Result<&'t Region, ContractError> {
    if topology.bot(who).is_some() {
        return Err(ContractError::field(field, format!("{who} is {bot_rule}")));
    }
    topology.participant_home(field, who)
}

/// Checks that the handler's region serves `home`: it is `home`, or stands by for it
/// ([`Topology::serves`]). Effects are keyed by event ids, so an event applied in both is
/// applied once (see [`crate::store`]).
pub(crate) fn here(
    site: Site<'_>,
    field: &'static str,
    name: &str,
    home: &Region,
) -> Result<(), HandlerError> {
    if site.topology.serves(site.region, home) {
        Ok(())
    } else {
        Err(HandlerError::WrongRegion {
            field,
            name: name.to_owned(),
            home: home.clone(),
            here: site.region.clone(),
        })
    }
}
