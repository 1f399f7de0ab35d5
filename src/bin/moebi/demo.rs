//! The seed's scenario, played on any engine with a transcript: what `moebi demo` (and so
//! `make run`) prints.

use moebi::client::Client;
use moebi::engine::{Engine, EngineError};

use crate::{Cli, EngineKind, Failure};

/// Plays the scenario; `place` says where it runs (the state directory, or the namespace).
/// With `trace`, each message's path follows it (the engine's journal, `moebi trace`).
pub async fn play(engine: &dyn Engine, place: &str, trace: bool) -> Result<(), EngineError> {
    let show_path = |id: moebi::contract::EventId| async move {
        if trace {
            path(engine, id.as_str()).await;
        }
    };
    let client = Client::new(engine);
    let t = engine.topology();
    println!("moebi demo: the seed's scenario {place}");
    cast(t);
    println!("\n1. alex sends \"hi\" to kate");
    let id = client.send("alex", "kate", "hi").await?;
    show(&client, "kate").await?;
    show_path(id).await;
    println!("\n2. kate answers \"how are you?\"");
    let id = client.send("kate", "alex", "how are you?").await?;
    show(&client, "alex").await?;
    show_path(id).await;
    println!("\n3. alex sends \"hi\" to moebi");
    let id = client.send("alex", "moebi", "hi").await?;
    show(&client, "moebi").await?;
    show(&client, "alex").await?;
    show(&client, "kate").await?;
    show_path(id).await;
    println!("\n4. the stores add products");
    for (store, product, qty) in [
        ("store-1", "nike", 30),
        ("store-3", "adidas", 35),
        ("store-3", "nike", 5),
    ] {
        client.add_stock(store, product, qty).await?;
        println!("   {store} adds {product} x{qty}");
    }
    println!("\n5. kate asks the stock");
    for product in [Some("nike"), Some("adidas"), Some("puma"), None] {
        let answer = client.ask_stock("kate", product).await?;
        println!("   {:<10} -> {answer}", product.unwrap_or("everything"));
    }
    let dead = engine.dead_letters(None).await?;
    println!("\ndead letters: {}", dead.len());
    Ok(())
}

/// Who lives in which region.
fn cast(t: &moebi::topology::Topology) {
    for region in &t.regions {
        let mut who: Vec<String> = t
            .participants
            .iter()
            .filter(|p| &p.home == region)
            .map(|p| p.name.to_string())
            .collect();
        who.extend(
            t.bots
                .iter()
                .filter(|b| &b.home == region)
                .map(|b| format!("{} (bot: \"{}\")", b.name, b.answer.as_str())),
        );
        who.extend(
            t.stores
                .iter()
                .filter(|s| &s.home == region)
                .map(|s| s.name.to_string()),
        );
        println!("  {region}: {}", who.join(", "));
    }
}

/// Prints the path of event `id`, indented under the step; what the engine cannot tell, it says.
async fn path(engine: &dyn Engine, id: &str) {
    println!("   its path:");
    let text = match engine.trace(id).await {
        Ok(Some(t)) => t.render(),
        Ok(None) => format!("no event {id} in the journal\n"),
        Err(e) => format!("{}\n", moebi::report(&e)),
    };
    for line in text.lines() {
        println!("     {line}");
    }
}

async fn show(client: &Client<'_>, who: &str) -> Result<(), EngineError> {
    let entries = client.inbox(who).await?;
    println!("   {who}'s inbox:");
    if entries.is_empty() {
        println!("     (empty)");
    }
    for e in &entries {
        println!("     {e}");
    }
    Ok(())
}

/// `moebi demo`: the scenario on a fresh state (or namespace), with its transcript.
pub(crate) async fn command(cli: &Cli, trace: bool) -> Result<(), Failure> {
    match cli.engine {
        EngineKind::Local => {
            let dir = cli.state.join("demo");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| Failure(format!("cannot clear {}: {e}", dir.display()), 1))?;
            }
            let engine = crate::open(cli, &dir).await?;
            let place = format!("on the embedded engine (state in {})", dir.display());
            Ok(play(engine.as_ref(), &place, trace).await?)
        }
        #[cfg(feature = "aws")]
        EngineKind::Aws => {
            // A fresh namespace each time, so the story starts from empty inboxes.
            let ns = format!("demo-{}", &moebi::contract::EventId::random().as_str()[..8]);
            let engine = crate::aws_engine(cli, Some(&ns)).await?;
            engine.setup().await?;
            let place = format!("on the AWS engine (namespace {ns})");
            Ok(play(&engine, &place, trace).await?)
        }
        EngineKind::Api => Err(Failure(
            "the demo plays every participant and store; through the API a person signs in as one (moebi login)".into(),
            1,
        )),
    }
}
