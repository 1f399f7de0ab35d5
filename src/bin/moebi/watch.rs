//! `moebi chat`, `moebi trace`, `moebi stats`: watching moebi run.

use async_trait::async_trait;

use moebi::engine::local::LocalEngine;
use moebi::engine::{Engine, EngineError};

use crate::{open, Cli, EngineKind, Failure};

/// The engine the flags describe, opened anew for each step of a chat session: on the
/// embedded engine the state is held only for the step, so other terminals take their turns.
struct Connect<'a>(&'a Cli);

#[async_trait]
impl crate::chat::Connect for Connect<'_> {
    async fn connect(&self) -> Result<Box<dyn Engine>, EngineError> {
        let cli = self.0;
        let topology = match &cli.topology {
            Some(p) => moebi::topology::Topology::load(p)?,
            None => moebi::topology::Topology::builtin(),
        };
        match cli.engine {
            EngineKind::Local => Ok(Box::new(
                LocalEngine::exclusive(&cli.state, topology).await?,
            )),
            #[cfg(feature = "aws")]
            EngineKind::Aws => {
                let config = moebi::engine::aws::AwsConfig::for_cli(cli.endpoint_url.clone());
                Ok(Box::new(
                    moebi::engine::aws::AwsEngine::connect(config, topology).await?,
                ))
            }
        }
    }
}

pub async fn chat(cli: &Cli, participant: &str, every_ms: u64) -> Result<(), Failure> {
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut stdout = std::io::stdout();
    let every = std::time::Duration::from_millis(every_ms.max(50));
    Ok(crate::chat::session(&Connect(cli), participant, stdin, &mut stdout, every).await?)
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
