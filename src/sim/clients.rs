//! What the simulated clients do: publish each event through their region, or the next one
//! when theirs is down; now and then twice; now and then they get no answer and publish again
//! later, through the next region.

use super::run::Sim;
use super::workload::Planned;
use crate::engine::EngineError;

/// Publishes remembered: when a region goes down, those that went through it may have lost
/// their answer.
const RECENT: usize = 4;

impl Sim {
    /// A client publishes `plan[i]`: on its region's bus, or, that region being down, on the
    /// next one's (the client fails over). Now and then twice (a retrying client, at least
    /// once delivery); now and then the client gets no answer and retries through the next
    /// region, whose front door stamps a message's `sent_at` anew.
    pub(super) fn publish(
        &mut self,
        plan: &[Planned],
        i: usize,
        published: &mut u32,
    ) -> Result<(), EngineError> {
        let planned = &plan[i];
        let origin = self.reachable(&planned.origin);
        let times = if self.rng.u32(0..100) < 10 { 2 } else { 1 };
        for _ in 0..times {
            self.engine.put_envelope(&origin, &planned.envelope)?;
        }
        let mut how = format!("x{times}");
        if origin != planned.origin {
            self.run.failed_over += 1;
            how = format!("{how} through {origin}, {} being down", planned.origin);
        }
        *published += times * self.copies(&origin, &planned.envelope);
        if self.rng.u32(0..100) < 8 {
            // The client got no answer: it tries again later, through the next region.
            self.retries.push((i, origin.clone()));
            how = format!("{how}, no answer");
        }
        self.recent.push((i, origin.clone()));
        if self.recent.len() > RECENT {
            self.recent.remove(0);
        }
        self.run.events += u64::from(times);
        self.note_during_outage(plan, i);
        self.trace(format!("publish {how} {}", planned.describe()));
        Ok(())
    }

    /// A client that got no answer publishes again, through the region after the one it used
    /// (or the next, that one being down); a front door would stamp a message's `sent_at` anew.
    pub(super) fn retry(
        &mut self,
        plan: &[Planned],
        published: &mut [u32],
    ) -> Result<(), EngineError> {
        let (i, used) = self.retries.remove(self.rng.usize(..self.retries.len()));
        let planned = &plan[i];
        let through = self.reachable(self.topology.standby(&used));
        let mut envelope = planned.envelope.clone();
        if planned.good.is_some() {
            super::outage::restamp(&mut envelope);
        }
        self.engine.put_envelope(&through, &envelope)?;
        self.run.failed_over += 1;
        self.run.events += 1;
        published[i] += self.copies(&through, &envelope);
        self.note_during_outage(plan, i);
        self.trace(format!(
            "publish again through {through} {}",
            planned.describe()
        ));
        Ok(())
    }
}
