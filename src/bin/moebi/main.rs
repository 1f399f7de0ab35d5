//! `moebi`: play the scenario, send messages, read inboxes, add to and ask the stock, replay
//! Lambda payloads, read dead letters, on the embedded engine or on AWS.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod api;
mod chat;
mod demo;
#[cfg(feature = "load")]
mod live;
mod load;
mod replay;
mod serve;
mod sim;
mod watch;

use moebi::client::Client;
use moebi::engine::local::LocalEngine;
use moebi::engine::{Engine, EngineError};
use moebi::topology::{Function, Topology};

/// The engine allocates for every SDK request, JSON document and SQLite row: mimalloc, not
/// glibc's malloc (docs/performance.md, "Speed, size and cost", has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "moebi",
    version,
    about = "A chat and a product stock over several AWS regions"
)]
pub(crate) struct Cli {
    /// Where the embedded engine keeps its state.
    #[arg(long, global = true, env = "MOEBI_STATE", default_value = ".moebi")]
    pub(crate) state: PathBuf,
    /// The topology file (default: the infra/topology.json moebi was built with).
    #[arg(long, global = true, env = "MOEBI_TOPOLOGY")]
    pub(crate) topology: Option<PathBuf>,
    /// Which engine runs the handlers.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "MOEBI_ENGINE",
        default_value = "local"
    )]
    pub(crate) engine: EngineKind,
    /// The AWS endpoint (an emulator), with `--engine aws`.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Where `moebi login` keeps the signed-in users' sessions (default: <state>/sessions).
    #[arg(long, global = true, env = "MOEBI_SESSIONS")]
    pub(crate) sessions: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EngineKind {
    /// The embedded engine: an embedded DynamoDB and SQLite queues under --state.
    Local,
    /// DynamoDB, EventBridge and SQS (on AWS, or an emulator with --endpoint-url).
    #[cfg(feature = "aws")]
    Aws,
    /// The HTTP API (on AWS, or the rehearsal's emulator), as the user signed in with
    /// `moebi login`: `send`, `inbox`, `stock` and `chat` go through the front door.
    Api,
}

#[derive(Subcommand)]
enum Command {
    /// Play the seed's scenario on a fresh state (<state>/demo) and print a transcript.
    Demo {
        /// Also print the path each cross-region message took (embedded engine).
        #[arg(long)]
        trace: bool,
    },
    /// A live chat session: type `kate: hi` to send; what lands in your inbox appears.
    Chat {
        /// Who you are.
        participant: String,
        /// How often to look at the inbox, in milliseconds (not over the API: pushed there).
        #[arg(long, default_value_t = 500)]
        every_ms: u64,
        /// Over the API: the WebSocket URL (default: the API's region's, from GET /config.json).
        #[arg(long)]
        socket: Option<String>,
        /// Over the API: look at the inbox every `--every-ms` instead of a live socket.
        #[arg(long)]
        poll: bool,
    },
    /// The path an event took: published where, which rules matched, forwarded where, queued,
    /// received how many times, handled by which function with what outcome, and the events
    /// it caused (embedded engine).
    Trace {
        /// The event's id (as `send`, `stock add` print it).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What each function did in each region: records handled, duplicates, failures by kind,
    /// batch size, effect latency, cold starts (embedded engine; on AWS, the metrics).
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sign in to the user pool and keep the session for `--engine api` (the password comes
    /// from MOEBI_PASSWORD or a line of standard input).
    Login(api::Login),
    /// Send a chat message.
    Send {
        /// The sender.
        from: String,
        /// The recipient (a participant or a bot).
        to: String,
        /// The message.
        text: String,
    },
    /// Print a participant's inbox, oldest first.
    Inbox {
        /// Whose inbox.
        participant: String,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add to or ask the stock.
    Stock {
        #[command(subcommand)]
        command: StockCommand,
    },
    /// Feed Lambda payloads (SQS batches or EventBridge events) to the function wired for them.
    Replay {
        /// The function to invoke (default: the one the payload's queue or route names).
        #[arg(long, value_parser = replay::parse_function)]
        function: Option<Function>,
        /// Payload files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List dead letters, with the reason each failed.
    Dlq {
        /// Only this region.
        region: Option<String>,
    },
    /// Run the deterministic simulation: random schedules of every region (duplicates, crashes,
    /// lag, partitions, bad events), each checked for lost and doubled effects.
    Sim(sim::Request),
    /// An open-model load: each event timed from due to effect; percentiles, plots (feature load).
    #[cfg(feature = "load")]
    Load(load::Request),
    /// Serve one region's embedded DynamoDB (<state>/<region>.dynamodb) on a loopback port
    /// until interrupted, with the table created: what `make bench` runs the functions against.
    ServeDynamodb {
        /// The region whose database to serve.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// The table to create if missing.
        #[arg(long, default_value = "moebi")]
        table: String,
    },
    /// Create every bus, rule, queue and table of the topology (AWS engine).
    #[cfg(feature = "aws")]
    Setup,
    /// Poll the queues and invoke the handlers, as Lambda's event source mappings do (AWS engine).
    #[cfg(feature = "aws")]
    Pump {
        /// Keep polling until every queue is empty (otherwise one pass).
        #[arg(long)]
        until_idle: bool,
    },
}

#[derive(Subcommand)]
enum StockCommand {
    /// A store adds units of a product.
    Add {
        /// The store.
        store: String,
        /// The product.
        product: String,
        /// How many units (1 to 1000000).
        #[arg(allow_negative_numbers = true)]
        qty: i64,
    },
    /// Ask how much of a product (or of everything) there is; prints the answer the asker received.
    Status {
        /// The product (default: the whole stock).
        product: Option<String>,
        /// Who asks.
        #[arg(long = "as", value_name = "PARTICIPANT")]
        asker: String,
    },
}

/// A failure of the command: the message for stderr and the exit code.
pub(crate) struct Failure(pub(crate) String, pub(crate) u8);

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure(moebi::report(&e), 1)
    }
}

fn main() -> ExitCode {
    // Usage errors exit 1, as every other error of a command: 2 means "some records failed".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    moebi::init_tracing(false, "error");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("moebi: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            if !message.is_empty() {
                eprintln!("moebi: {message}");
            }
            ExitCode::from(code)
        }
    }
}

