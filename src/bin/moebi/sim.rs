//! `moebi sim`: runs seeds and says what they found, in a few lines.

use moebi::sim::{explore, Design, SeedRun, Seeds, Summary};
use moebi::topology::Topology;

/// Trace lines shown for a failed seed (the end of its schedule).
const TRACE_TAIL: usize = 40;

/// What `moebi sim` is asked.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Request {
    /// How many seeds.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// Run exactly this seed and print its schedule.
    #[arg(long, conflicts_with_all = ["seeds", "first"])]
    pub seed: Option<u64>,
    /// The first seed (default: one from the clock, printed).
    #[arg(long)]
    pub first: Option<u64>,
    /// Run a rejected design (one stock item for every region) until it loses updates.
    #[arg(long, conflicts_with = "shares")]
    pub naive: bool,
    /// Run the design before failover (one stock share per region) until an add applied in
    /// two regions is doubled.
    #[arg(long)]
    pub shares: bool,
    /// Seeds run at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

/// Runs the request and prints what it found; the error is the failure to report.
pub fn command(topology: &Topology, req: Request) -> Result<(), String> {
    let design = match (req.naive, req.shares) {
        (true, _) => Design::Naive,
        (_, true) => Design::Shares,
        _ => Design::Ledger,
    };
    let (first, count) = match req.seed {
        Some(seed) => (seed, 1),
        None => (req.first.unwrap_or_else(random_seed), req.seeds),
    };
    let seeds = Seeds {
        first,
        count,
        design,
        jobs: req.jobs,
    };
    let single = req.seed.is_some();
    let stop = |run: &SeedRun| single || shows(design, run);
    let started = std::time::Instant::now();
    let found = explore(topology, seeds, &stop).map_err(|e| moebi::report(&e))?;
    let rate = found.summary.seeds as f64 / started.elapsed().as_secs_f64().max(1e-9);
    if let (true, Some(run)) = (single, &found.stopped_at) {
        for line in &run.trace {
            println!("{line}");
        }
    }
    let last = first.wrapping_add(count.saturating_sub(1));
    let stopped = found.stopped_at.filter(|run| shows(design, run));
    conclude(design, stopped, &found.summary, first..=last, rate)
}

/// Whether a run shows what the design is run for: moebi's, a broken guarantee; a rejected
/// one, the effect it is rejected for.
fn shows(design: Design, run: &SeedRun) -> bool {
    match design {
        Design::Ledger => !run.passed(),
        Design::Naive => run.findings.lost > 0,
        Design::Shares => run.findings.doubled > 0,
    }
}

/// Prints what the seeds found; the error is the failure to report.
fn conclude(
    design: Design,
    stopped: Option<SeedRun>,
    summary: &Summary,
    seeds: std::ops::RangeInclusive<u64>,
    rate: f64,
) -> Result<(), String> {
    let (first, last) = (seeds.start(), seeds.end());
    match (design, stopped) {
        (Design::Ledger, None) => {
            println!("{summary} (seeds {first}..={last}; {rate:.1} seeds/s)");
            for line in summary.availability() {
                println!("  {line}");
            }
            Ok(())
        }
        (Design::Ledger, Some(run)) => {
            println!("{}", summary);
            failed(&run);
            Err(format!(
                "seed {} broke a guarantee; replay it with `make sim SEED={}`",
                run.seed, run.seed
            ))
        }
        (Design::Naive, Some(run)) => {
            println!(
                "naive design: lost updates at seed {} ({} units lost; seeds from {first})",
                run.seed, run.findings.lost
            );
            for v in run.findings.violations.iter().take(3) {
                println!("  {v}");
            }
            Ok(())
        }
        (Design::Naive, None) => Err(format!(
            "naive design: no lost update in seeds {first}..={last}"
        )),
        (Design::Shares, Some(run)) => {
            println!(
                "shares design: doubled at seed {} ({} doubled; {} publishes failed over; seeds from {first})",
                run.seed, run.findings.doubled, run.failed_over
            );
            let doubled = run.findings.violations.iter();
            for v in doubled.filter(|v| v.starts_with("doubled:")).take(3) {
                println!("  {v}");
            }
            Ok(())
        }
        (Design::Shares, None) => Err(format!(
            "shares design: nothing doubled in seeds {first}..={last}"
        )),
    }
}

fn failed(run: &SeedRun) {
    println!("seed {} failed:", run.seed);
    for v in &run.findings.violations {
        println!("  {v}");
    }
    println!("the end of its schedule:");
    let skip = run.trace.len().saturating_sub(TRACE_TAIL);
    for line in &run.trace[skip..] {
        println!("  {line}");
    }
}

/// A seed from the clock, for a run that was given none (it is printed, so it replays).
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) % 1_000_000_000
}
