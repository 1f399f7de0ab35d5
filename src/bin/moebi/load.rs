//! `moebi load`: an open-model load on the embedded engine, its end-to-end latency and plots.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use moebi::contract::{Participant, Store};
use moebi::load::plot::{self, Curve};
use moebi::load::report::{knee, SweepPoint};
use moebi::load::{self, Mix, Plan, Progress, Report};

use crate::{Cli, EngineKind, Failure};

/// What `moebi load` is asked.
#[derive(Debug, Clone, clap::Args)]
pub struct Request {
    /// Events per second offered.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long events are offered (`10s`, `500ms`, `2m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Offered rates to run one after another (`100,200,400`), each on a fresh state: the
    /// sweep plot and the knee. Replaces --rate.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    sweep: Vec<f64>,
    /// The kinds' weights: chat (to a participant), moebi (to the bot), add, ask.
    #[arg(long, default_value_t = Mix::default())]
    mix: Mix,
    /// Who sends and asks (default: every participant of the topology).
    #[arg(long, value_delimiter = ',')]
    participants: Vec<String>,
    /// Who adds (default: every store).
    #[arg(long, value_delimiter = ',')]
    stores: Vec<String>,
    /// How many products the adds and questions spread over.
    #[arg(long, default_value_t = 5)]
    products: u32,
    /// The seed of who sends what to whom (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the report, the plots and the runs' states go (default: <state>/load).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The sweep's name in its plot (default: what it drives).
    #[arg(long)]
    label: Option<String>,
    /// Another sweep to draw beside this one, as NAME=FILE (a sweep.json an earlier sweep
    /// wrote: the same load against other functions, say).
    #[arg(long, value_name = "NAME=FILE")]
    beside: Vec<String>,
    /// Through the API: how long to wait for the last effects' stamps after the last answer.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    settle: Duration,
    /// A file that, once the run is over, says when a region was down (`{"start_ms": …,
    /// "end_ms": …}`, ms since the epoch; `make drill` writes it): the plot marks it and the
    /// report gives the latency before, during and after it.
    #[arg(long, value_name = "FILE")]
    outage: Option<PathBuf>,
}

/// What a run drives.
enum Target {
    /// The embedded engine, on a fresh state per run.
    Embedded,
    /// The HTTP APIs, as the users signed in under `sessions`; the stamps read from each
    /// region's table.
    Api {
        sessions: PathBuf,
        stamps: load::api::Stamps,
        settle: Duration,
    },
    /// The AWS engine against an emulator: buses, queues and tables of `moebi setup`, the
    /// event source mappings pumped by the engine; the stamps read from each region's table.
    Aws {
        engine: Box<moebi::engine::aws::AwsEngine>,
        stamps: load::api::Stamps,
        settle: Duration,
    },
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Embedded => "the embedded engine",
            Target::Api { .. } => "the HTTP APIs",
            Target::Aws { .. } => "the AWS engine",
        }
    }
}

/// Each region's table, read through the SDK (at `--endpoint-url` when given).
async fn stamps(cli: &Cli, topology: &moebi::topology::Topology) -> load::api::Stamps {
    let endpoint = cli.endpoint_url.clone();
    let table = moebi::engine::aws::AwsConfig::for_cli(endpoint.clone())
        .names
        .table;
    let mut clients = std::collections::HashMap::new();
    for region in &topology.regions {
        let config = moebi::sdk::load_default(region.as_str(), endpoint.as_deref()).await;
        clients.insert(region.clone(), aws_sdk_dynamodb::Client::new(&config));
    }
    load::api::Stamps { table, clients }
}

