//! `moebi chat --engine api`: the chat over the region's API, live. What lands in the inbox is
//! pushed to an open WebSocket and shown as it arrives, once (by message id: a push may repeat).
//! After any reconnect (a dropped network, API Gateway's 2-hour cut, the socket deleted) the
//! session reads its inbox after the last entry it showed, so nothing is missed either. A
//! heartbeat keeps the socket inside API Gateway's 10-minute idle limit.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use moebi::api::live::LiveSocket;
use moebi::api::ApiClient;
use moebi::contract::EventId;
use moebi::ports::InboxEntry;

use crate::chat::{parse, Line};
use crate::{Cli, Failure};

/// How often a heartbeat goes out (`MOEBI_HEARTBEAT_SECONDS`; API Gateway's idle limit is 10
/// minutes).
fn heartbeat() -> Duration {
    let seconds = std::env::var("MOEBI_HEARTBEAT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300u64);
    Duration::from_secs(seconds.max(1))
}

/// What the session has shown, so that nothing is shown twice, and where to catch up from.
#[derive(Default)]
struct Shown {
    ids: HashSet<EventId>,
    last: Option<EventId>,
}

impl Shown {
    fn show(&mut self, e: InboxEntry, out: &mut impl Write) {
        if self.ids.insert(e.id.clone()) {
            let _ = writeln!(out, "← {e}");
            let _ = out.flush();
            self.last = Some(e.id);
        }
    }
}

/// Opens the socket, then reads the inbox after the last entry shown (`GET /inbox?after=`):
/// what landed while no socket was open.
async fn connect(
    client: &mut ApiClient,
    url: Option<&str>,
    shown: &mut Shown,
    out: &mut impl Write,
) -> Result<LiveSocket, moebi::api::ApiError> {
    let socket = client.open_socket(url).await?;
    for e in client.inbox(shown.last.as_ref()).await? {
        shown.show(e, out);
    }
    Ok(socket)
}

pub async fn chat(cli: &Cli, me: &str, socket_url: Option<&str>) -> Result<(), Failure> {
    let mut client = crate::api::client(cli, me)?;
    let mut out = std::io::stdout();
    let mut shown = Shown::default();
    let earlier = client.inbox(None).await?;
    let count = earlier.len();
    for e in earlier {
        shown.last = Some(e.id.clone());
        shown.ids.insert(e.id);
    }
    let mut socket = Some(connect(&mut client, socket_url, &mut shown, &mut out).await?);
    let _ = writeln!(
        out,
        "moebi chat: you are {me}, live; {count} earlier message(s) (`moebi inbox {me}`).\n\
         Type `kate: how are you?` to send, `/stock [product]` to ask the stock, `/quit` to leave."
    );
    let _ = out.flush();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut beat = tokio::time::interval(heartbeat());
    beat.tick().await;
    let mut retry = 0u32;
    loop {
        let Some(live) = socket.as_mut() else {
            // Reconnect, backing off up to 10 s; typed lines wait meanwhile.
            tokio::time::sleep(Duration::from_millis((250u64 << retry.min(6)).min(10_000))).await;
            retry += 1;
            match connect(&mut client, socket_url, &mut shown, &mut out).await {
                Ok(s) => {
                    eprintln!("moebi chat: reconnected; caught up from the inbox");
                    socket = Some(s);
                    retry = 0;
                }
                Err(e) => eprintln!("moebi chat: cannot reconnect: {}", moebi::report(&e)),
            }
            continue;
        };
        tokio::select! {
            pushed = live.next() => match pushed {
                Some(Ok(e)) => shown.show(e, &mut out),
                Some(Err(e)) => {
                    eprintln!("moebi chat: the socket failed ({}); reconnecting", moebi::report(&e));
                    socket = None;
                }
                None => {
                    eprintln!("moebi chat: the socket closed; reconnecting");
                    socket = None;
                }
            },
            _ = beat.tick() => {
                if let Err(e) = live.ping().await {
                    eprintln!("moebi chat: heartbeat failed ({}); reconnecting", moebi::report(&e));
                    socket = None;
                }
            }
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return Ok(()) };
                let done = match parse(&line) {
                    Ok(Line::Quit) => return Ok(()),
                    Ok(Line::Nothing) => Ok(()),
                    Ok(Line::Send { to, text }) => client.send(me, to, text).await.map(drop),
                    Ok(Line::Stock(product)) => client.ask(me, product).await.map(drop),
                    Err(e) => {
                        let _ = writeln!(out, "! {e}");
                        Ok(())
                    }
                };
                if let Err(e) = done {
                    let _ = writeln!(out, "! {}", moebi::report(&e));
                }
                let _ = out.flush();
            }
        }
    }
}
