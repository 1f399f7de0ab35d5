//! Crashes: `moebi replay` killed with SIGKILL at a random moment (while it applies a batch,
//! publishes, drains the queues or replicates), then run again as any retry would. After each
//! retry, every region must hold every effect exactly once: the share of each store in every
//! region's table, each message once in the bot's inbox, each bot reply once.
//!
//! Seeded: the run prints its seed; `MOEBI_CRASH_SEED=<seed> cargo test --test crash` replays
//! the same payloads and kill times (the moment a kill lands within the process still varies
//! with the machine's speed). `MOEBI_CRASH_RUNS` sets the runs per test (default 100; two tests).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use moebi::contract::{Participant, Region};
use moebi::engine::local::LocalEngine;
use moebi::engine::Engine;
use moebi::topology::Topology;
use serde_json::{json, Value};

/// A small, seedable generator (SplitMix64): the test needs no more randomness than this.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("MOEBI_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn runs() -> u64 {
    std::env::var("MOEBI_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

/// The SQS batch an event source mapping of `queue` in `region` would deliver.
fn batch(region: &str, queue: &str, events: &[(String, &str, Value)]) -> Value {
    let records: Vec<(String, Value)> = events
        .iter()
        .map(|(id, kind, detail)| {
            let body =
                support::payloads::envelope(region, &format!("env-{id}"), kind, detail.clone());
            (format!("msg-{id}"), body)
        })
        .collect();
    support::payloads::sqs_batch(region, queue, &records)
}

/// Runs `moebi replay file`, killed after `kill_after` unless it ended first; answers whether
/// the kill landed.
fn replay_killed(state: &Path, file: &Path, kill_after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moebi"))
        .arg("--state")
        .arg(state)
        .arg("replay")
        .arg(file)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moebi starts");
    std::thread::sleep(kill_after);
    let landed = child.try_wait().expect("waits").is_none();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    landed
}

/// The retry: the same replay, run to the end; it must succeed.
fn replay(state: &Path, file: &Path, context: &str) {
    let out = support::moebi(state, &["replay", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{context}: the retry failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn open(state: &Path) -> LocalEngine {
    let engine = LocalEngine::open(state, Topology::builtin()).await.unwrap();
    // Whatever the killed run left half-done, a later run settles it.
    engine.run_until_idle().await.unwrap();
    engine
}

#[tokio::test(flavor = "current_thread")]
async fn killed_stock_replays_converge_in_every_region_with_each_add_once() {
    let seed = seed();
    eprintln!("crash (stock): MOEBI_CRASH_SEED={seed}");
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("batch.json");
    let stores = [
        ("store-1", "us-west-2"),
        ("store-2", "us-east-1"),
        ("store-3", "eu-west-1"),
    ];
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut landed = 0;
    for run in 0..runs() {
        let mut rng = Rng(seed ^ run.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let (store, region) = stores[rng.below(3) as usize];
        let adds: Vec<(String, &str, Value)> = (0..10)
            .map(|i| {
                let product = format!("p{}", rng.below(4));
                let qty = 1 + rng.below(50);
                let id = format!("s{seed}-{run}-{i}");
                *expected
                    .entry((product.clone(), region.to_owned()))
                    .or_default() += qty;
                let detail = json!({"id": id, "store": store, "product": product, "qty": qty});
                (id, "stock.add", detail)
            })
            .collect();
        std::fs::write(&file, batch(region, "moebi-stock-add", &adds).to_string()).unwrap();
        let context = format!("run {run} (MOEBI_CRASH_SEED={seed})");
        landed += u64::from(replay_killed(
            state.path(),
            &file,
            Duration::from_millis(rng.below(1000)),
        ));
        replay(state.path(), &file, &context);
        let engine = open(state.path()).await;
        let want: Vec<(String, String, u64)> = expected
            .iter()
            .map(|((p, r), q)| (p.clone(), r.clone(), *q))
            .collect();
        for r in &engine.topology().regions {
            let shares = support::shares(&engine, r.as_str()).await;
            assert_eq!(shares, want, "{context}: the shares read in {r}");
        }
    }
    eprintln!(
        "crash (stock): {} runs, {landed} killed mid-run, every region converged, each add once",
        runs()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn killed_chat_replays_deliver_each_message_and_reply_once() {
    let seed = seed().wrapping_add(1);
    eprintln!("crash (chat): MOEBI_CRASH_SEED={}", seed.wrapping_sub(1));
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("batch.json");
    let (mut to_bot, mut replies) = (Vec::new(), BTreeMap::<String, Vec<String>>::new());
    let mut landed = 0;
    for run in 0..runs() {
        let mut rng = Rng(seed ^ run.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let chats: Vec<(String, &str, Value)> = (0..1 + rng.below(5))
            .map(|i| {
                let from = ["alex", "kate"][rng.below(2) as usize];
                let id = format!("c{seed}-{run}-{i}");
                to_bot.push(format!("{from}: {id}"));
                replies.entry(from.to_owned()).or_default().push(id.clone());
                let detail = json!({"id": id, "from": from, "to": "moebi", "text": id,
                    "sent_at": format!("2026-11-22T10:{:02}:{:02}.{:06}Z", run / 60 % 60, run % 60, i)});
                (id, "chat.send", detail)
            })
            .collect();
        std::fs::write(
            &file,
            batch("eu-west-1", "moebi-moebi-reply", &chats).to_string(),
        )
        .unwrap();
        let context = format!("run {run} (MOEBI_CRASH_SEED={})", seed.wrapping_sub(1));
        landed += u64::from(replay_killed(
            state.path(),
            &file,
            Duration::from_millis(rng.below(1000)),
        ));
        replay(state.path(), &file, &context);
        let engine = open(state.path()).await;
        let inbox = |who: &str| {
            let who = Participant::parse(who).unwrap();
            let engine = &engine;
            async move { engine.inbox(&who).await.unwrap() }
        };
        let got: Vec<String> = inbox("moebi")
            .await
            .iter()
            .map(|e| format!("{}: {}", e.from, e.text))
            .collect();
        assert_eq!(got, to_bot, "{context}: moebi's inbox");
        for (who, asked) in &replies {
            let mut answered: Vec<String> = inbox(who)
                .await
                .iter()
                .filter(|e| e.from == "moebi" && e.text == "chicken?")
                .filter_map(|e| e.in_reply_to.as_ref().map(|r| r.to_string()))
                .collect();
            answered.sort();
            let mut asked = asked.clone();
            asked.sort();
            assert_eq!(
                answered, asked,
                "{context}: Moebi's replies in {who}'s inbox"
            );
        }
        assert!(
            engine
                .dead_letters(None::<&Region>)
                .await
                .unwrap()
                .is_empty(),
            "{context}"
        );
    }
    eprintln!(
        "crash (chat): {} runs, {landed} killed mid-run, each message and reply once",
        runs()
    );
}

/// The first command on a fresh state, killed at a random moment (while it creates the tables,
/// streams and queues, or after), leaves a state the next command completes: it succeeds, and
/// so does every command after it. `MOEBI_FIRST_CRASH_RUNS` sets the trials (default 200).
#[test]
fn a_first_command_killed_at_any_moment_leaves_a_usable_state() {
    let seed = seed().wrapping_add(2);
    eprintln!(
        "crash (first command): MOEBI_CRASH_SEED={}",
        seed.wrapping_sub(2)
    );
    let trials: u64 = std::env::var("MOEBI_FIRST_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let parent = tempfile::tempdir().unwrap();
    let mut landed = 0;
    for trial in 0..trials {
        let mut rng = Rng(seed ^ trial.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let state = parent.path().join(format!("s{trial}"));
        let mut child = support::command(&state, &["send", "alex", "kate", "first"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moebi starts");
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        landed += u64::from(child.try_wait().expect("waits").is_none());
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let context = format!("trial {trial} (MOEBI_CRASH_SEED={})", seed.wrapping_sub(2));
        let out = support::moebi(&state, &["send", "alex", "kate", "second"]);
        assert!(
            out.status.success(),
            "{context}: the command after the kill failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inbox = support::ok(&state, &["inbox", "kate"]);
        assert!(inbox.contains("alex: second"), "{context}: {inbox}");
        std::fs::remove_dir_all(&state).unwrap();
    }
    eprintln!("crash (first command): {trials} trials, {landed} killed mid-run, each next command succeeded");
}