/// Each name of `list` through `parse`, a bad one named with its option.
fn names<T>(
    option: &str,
    list: &[String],
    parse: fn(&str) -> Result<T, moebi::contract::ContractError>,
) -> Result<Vec<T>, Failure> {
    list.iter()
        .map(|n| parse(n))
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| Failure(format!("--{option}: {}", moebi::report(&e)), 1))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, as 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Runs the request, prints the report and writes the plots; fails when any event was lost
/// or doubled, whatever the percentiles.
pub async fn command(cli: &Cli, req: &Request) -> Result<(), Failure> {
    let topology = crate::load_topology(cli.topology.as_deref())?;
    let target = match cli.engine {
        EngineKind::Local => Target::Embedded,
        EngineKind::Api => Target::Api {
            sessions: crate::api::sessions(cli),
            stamps: stamps(cli, &topology).await,
            settle: req.settle,
        },
        EngineKind::Aws if cli.endpoint_url.is_none() => {
            return Err(Failure(
                "moebi --engine aws load pumps the queues itself, which needs an emulator (--endpoint-url); on AWS, load goes through the HTTP APIs (--engine api, as the users signed in with moebi login)".into(),
                1,
            ))
        }
        EngineKind::Aws => Target::Aws {
            engine: Box::new(crate::aws_engine(cli, None).await?),
            stamps: stamps(cli, &topology).await,
            settle: req.settle,
        },
    };
    let seed = req.seed.unwrap_or_else(|| fastrand::u64(..));
    let out = req.out.clone().unwrap_or_else(|| cli.state.join("load"));
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure(format!("cannot create {}: {e}", out.display()), 1))?;
    let rates = if req.sweep.is_empty() {
        vec![req.rate]
    } else {
        req.sweep.clone()
    };
    let mut plan = Plan {
        rate: rates[0],
        duration: req.duration,
        mix: req.mix,
        participants: names("participants", &req.participants, Participant::parse)?,
        stores: names("stores", &req.stores, Store::parse)?,
        products: req.products,
        seed,
    };
    println!(
        "moebi load: {}, {} for {:?} at {} event(s)/s, mix {} over {} product(s), seed {seed} (--seed {seed} replays who sends what)",
        target.name(),
        if rates.len() > 1 { "a sweep" } else { "an open model" },
        req.duration,
        rates.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "),
        req.mix,
        req.products
    );
    let mut points = Vec::new();
    let mut unbalanced = 0;
    for rate in &rates {
        plan.rate = *rate;
        let dir = if rates.len() > 1 {
            out.join(format!("rate-{rate}"))
        } else {
            out.clone()
        };
        let report = one_run(&plan, &topology, &target, (&dir, req.outage.as_deref())).await?;
        if !report.balanced() {
            unbalanced += 1;
        }
        points.push(SweepPoint::of(&report));
    }
    if rates.len() > 1 {
        let label = req
            .label
            .clone()
            .unwrap_or_else(|| target.name().trim_start_matches("the ").to_owned());
        sweep_report(&out, &points, &label, &req.beside)?;
    }
    if unbalanced > 0 {
        return Err(Failure(
            format!(
                "{unbalanced} run(s) lost or doubled effects (above): the figures do not count"
            ),
            1,
        ));
    }
    Ok(())
}

async fn one_run(
    plan: &Plan,
    topology: &moebi::topology::Topology,
    target: &Target,
    (dir, outage): (&Path, Option<&Path>),
) -> Result<Report, Failure> {
    let failed = |e: load::LoadError| Failure(moebi::report(&e), 1);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display()), 1))?;
    let terminal = std::io::stderr().is_terminal();
    let total = (plan.rate * plan.duration.as_secs_f64()).floor() as u64;
    let mut progress = |p: Progress| {
        let line = format!(
            "  {:>5.1} s: sent {}/{total}, {} {}",
            p.elapsed.as_secs_f64(),
            p.sent,
            p.done_what,
            p.done
        );
        let mut err = std::io::stderr();
        let _ = if terminal {
            write!(err, "\r{line}   ")
        } else {
            writeln!(err, "{line}")
        };
    };
    let report = match target {
        Target::Embedded => {
            load::on_embedded(plan, topology, &dir.join("state"), &mut progress).await
        }
        Target::Api {
            sessions,
            stamps,
            settle,
        } => {
            let sender = load::Sender::Api(sessions);
            load::from_stamps(plan, topology, sender, (stamps, *settle), &mut progress).await
        }
        Target::Aws {
            engine,
            stamps,
            settle,
        } => {
            let sender = load::Sender::Bus(engine);
            load::from_stamps(plan, topology, sender, (stamps, *settle), &mut progress).await
        }
    }
    .map_err(failed)?;
    if terminal {
        eprintln!();
    }
    println!("\n== {} event(s)/s for {:?}", plan.rate, plan.duration);
    let window = outage.map(read_window).transpose()?;
    let mut text = report.render();
    if let Some(w) = &window {
        text.push_str(&report.render_phases(w));
    }
    print!("{text}");
    let mut kinds: Vec<(String, &hdrhistogram::Histogram<u64>)> =
        vec![("all".into(), &report.overall)];
    kinds.extend(report.kinds.iter().map(|(k, h)| (k.name().to_owned(), h)));
    let title = format!(
        "moebi load: {}, {} events/s offered",
        target.name().trim_start_matches("the "),
        plan.rate
    );
    let marked = window.as_ref().map(|w| report.seconds_of(w));
    let files = plot::run_plots(dir, &report.seconds, &kinds, (&title, marked)).map_err(failed)?;
    let summary = report.summary(window.as_ref()).to_string();
    for (name, body) in [
        ("report.txt", text.as_str()),
        ("summary.json", summary.as_str()),
    ] {
        std::fs::write(dir.join(name), body)
            .map_err(|e| Failure(format!("cannot write {name} in {}: {e}", dir.display()), 1))?;
    }
    println!("plots: {}", shown(&files));
    Ok(report)
}

