//! `moebi --engine aws load` against the emulator: a short open-model load published on the
//! buses while the engine pumps, read back from the stamps in each region's table; every
//! event applied once, the stock agreeing in every region. No timing is asserted.

use crate::support;

#[test]
fn a_short_load_on_the_emulator_applies_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let ns = super::namespace();
    let url = super::emulator_url();
    let run = |args: &[&str]| {
        let mut all = vec!["--engine", "aws", "--endpoint-url", url.as_str()];
        all.extend_from_slice(args);
        let out = support::command(dir.path(), &all)
            .env("MOEBI_NAMESPACE", &ns)
            .output()
            .expect("moebi runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "moebi {all:?}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    run(&["setup"]);
    let out = dir.path().join("load");
    let text = run(&[
        "load",
        "--rate",
        "10",
        "--duration",
        "2s",
        "--seed",
        "5",
        "--mix",
        "chat=2,moebi=1,add=1,ask=1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("sent 20: applied once 20, failed 0, lost 0, doubled 0"),
        "{text}"
    );
    assert!(!text.contains("the state disagrees"), "{text}");
    for hop in ["published", "handled", "answered"] {
        assert!(
            text.lines().any(|l| l.starts_with(hop)),
            "no hop {hop}: {text}"
        );
    }
    assert!(out.join("latency-over-time.png").exists());
}
