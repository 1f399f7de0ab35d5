//! The seed's terminals: `moebi chat` sessions in real terminals (tmux), typed into with
//! send-keys and read with capture-pane, as a person would use them. Needs tmux.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A terminal running one command, on a tmux server of its own.
struct Terminal {
    socket: String,
    name: String,
}

impl Terminal {
    /// Opens a terminal running `moebi <args>`; if moebi exits, the terminal says how.
    fn open(socket: &str, name: &str, args: &[&str]) -> Terminal {
        let moebi = env!("CARGO_BIN_EXE_moebi");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            "'{moebi}' {}; echo \"[moebi exited $?]\"; sleep 600",
            quoted.join(" ")
        );
        let status = Command::new("tmux")
            .args([
                "-L",
                socket,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "160",
                "-y",
                "50",
            ])
            .args(["sh", "-c", &script])
            .env_remove("RUST_LOG")
            .env_remove("MOEBI_ENGINE")
            .status()
            .expect("tmux runs (the chat tests need tmux)");
        assert!(status.success(), "tmux cannot open a terminal");
        Terminal {
            socket: socket.to_owned(),
            name: name.to_owned(),
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types a line, as a person would, and presses Enter.
    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.name, "-l", text]);
        self.tmux(&["send-keys", "-t", &self.name, "Enter"]);
    }

    /// What the terminal shows.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    /// Waits until the terminal shows `needle`; answers the screen.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline && !screen.contains("[moebi exited"),
                "{}'s terminal never showed {needle:?}; it shows:\n{screen}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The tmux server of a test, killed with its terminals at the end.
struct Server(String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .status();
    }
}

/// alex and kate, each in a terminal, talk to each other and to Moebi.
fn converse(tag: &str, flags: &[&str]) {
    let server = Server(format!("moebi-chat-{tag}-{}", std::process::id()));
    let session = |who: &'static str| {
        let mut args = flags.to_vec();
        args.extend(["chat", who, "--every-ms", "200"]);
        Terminal::open(&server.0, who, &args)
    };
    let (alex, kate) = (session("alex"), session("kate"));
    alex.wait_for("you are alex");
    kate.wait_for("you are kate");

    alex.type_line(&format!("kate: how are you? ({tag})"));
    kate.wait_for(&format!("← alex: how are you? ({tag})"));
    kate.type_line(&format!("alex: fine, and you? ({tag})"));
    alex.wait_for(&format!("← kate: fine, and you? ({tag})"));

    kate.type_line("moebi: who is a good dog?");
    kate.wait_for("← moebi: chicken?");
    alex.type_line("what?");
    alex.wait_for("write `name: message`");
    alex.type_line("/stock nike");
    let screen = alex.wait_for("← stock: ");
    // alex's screen shows what kate sent him, and what he typed is not shown as received from
    // himself (his inbox holds what others sent him, nothing he sent).
    assert!(
        screen.contains(&format!("← kate: fine, and you? ({tag})")),
        "{screen}"
    );
    assert!(
        !screen.contains(&format!("← alex: how are you? ({tag})")),
        "{screen}"
    );
}

#[test]
fn two_terminals_talk_to_each_other_and_to_moebi_on_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap().to_owned();
    converse("local", &["--state", &state]);
    check_inbox(dir.path());
}

/// What the sessions sent is in the inboxes, for any other command to read.
fn check_inbox(state: &Path) {
    let kate = support::ok(state, &["inbox", "kate"]);
    assert!(kate.contains("alex: how are you? (local)"), "{kate}");
    assert!(kate.contains("moebi: chicken?"), "{kate}");
}

#[test]
fn two_terminals_talk_through_the_aws_apis() {
    let url = support::emulator_url();
    let dir = tempfile::tempdir().unwrap();
    let setup = support::command(
        dir.path(),
        &["--engine", "aws", "--endpoint-url", &url, "setup"],
    )
    .output()
    .expect("moebi runs");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    converse("aws", &["--engine", "aws", "--endpoint-url", &url]);
}