/// The outage `--outage` names: it must be there once the run is over.
fn read_window(path: &Path) -> Result<load::phases::Window, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("--outage {}: {e}", path.display()), 1))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure(
            format!(
                "--outage {}: not {{\"start_ms\", \"end_ms\"}}: {e}",
                path.display()
            ),
            1,
        )
    })
}

fn knee_line(label: &str, found: Option<(Option<f64>, f64)>) -> String {
    match found {
        Some((Some(good), bad)) => format!("knee ({label}): kept up at {good}/s, not at {bad}/s (effects under 95% of offered, or p99 over 4× the lightest load's)"),
        Some((None, bad)) => format!("knee ({label}): below {bad}/s, the lightest rate of the sweep: it did not keep up"),
        None => format!("knee ({label}): not reached: every rate kept up (effects at 95% of offered or more, p99 within 4× the lightest load's)"),
    }
}

/// A sweep as `sweep.json` keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sweep {
    label: String,
    points: Vec<SweepPoint>,
}

fn sweep_report(
    out: &Path,
    points: &[SweepPoint],
    label: &str,
    beside: &[String],
) -> Result<(), Failure> {
    println!(
        "\n== the sweep ({label})\n{:>9} {:>9} {:>10} {:>9} {:>9}",
        "offered/s", "sent/s", "effects/s", "p50 ms", "p99 ms"
    );
    for p in points {
        println!(
            "{:>9.1} {:>9.1} {:>10.1} {:>9.2} {:>9.2}",
            p.offered, p.sent, p.completed, p.p50, p.p99
        );
    }
    let failed = |what: String| Failure(what, 1);
    let mine = Sweep {
        label: label.to_owned(),
        points: points.to_vec(),
    };
    let path = out.join("sweep.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&mine).expect("a sweep serializes"),
    )
    .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
    let mut sweeps = vec![mine];
    for other in beside {
        let (name, file) = other
            .split_once('=')
            .ok_or_else(|| failed(format!("--beside {other:?}: expected NAME=FILE")))?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| failed(format!("--beside {name}: cannot read {file}: {e}")))?;
        let mut sweep: Sweep = serde_json::from_str(&text)
            .map_err(|e| failed(format!("--beside {name}: {file} is no sweep.json: {e}")))?;
        sweep.label = name.to_owned();
        sweeps.push(sweep);
    }
    let knees: Vec<_> = sweeps.iter().map(|s| knee(&s.points)).collect();
    for (s, k) in sweeps.iter().zip(&knees) {
        println!("{}", knee_line(&s.label, *k));
    }
    let curves: Vec<Curve<'_>> = sweeps
        .iter()
        .zip(&knees)
        .map(|(s, k)| Curve {
            name: &s.label,
            points: &s.points,
            knee: *k,
        })
        .collect();
    let files = plot::sweep_plot(
        out,
        &curves,
        "moebi load: offered rate against effects and p99",
    )
    .map_err(|e| Failure(moebi::report(&e), 1))?;
    println!(
        "plot: {}, the sweep's figures: {}",
        shown(&files),
        path.display()
    );
    Ok(())
}

fn shown(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
