//! `moebi chat alex`: the seed's terminals. Each participant opens a session in a terminal;
//! a line `kate: how are you?` sends, and what lands in the participant's inbox (messages,
//! Moebi's answers, the stock's answers) appears as it lands, marked `← kate: fine`.
//!
//! The session holds no engine between steps: on the embedded engine it opens the state for
//! each send and each look at the inbox, so several terminals share one state directory
//! (commands on it take turns, [`moebi::engine::local::LocalEngine::exclusive`]).

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use moebi::client::Client;
use moebi::contract::EventId;
use moebi::engine::{Engine, EngineError};

/// How a session reaches the engine, each time it needs it.
#[async_trait]
pub trait Connect: Sync {
    /// An engine to do one step with.
    async fn connect(&self) -> Result<Box<dyn Engine>, EngineError>;
}

/// What a typed line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `kate: how are you?`
    Send {
        /// To whom.
        to: &'a str,
        /// What.
        text: &'a str,
    },
    /// `/stock`, `/stock nike`: ask the stock (the answer lands in the inbox).
    Stock(Option<&'a str>),
    /// An empty line.
    Nothing,
    /// `/quit`.
    Quit,
}

/// Reads a typed line, or says what a line must look like.
pub fn parse(line: &str) -> Result<Line<'_>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Line::Nothing);
    }
    if line == "/quit" {
        return Ok(Line::Quit);
    }
    if let Some(rest) = line.strip_prefix("/stock") {
        let product = rest.trim();
        return Ok(Line::Stock((!product.is_empty()).then_some(product)));
    }
    match line.split_once(':') {
        Some((to, text)) if !to.trim().is_empty() && !to.contains(' ') => Ok(Line::Send {
            to: to.trim(),
            text: text.trim(),
        }),
        _ => Err(format!(
            "write `name: message` (e.g. `kate: how are you?`), `/stock [product]` or `/quit`; not {line:?}"
        )),
    }
}

/// Runs `me`'s session until the input ends or says `/quit`: sends what is typed, and shows
/// what lands in `me`'s inbox, looking every `every`.
pub async fn session(
    connect: &dyn Connect,
    me: &str,
    input: impl AsyncBufRead + Unpin,
    out: &mut (dyn Write + Send),
    every: Duration,
) -> Result<(), EngineError> {
    let mut seen: HashSet<EventId> = HashSet::new();
    let earlier = look(connect, me, &mut seen, None).await?;
    let _ = writeln!(
        out,
        "moebi chat: you are {me}; {earlier} earlier message(s) (`moebi inbox {me}`).\n\
         Type `kate: how are you?` to send, `/stock [product]` to ask the stock, `/quit` to leave."
    );
    let mut lines = input.lines();
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return Ok(()) };
                match parse(&line) {
                    Ok(Line::Quit) => return Ok(()),
                    Ok(Line::Nothing) => {}
                    Ok(Line::Send { to, text }) => {
                        if let Err(e) = send(connect, me, to, text).await {
                            let _ = writeln!(out, "! {}", moebi::report(&e));
                        }
                    }
                    Ok(Line::Stock(product)) => {
                        if let Err(e) = ask(connect, me, product).await {
                            let _ = writeln!(out, "! {}", moebi::report(&e));
                        }
                    }
                    Err(why) => {
                        let _ = writeln!(out, "! {why}");
                    }
                }
                // Show at once what the step brought (Moebi's answer, the stock's).
                if let Err(e) = look(connect, me, &mut seen, Some(out)).await {
                    let _ = writeln!(out, "! {}", moebi::report(&e));
                }
            }
            _ = tick.tick() => {
                if let Err(e) = look(connect, me, &mut seen, Some(out)).await {
                    let _ = writeln!(out, "! {}", moebi::report(&e));
                }
            }
        }
        let _ = out.flush();
    }
}

async fn send(connect: &dyn Connect, me: &str, to: &str, text: &str) -> Result<(), EngineError> {
    let engine = connect.connect().await?;
    Client::new(engine.as_ref()).send(me, to, text).await?;
    Ok(())
}

async fn ask(connect: &dyn Connect, me: &str, product: Option<&str>) -> Result<(), EngineError> {
    let engine = connect.connect().await?;
    Client::new(engine.as_ref()).ask_stock(me, product).await?;
    Ok(())
}

/// Reads `me`'s inbox and prints (to `out`, when given) the entries not seen before; answers
/// how many were new.
async fn look(
    connect: &dyn Connect,
    me: &str,
    seen: &mut HashSet<EventId>,
    mut out: Option<&mut (dyn Write + Send)>,
) -> Result<usize, EngineError> {
    let entries = {
        let engine = connect.connect().await?;
        Client::new(engine.as_ref()).inbox(me).await?
    };
    let mut new = 0;
    for e in entries {
        if seen.insert(e.id.clone()) {
            new += 1;
            if let Some(out) = out.as_deref_mut() {
                let _ = writeln!(out, "← {e}");
            }
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_line_is_a_message_a_question_or_an_error_naming_the_form() {
        assert_eq!(
            parse("kate: how are you?"),
            Ok(Line::Send {
                to: "kate",
                text: "how are you?"
            })
        );
        assert_eq!(parse("/stock nike"), Ok(Line::Stock(Some("nike"))));
        assert_eq!(parse("/stock"), Ok(Line::Stock(None)));
        assert_eq!(parse("  "), Ok(Line::Nothing));
        assert_eq!(parse("/quit"), Ok(Line::Quit));
        assert!(parse("hello there").unwrap_err().contains("name: message"));
        assert!(parse("dear kate: hi").is_err());
    }
}
