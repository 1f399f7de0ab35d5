//! Many `moebi` commands at once on one state directory, as a script or several terminals run
//! them: every one exits 0 having done what it said, and the totals are exact.
//!
//! `MOEBI_CONCURRENT_ADDS` sets how many `stock add` run at once (default 1,000).

mod support;

use std::process::{Child, Stdio};

fn spawn(state: &std::path::Path, args: &[String]) -> Child {
    support::command(state, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("moebi starts")
}

#[test]
fn a_thousand_adds_and_a_hundred_sends_at_once_all_land() {
    let adds: u64 = std::env::var("MOEBI_CONCURRENT_ADDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let sends = 100;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    // The state exists before the crowd arrives (the first command creates it otherwise).
    support::ok(state, &["inbox", "kate"]);
    let mut children = Vec::new();
    for i in 0..adds {
        let store = format!("store-{}", i % 3 + 1);
        let qty = (i % 7 + 1).to_string();
        let args = ["stock", "add", &store, "nike", &qty].map(String::from);
        children.push((args.join(" "), spawn(state, &args)));
        if i % (adds / sends).max(1) == 0 && i / (adds / sends).max(1) < sends {
            let args = ["send", "alex", "kate", &format!("m{i}")].map(String::from);
            children.push((args.join(" "), spawn(state, &args)));
        }
    }
    let mut failed = Vec::new();
    for (what, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let said = stdout.starts_with("added ") || stdout.starts_with("sent ");
        if !out.status.success() || !said {
            failed.push(format!(
                "{what}: {:?} {stdout} {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} commands failed, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let total: u64 = (0..adds).map(|i| i % 7 + 1).sum();
    let answer = support::ok(state, &["stock", "status", "nike", "--as", "alex"]);
    assert_eq!(answer.trim(), format!("nike: {total}"));
    let inbox = support::ok(state, &["inbox", "kate"]);
    assert_eq!(inbox.lines().count() as u64, sends.min(adds), "{inbox}");
    assert_eq!(support::ok(state, &["dlq"]).trim(), "no dead letters");
}
