//! A load run on the AWS engine against an emulator (`moebi --engine aws load`): each event
//! published on its sender's home bus when due (the publishes in flight together, so a slow
//! `PutEvents` delays none but its own), while the engine's event source mappings are pumped
//! as Lambda's would poll. The effects are then read from the stamps ([`super::api::Stamps`]).

use std::cell::Cell;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use crate::engine::aws::AwsEngine;
use crate::engine::{Engine, EngineError};

use super::measure::Sent;
use super::plan::Planned;
use super::{wall_ms, LoadError, Progress};

/// Plays `schedule` on `engine`; answers what was sent, when each `PutEvents` was answered,
/// and the instant (ms) the schedule started at.
pub async fn run(
    engine: &AwsEngine,
    schedule: &[Planned],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<Sent>, Vec<Option<f64>>, f64), LoadError> {
    let start = Instant::now() + Duration::from_millis(20);
    let start_ms = wall_ms() + 20.0;
    let done = Cell::new(false);
    let published_count = Cell::new(0u64);
    let publisher = async {
        let mut sent: Vec<Option<(Sent, Option<f64>)>> = vec![None; schedule.len()];
        let mut inflight = FuturesUnordered::new();
        let mut record = |(index, s, at): (usize, Sent, Option<f64>)| {
            sent[index] = Some((s, at));
            published_count.set(published_count.get() + 1);
        };
        for p in schedule {
            let due = start + p.due;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    Some(one) = inflight.next(), if !inflight.is_empty() => record(one),
                }
            }
            let due_ms = start_ms + p.due.as_secs_f64() * 1000.0;
            inflight.push(async move {
                let sent_ms = wall_ms();
                let result = engine
                    .publish(&p.region, std::slice::from_ref(&p.event))
                    .await;
                let refused = result.err().map(|e| crate::report(&e));
                let published = refused.is_none().then(wall_ms);
                (
                    p.index,
                    Sent {
                        due_ms,
                        sent_ms,
                        refused,
                    },
                    published,
                )
            });
        }
        while let Some(one) = inflight.next().await {
            record(one);
        }
        done.set(true);
        sent.into_iter()
            .map(|s| s.expect("every publish answered"))
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    let worker = async {
        let mut handled = 0u64;
        let mut last_report = Instant::now();
        loop {
            let pass = engine.pump_once().await?;
            handled += pass.handled + pass.failed;
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(Progress {
                    elapsed: start.elapsed(),
                    sent: published_count.get(),
                    done: handled,
                    done_what: "records handled",
                });
            }
            if !pass.progressed() {
                if done.get() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // What waits for a retry (a visibility timeout) is delivered now.
        engine.run_until_idle().await?;
        Ok::<_, EngineError>(())
    };
    let ((sent, published), worked) = futures_util::future::join(publisher, worker).await;
    worked?;
    Ok((sent, published, start_ms))
}
