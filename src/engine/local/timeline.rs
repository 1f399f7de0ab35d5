//! What the journal says of a whole run (`moebi load`): when each effect reached each region
//! (replication's steps, written as the replicator applies a page), and every step with its
//! event, read back in order.

use super::journal::{function_of, journaled, region_of, write, Entry};
use super::state::StateDb;
use crate::contract::Region;
use crate::engine::{EngineError, Step};

impl StateDb {
    /// Journals a page replication applied from `from` to `to`: each idempotency record among
    /// its items (`applied#<function>#<event id>`) is that event's effect, now visible in `to`.
    pub fn replicated(&self, from: &Region, to: &Region, keys: &[&str]) {
        let effects: Vec<(&str, &str)> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("applied#")?.split_once('#'))
            .collect();
        if effects.is_empty() {
            return;
        }
        self.atomically(|| {
            let conn = self.conn();
            for (function, id) in effects {
                let detail = format!("{function}'s effect, from {from}");
                write(
                    &conn,
                    &Entry {
                        event_id: Some(id),
                        ..Entry::new(to.as_str(), Step::Replicated, detail)
                    },
                );
            }
        });
    }

    /// Every step of the journal in order, each with its event (a handling step's through the
    /// message it handled): what `moebi load` reads a run back from.
    pub fn marks(&self) -> Result<Vec<crate::engine::Mark>, EngineError> {
        type Raw = (
            f64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let rows: Vec<Raw> = self
            .conn()
            .prepare(
                "SELECT j.at_ms, j.region, j.step, COALESCE(j.event_id, q.event_id), j.cause, j.function, j.detail
                 FROM journal j LEFT JOIN journal q
                   ON j.event_id IS NULL AND j.message_id IS NOT NULL
                      AND q.message_id = j.message_id AND q.step = 'queued'
                 ORDER BY j.seq",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
                    .collect()
            })
            .map_err(|e| EngineError::state("cannot read the journal", e))?;
        rows.into_iter()
            .map(|(at_ms, region, step, event_id, cause, function, detail)| {
                Ok(crate::engine::Mark {
                    at_ms,
                    region: region_of(&region)?,
                    step: journaled(&step)?,
                    event_id,
                    cause,
                    function: function.as_deref().map(function_of).transpose()?,
                    detail,
                })
            })
            .collect()
    }
}
