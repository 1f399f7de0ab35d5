//! Terraform and the emulator must deploy the same runtime settings: see
//! `terraform_and_the_engines_run_with_the_same_settings`.

use std::path::{Path, PathBuf};
use std::process::Command;

use moebi::topology::Topology;

/// Whether `program` is an executable file in some directory of `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Guards against drift between what Terraform deploys to AWS (infra/) and what `moebi setup`
/// creates in the emulator and the embedded engine runs with (`moebi::engine::settings`): the
/// DynamoDB table's keys, TTL attribute and stream view, each SQS-fed function's visibility
/// timeout, maxReceiveCount, batch size and partial batch responses, and the attempts Lambda
/// makes at each EventBridge-invoked function, region by region. Without it, a setting changed
/// on one side only (say, `maximum_retry_attempts` in Terraform, or a constant in Rust) would
/// leave the emulator passing tests against behaviour AWS does not have.
///
/// Terraform's side is read off an offline `terraform plan` by `infra/settings.sh` (about half
/// a minute; no network, no credentials).
#[test]
fn terraform_and_the_engines_run_with_the_same_settings() {
    assert!(
        on_path("terraform"),
        "terraform is not on PATH: infra/settings.sh needs it to plan infra/ (make test needs it too)"
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = Path::new("infra").join("settings.sh");
    // Terraform deploys every function (and the chat-send and stock-add queues) in every
    // region, and so do the engines: an evacuated region's residents are served by its standby.
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .output()
        .expect("bash runs infra/settings.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bash infra/settings.sh failed with {:?}:\n{stderr}",
        out.status.code()
    );
    let terraform: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "infra/settings.sh printed no JSON ({e}):\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    let engines = moebi::engine::settings(&Topology::builtin());

    assert_eq!(
        terraform, engines,
        "Terraform's plan (left, from infra/settings.sh) and moebi::engine::settings (right) \
         differ: change infra/ or the engines so that they agree"
    );
}
