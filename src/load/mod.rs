//! `moebi load`: an open-model load generator, and the end-to-end latency it measures.
//!
//! - [`plan`]: the schedule. Event `i` is due `i / rate` s after the start whatever the system
//!   does (k6's `constant-arrival-rate`), and its latency counts from that instant, not from
//!   when it could be sent: a stall shows in full (no coordinated omission).
//! - [`local`]: the embedded engine, driven while the schedule is published.
//! - [`measure`]: each event's effect, where its user looks (the recipient's inbox, the
//!   sender's for a bot's answer, the asker's for a question, every region's stock for an
//!   add), and the time of each hop, read back from what the engine wrote down during the run.
//! - [`report`]: HdrHistogram percentiles overall, per kind and per hop; the run second by
//!   second; sent = applied once + failed, lost 0, doubled 0.
//! - [`plot`]: the plots (SVG and PNG).

pub mod api;
pub mod bus;
pub mod local;
pub mod measure;
pub mod phases;
pub mod plan;
pub mod plot;
pub mod report;
mod stock;

use std::path::Path;

use crate::engine::local::LocalEngine;
use crate::engine::EngineError;
use crate::topology::Topology;

pub use plan::{Kind, Mix, Plan};
pub use report::Report;

/// Why a load run could not be made or measured.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The request makes no schedule.
    #[error("{0}")]
    Plan(String),
    /// The engine failed (not an event: the engine itself).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A plot could not be drawn or written.
    #[error("plot {path}: {why}")]
    Plot {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

/// Where a run is, once a second.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Since the start of the schedule.
    pub elapsed: std::time::Duration,
    /// Events sent.
    pub sent: u64,
    /// What has been done so far: records handled or replicated (embedded engine), requests
    /// answered (the API).
    pub done: u64,
    /// What `done` counts.
    pub done_what: &'static str,
}

/// Runs `plan` on a fresh embedded engine under `dir` and measures it.
pub async fn on_embedded(
    plan: &Plan,
    topology: &Topology,
    dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, LoadError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| EngineError::state(format!("cannot clear {}", dir.display()), e))?;
    }
    let schedule = plan.schedule(topology)?;
    let engine = LocalEngine::exclusive(dir, topology.clone()).await?;
    let (outcomes, start_ms) = local::run(&engine, &schedule, progress).await?;
    let hops = (&measure::HOPS[..], measure::HOPS_HELP);
    let mut report = Report::new(plan.rate, start_ms, &outcomes, hops);
    report.disagreements = local::check_state(&engine, &schedule, &outcomes).await?;
    Ok(report)
}

/// Where a run's events went, for one read back from the stamps: through the HTTP APIs as the
/// users signed in under a sessions directory, or on the AWS engine against an emulator
/// (`moebi --engine aws --endpoint-url`: each event on its sender's home bus, the engine's
/// event source mappings pumped meanwhile).
pub enum Sender<'a> {
    /// The HTTP APIs.
    Api(&'a Path),
    /// The buses, through the AWS engine.
    Bus(&'a crate::engine::aws::AwsEngine),
}

/// Runs `plan` through `sender` and measures it from the stamps in each region's table
/// (`stamps`), waiting up to `settle` for them.
pub async fn from_stamps(
    plan: &Plan,
    topology: &Topology,
    sender: Sender<'_>,
    (stamps, settle): (&api::Stamps, std::time::Duration),
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, LoadError> {
    let schedule = plan.schedule(topology)?;
    let (front, (sent, answered, start_ms)) = match sender {
        Sender::Api(sessions) => (true, api::send(sessions, &schedule, progress).await?),
        Sender::Bus(engine) => (false, bus::run(engine, &schedule, progress).await?),
    };
    let outcomes = stamps
        .outcomes(topology, (&schedule, &sent, &answered), front, settle)
        .await?;
    let hops = if front {
        (&api::HOPS[..], api::HOPS_HELP)
    } else {
        (&api::BUS_HOPS[..], api::BUS_HOPS_HELP)
    };
    let mut report = Report::new(plan.rate, start_ms, &outcomes, hops);
    report.disagreements = stamps.check_stock(&schedule, &outcomes, settle).await?;
    Ok(report)
}

/// Now, in milliseconds since the epoch (to the microsecond): the clock the engine's journal
/// and the stamps are written in.
pub(crate) fn wall_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}
