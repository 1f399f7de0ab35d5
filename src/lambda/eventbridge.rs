//! A region's bus on EventBridge.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::contract::{Event, Region};
use crate::ports::{Bus, PortError};
use crate::sdk::SdkFailure;

/// Most entries EventBridge takes in one `PutEvents`.
const PUT_EVENTS_MAX: usize = 10;
/// Attempts at the entries of one `PutEvents` call that EventBridge rejects one by one.
const PUT_EVENTS_ATTEMPTS: u32 = 4;
/// The first pause before resending rejected entries; it doubles each time.
const PUT_EVENTS_BACKOFF: Duration = Duration::from_millis(100);

/// Entries EventBridge kept rejecting, one by one, within an accepted `PutEvents`.
#[derive(Debug, thiserror::Error)]
#[error("{events} event(s) rejected {attempts} times: {}", codes.join(", "))]
pub struct Rejected {
    /// How many.
    pub events: usize,
    /// How often each was sent.
    pub attempts: u32,
    /// EventBridge's error codes for them.
    pub codes: Vec<String>,
}

/// One region's `moebi` bus, through an EventBridge client built once.
#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    region: Region,
    bus: String,
    events: aws_sdk_eventbridge::Client,
}

impl EventBridgeBus {
    /// The bus `bus` of `region`, through `events` (which signs for that region).
    pub fn new(
        region: Region,
        bus: impl Into<String>,
        events: aws_sdk_eventbridge::Client,
    ) -> Self {
        Self {
            region,
            bus: bus.into(),
            events,
        }
    }

    /// The EventBridge client.
    pub fn client(&self) -> &aws_sdk_eventbridge::Client {
        &self.events
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PortError> {
        for chunk in events.chunks(PUT_EVENTS_MAX) {
            let entries = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .source(crate::contract::SOURCE)
                        .detail_type(event.kind().detail_type())
                        .detail(event.detail().to_string())
                        .event_bus_name(&self.bus)
                        .build()
                })
                .collect();
            self.put_until_taken(entries).await?;
        }
        Ok(())
    }
}

impl EventBridgeBus {
    /// Puts entries, sending again those EventBridge rejects one by one, with a backoff.
    async fn put_until_taken(
        &self,
        mut pending: Vec<PutEventsRequestEntry>,
    ) -> Result<(), PortError> {
        for attempt in 1.. {
            let (rejected, mut codes) = self.put(pending).await?;
            if rejected.is_empty() {
                return Ok(());
            }
            if attempt >= PUT_EVENTS_ATTEMPTS {
                codes.sort();
                codes.dedup();
                return Err(PortError::Bus {
                    operation: format!("PutEvents on {} in {}", self.bus, self.region),
                    retryable: true,
                    source: Box::new(Rejected {
                        events: rejected.len(),
                        attempts: attempt,
                        codes,
                    }),
                });
            }
            tracing::warn!(
                rejected = rejected.len(),
                codes = %codes.join(", "),
                attempt,
                "PutEvents rejected entries; sending them again"
            );
            tokio::time::sleep(PUT_EVENTS_BACKOFF * 2u32.pow(attempt - 1)).await;
            pending = rejected;
        }
        unreachable!("the attempts are bounded")
    }

    /// One `PutEvents`; answers the entries it rejected, with their error codes.
    async fn put(
        &self,
        entries: Vec<PutEventsRequestEntry>,
    ) -> Result<(Vec<PutEventsRequestEntry>, Vec<String>), PortError> {
        let out = self
            .events
            .put_events()
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| {
                let e = SdkFailure::from(e);
                PortError::Bus {
                    operation: format!("PutEvents on {}", self.bus),
                    retryable: e.retryable,
                    source: Box::new(e),
                }
            })?;
        if out.failed_entry_count() == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        // Results come in the order of the entries; an entry with an error code was not put.
        // Without results to match, every entry is sent again (at least once).
        let results = out.entries();
        if results.len() != entries.len() {
            let n = entries.len();
            return Ok((entries, vec!["(no per-entry result)".to_owned(); n]));
        }
        Ok(entries
            .into_iter()
            .zip(results)
            .filter_map(|(entry, r)| r.error_code().map(|c| (entry, c.to_owned())))
            .unzip())
    }
}
