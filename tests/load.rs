//! `moebi load` on the embedded engine: a short open-model run whose accounting must balance
//! (every event applied once, none lost, none doubled, the state agreeing with the journal),
//! with histograms, hops and plots. No timing is asserted: the figures are the command's.

#![cfg(feature = "load")]

use std::time::Duration;

mod support;

use moebi::load::{self, plot, Kind, Plan};
use moebi::topology::Topology;

#[tokio::test(flavor = "current_thread")]
async fn a_short_load_applies_every_event_once_and_draws_its_plots() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::env::var("MOEBI_LOAD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (MOEBI_LOAD_SEED={seed} replays who sends what)");
    let plan = Plan {
        rate: 60.0,
        duration: Duration::from_secs(2),
        mix: "chat=4,moebi=2,add=2,ask=2".parse().unwrap(),
        participants: Vec::new(),
        stores: Vec::new(),
        products: 3,
        seed,
    };
    let topology = Topology::builtin();
    let report = load::on_embedded(&plan, &topology, &dir.path().join("state"), &mut |_| {})
        .await
        .unwrap();
    print!("{}", report.render());
    assert_eq!(report.sent, 120);
    assert!(report.balanced(), "{}", report.render());
    assert_eq!(report.once, 120, "{:?}", report.failed);
    assert_eq!(report.overall.len(), 120, "every event has a latency");
    for kind in Kind::ALL {
        assert!(
            report.kinds.get(&kind).is_some_and(|h| !h.is_empty()),
            "no {kind} timed"
        );
    }
    // Every hop was seen: published, routed, received, handled, replicated (adds), answered
    // (the bot's replies).
    for (name, h) in report.hop_names.iter().zip(&report.hops) {
        assert!(!h.is_empty(), "hop {name} never timed");
    }
    // Around an outage in the middle of the run: every timed event falls in one phase, and the
    // summary a drill reads says so.
    let window = load::phases::Window {
        start_ms: report.start_ms + 300.0,
        end_ms: report.start_ms + 700.0,
    };
    let counts = report.phases(&window).map(|h| h.len());
    assert_eq!(counts.iter().sum::<u64>(), 120, "{counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    let summary = report.summary(Some(&window));
    assert_eq!(summary["once"], 120);
    assert_eq!(summary["phases"]["during"]["count"], counts[1]);
    assert!(report.render_phases(&window).contains("during"));
    let kinds = vec![("all".to_owned(), &report.overall)];
    let marked = Some(report.seconds_of(&window));
    let files = plot::run_plots(dir.path(), &report.seconds, &kinds, ("test", marked)).unwrap();
    assert_eq!(files.len(), 4);
    for f in files {
        let size = std::fs::metadata(&f).unwrap().len();
        assert!(size > 1000, "{} holds {size} bytes", f.display());
    }
}

#[test]
fn moebi_load_sweeps_reports_the_knee_and_refuses_a_bad_request_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("load");
    let text = support::ok(
        dir.path(),
        &[
            "load",
            "--sweep",
            "20,40",
            "--duration",
            "1s",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(text.contains("seed 3"), "{text}");
    assert_eq!(text.matches("lost 0, doubled 0").count(), 2, "{text}");
    assert!(text.contains("knee (embedded engine): "), "{text}");
    for file in [
        "sweep.svg",
        "sweep.png",
        "sweep.json",
        "rate-20/latency-over-time.png",
        "rate-40/percentiles.svg",
        "rate-40/report.txt",
    ] {
        assert!(out.join(file).exists(), "no {file}: {text}");
    }
    let bad = support::moebi(dir.path(), &["load", "--mix", "chat=1,dance=1"]);
    assert!(!bad.status.success());
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("unknown kind \"dance\""), "{why}");
}
