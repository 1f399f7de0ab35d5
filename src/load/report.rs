//! A run's figures: latency histograms (HdrHistogram, in microseconds) overall, per kind and
//! per hop; the run second by second; the accounting of sent against applied once.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;

use super::measure::Outcome;
use super::plan::Kind;

/// A latency histogram in microseconds, 3 significant figures, up to an hour.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("the bounds are valid")
}

pub(crate) fn record(h: &mut Histogram<u64>, ms: f64) {
    // Clamped into the histogram's range: a negative gap is a clock step, counted as 1 µs.
    let us = (ms * 1000.0).round().clamp(1.0, 3_600_000_000.0) as u64;
    h.saturating_record(us);
}

/// The `q` quantile of `h`, in ms.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// One second of the run, by the events due in it.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Events due in it.
    pub offered: u64,
    /// Events sent in it.
    pub sent: u64,
    /// Effects that became visible in it.
    pub completed: u64,
    /// Latency percentiles of the events due in it (ms): p50, p90, p99, max.
    pub latency: [f64; 4],
}

/// What a run did, as figures.
pub struct Report {
    /// Events per second offered.
    pub offered_rate: f64,
    /// Events per second sent, over the sending.
    pub achieved_rate: f64,
    /// Effects per second that became visible, from the first due to the last visible.
    pub completed_rate: f64,
    /// Events sent.
    pub sent: u64,
    /// Events whose effect was applied once.
    pub once: u64,
    /// Events that failed, with why.
    pub failed: Vec<(usize, String)>,
    /// Events with no effect and no failure.
    pub lost: Vec<usize>,
    /// Events applied more than once.
    pub doubled: Vec<usize>,
    /// Every event's latency.
    pub overall: Histogram<u64>,
    /// Latency per kind.
    pub kinds: BTreeMap<Kind, Histogram<u64>>,
    /// The hops' names, in order.
    pub hop_names: &'static [&'static str],
    /// What the hops are.
    pub hop_help: &'static str,
    /// Each hop's time, in `hop_names`' order.
    pub hops: Vec<Histogram<u64>>,
    /// The run second by second.
    pub seconds: Vec<Second>,
    /// What the state says against the journal (empty when it agrees).
    pub disagreements: Vec<String>,
    /// When the run started (ms since the epoch).
    pub start_ms: f64,
    /// Each event with an effect: when it was due (ms since the epoch), and its latency (ms).
    pub latencies: Vec<(f64, f64)>,
}

impl Report {
    /// The figures of `outcomes`, a run offered at `offered_rate` that started at `start_ms`,
    /// whose events took the hops `hops` (names, then what they are).
    pub fn new(
        offered_rate: f64,
        start_ms: f64,
        outcomes: &[Outcome],
        (hop_names, hop_help): (&'static [&'static str], &'static str),
    ) -> Self {
        let mut r = Report {
            offered_rate,
            achieved_rate: 0.0,
            completed_rate: 0.0,
            sent: outcomes.len() as u64,
            once: 0,
            failed: Vec::new(),
            lost: Vec::new(),
            doubled: Vec::new(),
            overall: histogram(),
            kinds: BTreeMap::new(),
            hop_names,
            hop_help,
            hops: hop_names.iter().map(|_| histogram()).collect(),
            seconds: Vec::new(),
            disagreements: Vec::new(),
            start_ms,
            latencies: Vec::new(),
        };
        let mut per_second: Vec<(Second, Histogram<u64>)> = Vec::new();
        let slot = |ms: f64, per_second: &mut Vec<(Second, Histogram<u64>)>| {
            let i = ((ms - start_ms) / 1000.0).max(0.0) as usize;
            if per_second.len() <= i {
                per_second.resize_with(i + 1, || (Second::default(), histogram()));
            }
            i
        };
        for o in outcomes {
            let due = slot(o.due_ms, &mut per_second);
            per_second[due].0.offered += 1;
            let sent = slot(o.sent_ms, &mut per_second);
            per_second[sent].0.sent += 1;
            match (&o.failure, o.applied) {
                (_, n) if n > 1 => r.doubled.push(o.index),
                (Some(why), _) => r.failed.push((o.index, why.clone())),
                (None, 0) => r.lost.push(o.index),
                _ => r.once += 1,
            }
            if let (Some(latency), Some(visible)) = (o.latency_ms(), o.visible_ms) {
                record(&mut r.overall, latency);
                record(r.kinds.entry(o.kind).or_insert_with(histogram), latency);
                record(&mut per_second[due].1, latency);
                r.latencies.push((o.due_ms, latency));
                let done = slot(visible, &mut per_second);
                per_second[done].0.completed += 1;
            }
            for (h, hop) in r.hops.iter_mut().zip(o.hops.iter().copied()) {
                if let Some(ms) = hop {
                    record(h, ms);
                }
            }
        }
        r.seconds = per_second
            .into_iter()
            .map(|(mut s, h)| {
                if !h.is_empty() {
                    s.latency = [0.5, 0.9, 0.99, 1.0].map(|q| quantile_ms(&h, q));
                }
                s
            })
            .collect();
        let span = |from: f64, to: f64| ((to - from) / 1000.0).max(1e-3);
        let sent_times = outcomes.iter().map(|o| o.sent_ms);
        if let (Some(first), Some(last)) = (
            sent_times.clone().reduce(f64::min),
            sent_times.reduce(f64::max),
        ) {
            // n events sent over the span from the first to the last send: n - 1 intervals.
            r.achieved_rate = (r.sent.saturating_sub(1)) as f64 / span(first, last);
        }
        if let Some(last) = outcomes
            .iter()
            .filter_map(|o| o.visible_ms)
            .reduce(f64::max)
        {
            r.completed_rate = r.overall.len() as f64 / span(start_ms, last);
        }
        r
    }

