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
    if cli.engine != EngineKind::Local {
        return Err(Failure(
            "moebi load drives the embedded engine (--engine local); the AWS engine and the HTTP API are not yet targets (issue 27)".into(),
            1,
        ));
    }
    let topology = crate::load_topology(cli.topology.as_deref())?;
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
        "moebi load: the embedded engine, {} for {:?} at {} event(s)/s, mix {} over {} product(s), seed {seed} (--seed {seed} replays who sends what)",
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
        let report = one_run(&plan, &topology, &dir).await?;
        if !report.balanced() {
            unbalanced += 1;
        }
        points.push(SweepPoint::of(&report));
    }
    if rates.len() > 1 {
        sweep_report(&out, &points)?;
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
    dir: &Path,
) -> Result<Report, Failure> {
    let failed = |e: load::LoadError| Failure(moebi::report(&e), 1);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display()), 1))?;
    let terminal = std::io::stderr().is_terminal();
    let total = (plan.rate * plan.duration.as_secs_f64()).floor() as u64;
    let mut progress = |p: Progress| {
        let line = format!(
            "  {:>5.1} s: sent {}/{total}, records handled or replicated {}",
            p.elapsed.as_secs_f64(),
            p.sent,
            p.handled
        );
        let mut err = std::io::stderr();
        let _ = if terminal {
            write!(err, "\r{line}   ")
        } else {
            writeln!(err, "{line}")
        };
    };
    let report = load::on_embedded(plan, topology, &dir.join("state"), &mut progress)
        .await
        .map_err(failed)?;
    if terminal {
        eprintln!();
    }
    println!("\n== {} event(s)/s for {:?}", plan.rate, plan.duration);
    print!("{}", report.render());
    let mut kinds: Vec<(String, &hdrhistogram::Histogram<u64>)> =
        vec![("all".into(), &report.overall)];
    kinds.extend(report.kinds.iter().map(|(k, h)| (k.name().to_owned(), h)));
    let title = format!(
        "moebi load: embedded engine, {} events/s offered",
        plan.rate
    );
    let files = plot::run_plots(dir, &report.seconds, &kinds, &title).map_err(failed)?;
    std::fs::write(dir.join("report.txt"), report.render()).map_err(|e| {
        Failure(
            format!("cannot write the report in {}: {e}", dir.display()),
            1,
        )
    })?;
    println!("plots: {}", shown(&files));
    Ok(report)
}

fn sweep_report(out: &Path, points: &[SweepPoint]) -> Result<(), Failure> {
    println!(
        "\n== the sweep\n{:>9} {:>9} {:>10} {:>9} {:>9}",
        "offered/s", "sent/s", "effects/s", "p50 ms", "p99 ms"
    );
    for p in points {
        println!(
            "{:>9.1} {:>9.1} {:>10.1} {:>9.2} {:>9.2}",
            p.offered, p.sent, p.completed, p.p50, p.p99
        );
    }
    let found = knee(points);
    match found {
        Some((Some(good), bad)) => println!("knee: kept up at {good}/s, not at {bad}/s (effects under 95% of offered, or p99 over 4× the lightest load's)"),
        Some((None, bad)) => println!("knee: below {bad}/s, the lightest rate of the sweep: it did not keep up"),
        None => println!("knee: not reached: every rate kept up (effects at 95% of offered or more, p99 within 4× the lightest load's)"),
    }
    let curves = [Curve {
        name: "embedded engine",
        points,
        knee: found,
    }];
    let files = plot::sweep_plot(
        out,
        &curves,
        "moebi load: offered rate against effects and p99",
    )
    .map_err(|e| Failure(moebi::report(&e), 1))?;
    println!("plot: {}", shown(&files));
    Ok(())
}

fn shown(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
