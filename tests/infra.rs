//! Terraform and the Rust engines read one topology: these tests make sure they agree.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use moebi::topology::Topology;

fn hcl_file(name: &str) -> hcl::Body {
    let path = support::root().join("infra").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hcl::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn string_attr(block: &hcl::Block, key: &str) -> Option<String> {
    block
        .body()
        .attributes()
        .find(|a| a.key() == key)
        .and_then(|a| match a.expr() {
            hcl::Expression::String(s) => Some(s.clone()),
            _ => None,
        })
}

#[test]
fn every_topology_region_has_a_provider_alias_and_a_module_instance() {
    let topology = Topology::builtin();
    let regions: BTreeSet<String> = topology.regions.iter().map(|r| r.to_string()).collect();

    let providers: BTreeSet<String> = hcl_file("providers.tf")
        .blocks()
        .filter(|b| b.identifier() == "provider" && string_attr(b, "alias").is_some())
        .filter_map(|b| string_attr(b, "region"))
        .collect();
    assert_eq!(
        providers, regions,
        "infra/providers.tf must have one aliased aws provider per region of infra/topology.json \
         (Terraform cannot create providers from data: add or remove the provider block)"
    );

    let modules: BTreeSet<String> = hcl_file("regions.tf")
        .blocks()
        .filter(|b| b.identifier() == "module")
        .filter_map(|b| string_attr(b, "region"))
        .collect();
    assert_eq!(
        modules, regions,
        "infra/regions.tf must have one modules/region instance per region of infra/topology.json"
    );
}

/// `terraform console` evaluates `local.rules` offline, in a data directory of its own that it
/// initialises first (as `infra/settings.sh` does), so it needs no other step before it and
/// can run beside `make infra-test`. With a region evacuated too: its residents' homes move to
/// its standby in both.
#[test]
fn terraform_derives_the_same_rules_as_the_engines() {
    let topology = Topology::builtin();
    assert_eq!(
        terraform_rules(""),
        topology.rules_json(),
        "Terraform's local.rules and Topology::rules differ"
    );
    let down = topology.regions[1].clone();
    let evacuated = terraform_rules(&format!("'-var=evacuated=[\"{down}\"]'"));
    assert_eq!(
        evacuated,
        topology.evacuated(&down).rules_json(),
        "with {down} evacuated, Terraform's local.rules and Topology::rules differ"
    );
    assert_ne!(
        evacuated,
        topology.rules_json(),
        "evacuating {down} moved no home"
    );
}

/// Terraform's `local.rules`, as JSON, with `vars` (`-var=…`) given to `terraform console`.
fn terraform_rules(vars: &str) -> serde_json::Value {
    let root = support::root();
    let work = tempfile::tempdir().unwrap();
    // offline.sh: the AWS provider from the preinstalled filesystem mirror, no version check.
    let script = format!(
        r#"set -euo pipefail
. infra/offline.sh
offline_terraform "$WORK"
export TF_DATA_DIR="$WORK/data"
terraform -chdir=infra init -backend=false -input=false -no-color >"$WORK/init.log" 2>&1 \
  || {{ cat "$WORK/init.log" >&2; exit 1; }}
exec terraform -chdir=infra console {vars}"#
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&root)
        .env("WORK", work.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bash runs terraform (preinstalled, or install it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"jsonencode(local.rules)\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "terraform console {vars} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The console prints the JSON text as a quoted HCL string, whose escapes are JSON's here.
    let quoted = String::from_utf8(out.stdout).unwrap();
    let text: String = serde_json::from_str(quoted.trim()).expect("a quoted string");
    serde_json::from_str(&text).unwrap()
}
