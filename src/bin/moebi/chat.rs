//! `moebi chat alex`: the seed's terminals. Each participant opens a session in a terminal;
//! a line `kate: how are you?` sends, and what lands in the participant's inbox (messages,
//! Moebi's answers, the stock's answers) appears as it lands, marked `← kate: fine`.
//!
//! The session holds no engine between steps: on the embedded engine it opens the state for
//! each send and each look at the inbox, so several terminals share one state directory
//! (commands on it take turns, [`moebi::engine::local::LocalEngine::exclusive`]). Over the
//! HTTP API (`--engine api`), each step is a call to the front door.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use moebi::contract::EventId;
use moebi::ports::{Cause, InboxEntry};

/// What a session does, step by step: through an engine, or through the HTTP API.
#[async_trait]
pub trait Chatter: Send {
    /// `me` sends `text` to `to`.
    async fn send(&mut self, me: &str, to: &str, text: &str) -> Result<(), Cause>;
    /// `me` asks the stock; the answer lands in the inbox.
    async fn ask(&mut self, me: &str, product: Option<&str>) -> Result<(), Cause>;
    /// `me`'s inbox, oldest first.
    async fn inbox(&mut self, me: &str) -> Result<Vec<InboxEntry>, Cause>;
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
    connect: &mut dyn Chatter,
    me: &str,
    input: impl AsyncBufRead + Unpin,
    out: &mut (dyn Write + Send),
    every: Duration,
) -> Result<(), Cause> {
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
                        if let Err(e) = connect.send(me, to, text).await {
                            let _ = writeln!(out, "! {}", moebi::report(e.as_ref()));
                        }
                    }
                    Ok(Line::Stock(product)) => {
                        if let Err(e) = connect.ask(me, product).await {
                            let _ = writeln!(out, "! {}", moebi::report(e.as_ref()));
                        }
                    }
                    Err(why) => {
                        let _ = writeln!(out, "! {why}");
                    }
                }
                // Show at once what the step brought (Moebi's answer, the stock's).
                if let Err(e) = look(connect, me, &mut seen, Some(out)).await {
                    let _ = writeln!(out, "! {}", moebi::report(e.as_ref()));
                }
            }
            _ = tick.tick() => {
                if let Err(e) = look(connect, me, &mut seen, Some(out)).await {
                    let _ = writeln!(out, "! {}", moebi::report(e.as_ref()));
                }
            }
        }
        let _ = out.flush();
    }
}

/// Reads `me`'s inbox and prints (to `out`, when given) the entries not seen before; answers
/// how many were new.
async fn look(
    connect: &mut dyn Chatter,
    me: &str,
    seen: &mut HashSet<EventId>,
    mut out: Option<&mut (dyn Write + Send)>,
) -> Result<usize, Cause> {
    let entries = connect.inbox(me).await?;
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
