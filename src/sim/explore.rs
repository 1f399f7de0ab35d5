//! Many seeds at once: each on its own thread's runtime, in its own state directory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::{run_seed, Design, SeedRun, Summary};
use crate::engine::local::MemoryState;
use crate::engine::EngineError;
use crate::topology::Topology;

/// Which seeds to run, and how.
#[derive(Debug, Clone, Copy)]
pub struct Seeds {
    /// The first seed.
    pub first: u64,
    /// How many, from the first.
    pub count: u64,
    /// The design they run over.
    pub design: Design,
    /// Seeds run at once (one thread each).
    pub jobs: usize,
}

/// What a run of many seeds found.
#[derive(Debug, Default)]
pub struct Found {
    /// Every finished seed, summed.
    pub summary: Summary,
    /// The lowest seed that stopped the run, if one did.
    pub stopped_at: Option<SeedRun>,
}

/// Runs `seeds` until one answers true to `stop` (then every seed below it still finishes, so
/// the seed reported is the lowest that stops, whatever the threads' timing).
pub fn explore(
    topology: &Topology,
    seeds: Seeds,
    stop: &(dyn Fn(&SeedRun) -> bool + Sync),
) -> Result<Found, EngineError> {
    // Made on a thread of its own: the caller may be inside a runtime.
    let template = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| EngineError::state("cannot start a runtime", e))?
                    .block_on(Template::new())
            })
            .join()
            .unwrap_or_else(|_| Err(EngineError::Runaway("making the template panicked".into())))
    })?;
    let next = AtomicU64::new(0);
    let stopping = AtomicBool::new(false);
    let found = Mutex::new(Found::default());
    let failure: Mutex<Option<(u64, EngineError)>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..seeds.jobs.max(1) {
            scope.spawn(|| {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let e = EngineError::state("cannot start a runtime", e);
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some((0, e));
                        stopping.store(true, Ordering::SeqCst);
                        return;
                    }
                };
                while !stopping.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= seeds.count {
                        break;
                    }
                    let seed = seeds.first.wrapping_add(i);
                    match runtime.block_on(run_seed(seed, seeds.design, template.path(), topology))
                    {
                        Ok(run) => {
                            let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
                            found.summary.add(&run);
                            if stop(&run) {
                                stopping.store(true, Ordering::SeqCst);
                                if found.stopped_at.as_ref().is_none_or(|s| s.seed > run.seed) {
                                    found.stopped_at = Some(run);
                                }
                            }
                        }
                        Err(e) => {
                            let mut failure = failure.lock().unwrap_or_else(|p| p.into_inner());
                            if failure.as_ref().is_none_or(|(s, _)| *s > seed) {
                                *failure = Some((seed, e));
                            }
                            stopping.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    if let Some((seed, e)) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(EngineError::state(format!("seed {seed} could not run"), e));
    }
    Ok(found.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// A directory holding the region database every seed's state copies, removed when dropped.
pub struct Template {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Template {
    /// Makes it.
    pub async fn new() -> Result<Self, EngineError> {
        let dir = tempfile::Builder::new()
            .prefix("moebi-sim-")
            .tempdir()
            .map_err(|e| EngineError::state("cannot create a directory for the template", e))?;
        let path = MemoryState::template(dir.path()).await?;
        Ok(Self { dir, path })
    }

    /// Its database.
    pub fn path(&self) -> &std::path::Path {
        let _ = &self.dir;
        &self.path
    }
}

/// One seed, on a fresh state in memory.
pub async fn one(seed: u64, design: Design, topology: &Topology) -> Result<SeedRun, EngineError> {
    let template = Template::new().await?;
    run_seed(seed, design, template.path(), topology).await
}
