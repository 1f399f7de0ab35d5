//! `moebi chat`, `moebi trace`, `moebi stats`: watching moebi run.

use async_trait::async_trait;

use moebi::api::ApiClient;
use moebi::client::Client;
use moebi::contract::Region;
use moebi::engine::local::LocalEngine;
use moebi::engine::{Engine, EngineError};
use moebi::ports::{Cause, InboxEntry};

use crate::chat::Chatter;
use crate::{open, Cli, EngineKind, Failure};

/// The engine the flags describe, opened anew for each step of a chat session: on the
/// embedded engine the state is held only for the step, so other terminals take their turns.
struct Engines<'a>(&'a Cli);

impl Engines<'_> {
    async fn connect(&self) -> Result<Box<dyn Engine>, EngineError> {
        let cli = self.0;
        let topology = match &cli.topology {
            Some(p) => moebi::topology::Topology::load(p)?,
            None => moebi::topology::Topology::builtin(),
        };
        match cli.engine {
            #[cfg(feature = "aws")]
            EngineKind::Aws => {
                let config = moebi::engine::aws::AwsConfig::for_cli(cli.endpoint_url.clone());
                Ok(Box::new(
                    moebi::engine::aws::AwsEngine::connect(config, topology).await?,
                ))
            }
            _ => Ok(Box::new(
                LocalEngine::exclusive(&cli.state, topology).await?,
            )),
        }
    }
}

#[async_trait]
impl Chatter for Engines<'_> {
    async fn send(&mut self, me: &str, to: &str, text: &str) -> Result<(), Cause> {
        let engine = self.connect().await?;
        Client::new(engine.as_ref()).send(me, to, text).await?;
        Ok(())
    }

    async fn ask(&mut self, me: &str, product: Option<&str>) -> Result<(), Cause> {
        let engine = self.connect().await?;
        Client::new(engine.as_ref()).ask_stock(me, product).await?;
        Ok(())
    }

    async fn inbox(&mut self, me: &str) -> Result<Vec<InboxEntry>, Cause> {
        let engine = self.connect().await?;
        Ok(Client::new(engine.as_ref()).inbox(me).await?)
    }
}

/// Over the HTTP API: each step a call to the front door, as the signed-in participant.
#[async_trait]
impl Chatter for ApiClient {
    async fn send(&mut self, me: &str, to: &str, text: &str) -> Result<(), Cause> {
        ApiClient::send(self, me, to, text).await?;
        Ok(())
    }

    async fn ask(&mut self, me: &str, product: Option<&str>) -> Result<(), Cause> {
        ApiClient::ask(self, me, product).await?;
        Ok(())
    }

    async fn inbox(&mut self, _me: &str) -> Result<Vec<InboxEntry>, Cause> {
        Ok(ApiClient::inbox(self, None).await?)
    }
}

/// `moebi chat`: over the API live on a socket (unless `poll`), else looking every `every_ms`.
pub async fn chat(
    cli: &Cli,
    participant: &str,
    every_ms: u64,
    socket: Option<&str>,
    poll: bool,
) -> Result<(), Failure> {
    if matches!(cli.engine, EngineKind::Api) && !poll {
        return crate::live::chat(cli, participant, socket).await;
    }
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut stdout = std::io::stdout();
    let every = std::time::Duration::from_millis(every_ms.max(50));
    let mut chatter: Box<dyn Chatter> = match cli.engine {
        EngineKind::Api => Box::new(crate::api::client(cli, participant)?),
        _ => Box::new(Engines(cli)),
    };
    crate::chat::session(chatter.as_mut(), participant, stdin, &mut stdout, every)
        .await
        .map_err(|e| Failure(moebi::report(e.as_ref()), 1))
}

pub async fn trace(cli: &Cli, id: &str, json: bool) -> Result<(), Failure> {
    let engine = open(cli, &cli.state).await?;
    match engine.trace(id).await? {
        None => Err(Failure(
            format!("no event {id} in the journal of {}", cli.state.display()),
            1,
        )),
        Some(t) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&t).expect("a trace serializes")
            );
            Ok(())
        }
        Some(t) => {
            print!("{}", t.render());
            Ok(())
        }
    }
}

pub async fn stats(cli: &Cli, json: bool) -> Result<(), Failure> {
    let engine = open(cli, &cli.state).await?;
    let stats = engine.stats().await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("stats serialize")
        );
    } else {
        print!("{}", moebi::engine::trace::render_stats(&stats));
    }
    Ok(())
}

/// `moebi dlq`: the dead letters of one region, or of all, with the reason each failed.
pub async fn dlq(cli: &Cli, region: Option<&str>) -> Result<(), Failure> {
    let engine = open(cli, &cli.state).await?;
    let region = region
        .map(Region::parse)
        .transpose()
        .map_err(|e| Failure(e.to_string(), 1))?;
    let letters = engine.dead_letters(region.as_ref()).await?;
    if letters.is_empty() {
        println!("no dead letters");
    }
    for d in letters {
        println!(
            "{} {} {} (received {} times): {}",
            d.region, d.queue, d.message_id, d.receive_count, d.reason
        );
    }
    Ok(())
}
