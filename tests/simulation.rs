//! The deterministic simulation as a user relies on it: a seed replays exactly its schedule,
//! random seeds hold every guarantee, and the rejected design's lost updates are found.
//! (`make test` also runs `moebi sim` over 1,000 seeds and prints its line.)
//!
//! Seeded: the run prints its first seed; `MOEBI_SIM_FIRST=<seed> cargo test --test simulation`
//! runs the same seeds again; `MOEBI_SIM_SEEDS` sets how many (default 20).

use moebi::sim::{explore, one, Design, Found, SeedRun, Seeds};
use moebi::topology::Topology;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// Runs `count` seeds from `first` over `design`, two at a time, until one answers `stop`.
fn run(first: u64, count: u64, design: Design, stop: &(dyn Fn(&SeedRun) -> bool + Sync)) -> Found {
    let seeds = Seeds {
        first,
        count,
        design,
        jobs: 2,
    };
    explore(&Topology::builtin(), seeds, stop).unwrap()
}

fn show(run: &SeedRun) -> String {
    let tail = run.trace.len().saturating_sub(30);
    format!(
        "seed {}: {:#?}\n{}",
        run.seed,
        run.findings.violations,
        run.trace[tail..].join("\n")
    )
}

#[tokio::test(flavor = "current_thread")]
async fn a_seed_replays_exactly_its_schedule() {
    let topology = Topology::builtin();
    let a = one(7, Design::Ledger, &topology).await.unwrap();
    let b = one(7, Design::Ledger, &topology).await.unwrap();
    assert_eq!(a.trace, b.trace, "the same seed took two schedules");
    assert_eq!(
        (a.events, a.crashes, a.partitions),
        (b.events, b.crashes, b.partitions)
    );
    let c = one(8, Design::Ledger, &topology).await.unwrap();
    assert_ne!(a.trace, c.trace, "two seeds took one schedule");
}

#[test]
fn random_seeds_lose_nothing_and_double_nothing() {
    let first = env("MOEBI_SIM_FIRST").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    });
    let count = env("MOEBI_SIM_SEEDS").unwrap_or(20);
    eprintln!("MOEBI_SIM_FIRST={first} MOEBI_SIM_SEEDS={count}");
    let found = run(first, count, Design::Ledger, &|run| !run.passed());
    if let Some(run) = &found.stopped_at {
        panic!("{}", show(run));
    }
    let s = &found.summary;
    assert_eq!(s.seeds, count);
    assert_eq!((s.lost, s.doubled), (0, 0));
    // The schedules did exercise what they claim to.
    assert!(s.events > count * 8, "{s}");
    assert!(s.crashes > 0 && s.partitions > 0, "{s}");
    assert!(!s.outages.is_empty() && s.failed_over > 0, "{s}");
}

#[test]
fn regions_go_down_and_their_residents_are_served_by_the_standby() {
    let found = run(0, 200, Design::Ledger, &|run| !run.passed());
    if let Some(run) = &found.stopped_at {
        panic!("{}", show(run));
    }
    let s = &found.summary;
    let regions = Topology::builtin().regions;
    for region in &regions {
        let a = s.outages.get(region).copied().unwrap_or_default();
        assert!(
            a.outages > 0 && a.events > 0,
            "{region} never went down: {s}"
        );
        // Some of its residents' events were applied while it was down (the standby served
        // them), and some waited in its queues for it to come back.
        assert!(a.served > 0 && a.served < a.events, "{region}: {a:?}");
    }
}

#[test]
fn one_share_per_region_doubles_an_add_applied_in_two_regions() {
    let found = run(0, 1000, Design::Shares, &|run| run.findings.doubled > 0);
    let run = found
        .stopped_at
        .expect("one share per region, with failover, doubles no add");
    assert!(
        run.findings
            .violations
            .iter()
            .any(|v| v.starts_with("doubled:") && v.contains(" of ")),
        "{}",
        show(&run)
    );
}

#[test]
fn the_rejected_design_loses_updates() {
    let found = run(0, 200, Design::Naive, &|run| run.findings.lost > 0);
    let run = found
        .stopped_at
        .expect("one stock item per product, added to from every region, loses no update");
    assert!(
        run.findings
            .violations
            .iter()
            .any(|v| v.starts_with("lost updates:")),
        "{}",
        show(&run)
    );
}
