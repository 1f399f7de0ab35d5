//! Live delivery: what lands in an inbox is pushed, as it lands, to the recipient's open
//! WebSockets in every region.
//!
//! - Each region has a WebSocket API. Its `$connect` goes through a Lambda REQUEST authorizer
//!   ([`socket::authorize`]) that verifies the Cognito token itself ([`token::Verifier`]), and
//!   the connection is then recorded, connection id → participant, in the region's connections
//!   table with a TTL of API Gateway's 2-hour limit ([`socket::route`]).
//! - The `push` function reads the region's inbox stream. A global table's stream carries the
//!   entries written in the region and those replicated from the others, so a participant
//!   connected to any region gets their messages. Each new entry is sent to its recipient's
//!   connections with `PostToConnection` ([`push::push`]); a connection that is gone (410) is
//!   deleted, and a record whose post failed otherwise fails alone (partial batch failures).
//! - A push may repeat (a retried batch). The inbox stays the truth: a client drops what it has
//!   shown by message id, and after any reconnect reads its inbox after the last message it
//!   showed (`GET /inbox?after=`).

pub mod push;
pub mod socket;
pub mod token;

use async_trait::async_trait;

use crate::contract::Participant;
use crate::ports::Cause;

/// How long a connection is kept: API Gateway cuts every WebSocket connection after 2 hours.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 60 * 60;

/// A failure of the connections table or of the management API.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct LiveError {
    /// What was being done, e.g. `Query (connections of kate)`.
    pub operation: String,
    /// Why.
    #[source]
    pub source: Cause,
}

impl LiveError {
    /// `operation` failed because of `source`.
    pub fn new(operation: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self {
            operation: operation.into(),
            source: source.into(),
        }
    }
}

/// The region's connections table: who is connected, by which connection ids.
#[async_trait]
pub trait Connections: Send + Sync {
    /// `who` opened `connection` at `now` (epoch seconds); kept until its TTL.
    async fn open(&self, who: &Participant, connection: &str, now: i64) -> Result<(), LiveError>;
    /// `connection` of `who` is closed or gone.
    async fn close(&self, who: &Participant, connection: &str) -> Result<(), LiveError>;
    /// The connections of `who` open at `now` (expired ones are left out: TTL deletes late).
    async fn of(&self, who: &Participant, now: i64) -> Result<Vec<String>, LiveError>;
}

/// Why a post to a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The connection is closed or unknown (410 GoneException): delete it.
    #[error("the connection is gone")]
    Gone,
    /// Anything else (a throttle, the management API unreachable): the record is tried again.
    #[error(transparent)]
    Failed(LiveError),
}

/// The WebSocket API's management API (`@connections`) of one region.
#[async_trait]
pub trait Sockets: Send + Sync {
    /// Sends `data` (one text frame) to `connection`.
    async fn post(&self, connection: &str, data: &[u8]) -> Result<(), PostError>;
}