    /// Whether every event was applied once or failed with a reason, and the state agrees.
    pub fn balanced(&self) -> bool {
        self.lost.is_empty() && self.doubled.is_empty() && self.disagreements.is_empty()
    }

    /// The report as text: the accounting, then the latency tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "offered {:.1}/s, sent {:.1}/s, effects {:.1}/s",
            self.offered_rate, self.achieved_rate, self.completed_rate
        );
        let _ = writeln!(
            out,
            "sent {}: applied once {}, failed {}, lost {}, doubled {}",
            self.sent,
            self.once,
            self.failed.len(),
            self.lost.len(),
            self.doubled.len()
        );
        for (i, why) in self.failed.iter().take(5) {
            let _ = writeln!(out, "  event {i} failed: {why}");
        }
        for d in &self.disagreements {
            let _ = writeln!(out, "  the state disagrees: {d}");
        }
        let _ = writeln!(
            out,
            "\nlatency from the instant each event was due to its effect, where its user looks (ms)"
        );
        let header = format!(
            "{:<11} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        let _ = writeln!(out, "{header}");
        let row = |out: &mut String, name: &str, h: &Histogram<u64>| {
            if h.is_empty() {
                return;
            }
            let q = |q| quantile_ms(h, q);
            let _ = writeln!(
                out,
                "{name:<11} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                h.len(),
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999),
                h.max() as f64 / 1000.0
            );
        };
        row(&mut out, "all", &self.overall);
        for (kind, h) in &self.kinds {
            row(&mut out, kind.name(), h);
        }
        let _ = writeln!(out, "\nper hop (ms): {}", self.hop_help);
        let _ = writeln!(out, "{header}");
        for (name, h) in self.hop_names.iter().zip(&self.hops) {
            row(&mut out, name, h);
        }
        out
    }
}

/// One rate of a sweep.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct SweepPoint {
    /// Events per second offered.
    pub offered: f64,
    /// Events per second sent.
    pub sent: f64,
    /// Effects per second.
    pub completed: f64,
    /// Median latency (ms).
    pub p50: f64,
    /// 99th percentile latency (ms).
    pub p99: f64,
}

impl SweepPoint {
    /// The point of a run's report.
    pub fn of(r: &Report) -> Self {
        SweepPoint {
            offered: r.offered_rate,
            sent: r.achieved_rate,
            completed: r.completed_rate,
            p50: quantile_ms(&r.overall, 0.5),
            p99: quantile_ms(&r.overall, 0.99),
        }
    }

    /// Whether the system kept up at this rate: its effects came at 95% of the offered rate
    /// or more, with a p99 within `ceiling` ms.
    fn kept_up(&self, ceiling: f64) -> bool {
        self.completed >= 0.95 * self.offered && self.p99 <= ceiling
    }
}

/// The knee of a sweep (points by offered rate): the last rate that kept up and the first that
/// did not. Keeping up: effects at 95% of the offered rate or more, with a p99 under 4 times
/// the lightest load's (and at least 10 ms more than it). `None` when every rate kept up.
pub fn knee(points: &[SweepPoint]) -> Option<(Option<f64>, f64)> {
    let first = points.first()?;
    let ceiling = (first.p99 * 4.0).max(first.p99 + 10.0);
    let bad = points.iter().position(|p| !p.kept_up(ceiling))?;
    Some((
        bad.checked_sub(1).map(|i| points[i].offered),
        points[bad].offered,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(offered: f64, completed: f64, p99: f64) -> SweepPoint {
        SweepPoint {
            offered,
            sent: offered,
            completed,
            p50: p99 / 2.0,
            p99,
        }
    }

    #[test]
    fn the_knee_is_where_the_effects_fall_behind_or_the_tail_grows() {
        let behind = [
            point(100.0, 100.0, 5.0),
            point(200.0, 199.0, 6.0),
            point(400.0, 300.0, 9.0),
        ];
        assert_eq!(knee(&behind), Some((Some(200.0), 400.0)));
        let tail = [point(100.0, 100.0, 5.0), point(200.0, 200.0, 80.0)];
        assert_eq!(knee(&tail), Some((Some(100.0), 200.0)));
        assert_eq!(knee(&[point(100.0, 100.0, 5.0)]), None);
    }

    #[test]
    fn a_doubled_or_lost_event_unbalances_the_run() {
        let outcome = |index, applied| super::super::measure::Outcome {
            index,
            kind: Kind::Chat,
            due_ms: 0.0,
            sent_ms: 1.0,
            visible_ms: (applied > 0).then_some(5.0),
            applied,
            failure: None,
            hops: Vec::new(),
        };
        let hops = (&super::super::measure::HOPS[..], "");
        let r = Report::new(10.0, 0.0, &[outcome(0, 1), outcome(1, 1)], hops);
        assert!(r.balanced());
        assert_eq!((r.once, r.overall.len()), (2, 2));
        let r = Report::new(10.0, 0.0, &[outcome(0, 2), outcome(1, 0)], hops);
        assert!(!r.balanced());
        assert_eq!((r.doubled.clone(), r.lost.clone()), (vec![0], vec![1]));
    }
}