pub(crate) fn load_topology(path: Option<&Path>) -> Result<Topology, Failure> {
    match path {
        Some(p) => Topology::load(p).map_err(|e| Failure(moebi::report(&e), 1)),
        None => Ok(Topology::builtin()),
    }
}

pub(crate) async fn open(cli: &Cli, state: &Path) -> Result<Box<dyn Engine>, Failure> {
    let topology = load_topology(cli.topology.as_deref())?;
    match cli.engine {
        EngineKind::Local => Ok(Box::new(LocalEngine::exclusive(state, topology).await?)),
        EngineKind::Api => Err(Failure(
            "this command needs an engine (--engine local or aws); through the API, use send, inbox, stock or chat".into(),
            1,
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

async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Demo { trace } => demo::command(&cli, *trace).await,
        Command::Chat {
            participant,
            every_ms,
            socket,
            poll,
        } => watch::chat(&cli, participant, *every_ms, socket.as_deref(), *poll).await,
        Command::Trace { id, json } => watch::trace(&cli, id, *json).await,
        Command::Stats { json } => watch::stats(&cli, *json).await,
        Command::Login(login) => api::login(&cli, login).await,
        Command::Send { from, to, text } if cli.engine == EngineKind::Api => {
            api::send(&cli, from, to, text).await
        }
        Command::Inbox { participant, json } if cli.engine == EngineKind::Api => {
            api::inbox(&cli, participant, *json).await
        }
        Command::Stock {
            command:
                StockCommand::Add {
                    store,
                    product,
                    qty,
                },
        } if cli.engine == EngineKind::Api => api::add_stock(&cli, store, product, *qty).await,
        Command::Stock {
            command: StockCommand::Status { product, asker },
        } if cli.engine == EngineKind::Api => api::ask_stock(&cli, asker, product.as_deref()).await,
        Command::Send { from, to, text } => {
            let engine = open(&cli, &cli.state).await?;
            let id = Client::new(engine.as_ref()).send(from, to, text).await?;
            println!("sent {id}");
            Ok(())
        }
        Command::Inbox { participant, json } => inbox(&cli, participant, *json).await,
        Command::Stock { command } => stock(&cli, command).await,
        Command::Replay { function, files } => {
            let engine = open(&cli, &cli.state).await?;
            replay::replay(engine.as_ref(), *function, files).await
        }
        Command::Dlq { region } => watch::dlq(&cli, region.as_deref()).await,
        Command::Sim(request) => {
            let topology = load_topology(cli.topology.as_deref())?;
            sim::command(&topology, *request).map_err(|e| Failure(e, 1))
        }
        #[cfg(feature = "load")]
        Command::Load(request) => load::command(&cli, request).await,
        Command::ServeDynamodb { region, table } => serve::dynamodb(&cli, region, table).await,
        #[cfg(feature = "aws")]
        Command::Setup => {
            let created = aws_engine(&cli, None).await?.setup().await?;
            println!("{created}");
            Ok(())
        }
        #[cfg(feature = "aws")]
        Command::Pump { until_idle } => {
            let engine = aws_engine(&cli, None).await?;
            let report = if *until_idle {
                engine.run_until_idle().await?
            } else {
                engine.pump_once().await?
            };
            println!(
                "handled {} record(s), {} failure(s), {} to a DLQ",
                report.handled, report.failed, report.dead
            );
            Ok(())
        }
    }
}

/// The AWS engine the flags describe, within `namespace` when given.
#[cfg(feature = "aws")]
pub(crate) async fn aws_engine(
    cli: &Cli,
    namespace: Option<&str>,
) -> Result<moebi::engine::aws::AwsEngine, Failure> {
    let topology = load_topology(cli.topology.as_deref())?;
    let mut config = moebi::engine::aws::AwsConfig::for_cli(cli.endpoint_url.clone());
    if let Some(ns) = namespace {
        config = config.with_namespace(ns);
    }
    Ok(moebi::engine::aws::AwsEngine::connect(config, topology).await?)
}

async fn inbox(cli: &Cli, participant: &str, json: bool) -> Result<(), Failure> {
    let engine = open(cli, &cli.state).await?;
    let entries = Client::new(engine.as_ref()).inbox(participant).await?;
    for e in &entries {
        if json {
            println!("{}", serde_json::to_string(e).expect("entries serialize"));
        } else {
            println!("{e}");
        }
    }
    Ok(())
}

async fn stock(cli: &Cli, command: &StockCommand) -> Result<(), Failure> {
    let engine = open(cli, &cli.state).await?;
    let client = Client::new(engine.as_ref());
    match command {
        StockCommand::Add {
            store,
            product,
            qty,
        } => {
            let id = client.add_stock(store, product, *qty).await?;
            println!("added {qty} {product} from {store} ({id})");
        }
        StockCommand::Status { product, asker } => {
            println!("{}", client.ask_stock(asker, product.as_deref()).await?);
        }
    }
    Ok(())
}
