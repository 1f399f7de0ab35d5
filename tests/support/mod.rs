//! Shared by the black-box tests: running the `moebi` binary and reading fixtures.
#![allow(dead_code)]

pub mod payloads;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture under `events/`.
pub fn fixture(path: &str) -> PathBuf {
    root().join("events").join(path)
}

/// The command `moebi --state <state> <args>`, free of the caller's moebi settings.
pub fn command<S: AsRef<std::ffi::OsStr>>(state: &Path, args: &[S]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_moebi"));
    command
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MOEBI_ENGINE")
        .env_remove("MOEBI_TOPOLOGY");
    command
}

/// Runs `moebi --state <state> <args>` and returns its output.
pub fn moebi(state: &Path, args: &[&str]) -> Output {
    command(state, args)
        .output()
        .expect("the moebi binary runs")
}

/// Runs moebi and insists it exits 0; returns its stdout.
pub fn ok(state: &Path, args: &[&str]) -> String {
    let out = moebi(state, args);
    assert!(
        out.status.success(),
        "moebi {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// The `messageId`s of a fixture batch's records whose event id starts with `prefix`.
pub fn message_ids(path: &str, bad: impl Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(path)).expect("fixture reads");
    let batch: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    batch["Records"]
        .as_array()
        .expect("a batch")
        .iter()
        .filter(|r| bad(r["body"].as_str().unwrap_or_default()))
        .map(|r| r["messageId"].as_str().expect("messageId").to_owned())
        .collect()
}

/// The emulator's URL, from `MOEBI_EMULATOR_URL` (set by `make test`, which starts it).
pub fn emulator_url() -> String {
    std::env::var("MOEBI_EMULATOR_URL").unwrap_or_else(|_| {
        panic!(
            "MOEBI_EMULATOR_URL is not set: the AWS tests need the AWS API emulator. \
             Run `make test`, which installs and starts it, or start `moto_server` and set the variable."
        )
    })
}

/// The stock `region`'s table holds (what it applied and the other regions' replicas): the
/// ledger's adds summed per product and region that applied them, as sorted
/// `(product, region, qty)`.
pub async fn shares(
    engine: &dyn moebi::engine::Engine,
    region: &str,
) -> Vec<(String, String, u64)> {
    let region = moebi::contract::Region::parse(region).expect("a region");
    let mut sums: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for s in engine
        .ports(&region)
        .expect("a region of the topology")
        .stock
        .shares(None)
        .await
        .expect("shares read")
    {
        *sums
            .entry((s.product.to_string(), s.region.to_string()))
            .or_default() += s.qty;
    }
    sums.into_iter().map(|((p, r), q)| (p, r, q)).collect()
}
