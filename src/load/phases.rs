//! A run around an outage (`moebi load --outage`, which `make drill` gives): the latency of
//! the events due before, during and after it, and the run's accounting as JSON.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::report::{histogram, quantile_ms, record, Report};

/// A stretch of the run told apart from the rest (`moebi load --outage`): a region was down
/// from `start_ms` to `end_ms` (ms since the epoch).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// When it began.
    pub start_ms: f64,
    /// When it ended.
    pub end_ms: f64,
}

/// The phases of a run around a [`Window`], by when events were due.
pub const PHASES: [&str; 3] = ["before", "during", "after"];

impl Report {
    /// The latency of the events due before, during and after `window` ([`PHASES`]).
    pub fn phases(&self, window: &Window) -> [Histogram<u64>; 3] {
        let mut phases = [histogram(), histogram(), histogram()];
        for &(due, latency) in &self.latencies {
            let phase = if due < window.start_ms {
                0
            } else if due < window.end_ms {
                1
            } else {
                2
            };
            record(&mut phases[phase], latency);
        }
        phases
    }

    /// `window` in seconds since the start: where the plots mark it.
    pub fn seconds_of(&self, window: &Window) -> (f64, f64) {
        let at = |ms: f64| ((ms - self.start_ms) / 1000.0).max(0.0);
        (at(window.start_ms), at(window.end_ms))
    }

    /// The latency of each phase around `window`, as a table.
    pub fn render_phases(&self, window: &Window) -> String {
        let (from, to) = self.seconds_of(window);
        let mut out = format!(
            "\nlatency by when events were due, around the outage ({from:.1} s to {to:.1} s after the start; ms)\n{:<11} {:>7} {:>8} {:>8} {:>8} {:>8}\n",
            "", "count", "p50", "p90", "p99", "max"
        );
        for (name, h) in PHASES.iter().zip(self.phases(window)) {
            if h.is_empty() {
                let _ = writeln!(out, "{name:<11} {:>7}", 0);
                continue;
            }
            let q = |q| quantile_ms(&h, q);
            let _ = writeln!(
                out,
                "{name:<11} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                h.len(),
                q(0.5),
                q(0.9),
                q(0.99),
                h.max() as f64 / 1000.0
            );
        }
        out
    }

    /// The accounting and the phases' percentiles as JSON (`summary.json`), for a script.
    pub fn summary(&self, window: Option<&Window>) -> serde_json::Value {
        let phases: serde_json::Map<String, serde_json::Value> =
            window
                .map(|w| {
                    PHASES
                    .iter()
                    .zip(self.phases(w))
                    .map(|(name, h)| {
                        let q = |q| if h.is_empty() { 0.0 } else { quantile_ms(&h, q) };
                        let figures = serde_json::json!({
                            "count": h.len(), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)
                        });
                        ((*name).to_owned(), figures)
                    })
                    .collect()
                })
                .unwrap_or_default();
        serde_json::json!({
            "sent": self.sent,
            "once": self.once,
            "failed": self.failed.len(),
            "lost": self.lost.len(),
            "doubled": self.doubled.len(),
            "disagreements": self.disagreements,
            "p99_ms": if self.overall.is_empty() { 0.0 } else { quantile_ms(&self.overall, 0.99) },
            "start_ms": self.start_ms,
            // Per second of the run: the slowest event due in it (ms; 0 when none was timed).
            "max_ms_per_second": self.seconds.iter().map(|s| s.latency[3]).collect::<Vec<f64>>(),
            "phases": phases,
            "outage": window,
        })
    }
}
