//! The plots of a run, drawn with `plotters`, each written as SVG and as PNG:
//! - `latency-over-time`: the latency percentiles of each second's events, with the offered,
//!   sent and completed rates beneath;
//! - `percentiles`: the latency distribution, overall and per kind, out to p99.99;
//! - `sweep`: achieved rate and p99 against offered rate, with the knee marked.
//!
//! Text is laid out with a TrueType font read from the machine (DejaVu Sans, Debian's
//! `fonts-dejavu-core`; `MOEBI_FONT` names another).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{quantile_ms, Second, SweepPoint};
use super::LoadError;

const SIZE: (u32, u32) = (1000, 640);
type Drawn = Result<(), Box<dyn Error>>;

/// Where the font may be, in order.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the font the plots' text is laid out with, once.
fn font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let candidates: Vec<PathBuf> = match std::env::var_os("MOEBI_FONT") {
            Some(p) => vec![PathBuf::from(p)],
            None => FONTS.iter().map(PathBuf::from).collect(),
        };
        let Some((path, bytes)) = candidates
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
        else {
            return Err(format!(
                "no font to write the plots' text with (looked for {}): install Debian's fonts-dejavu-core, or set MOEBI_FONT to a .ttf",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
        };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a font plotters can read", path.display()))
    })
    .clone()
}

/// Draws with `$draw(&root, args…)` into `<dir>/<name>.svg` and `<dir>/<name>.png`.
macro_rules! both {
    ($dir:expr, $name:expr, $draw:ident ( $($arg:expr),* )) => {{
        let svg = $dir.join(format!("{}.svg", $name));
        let png = $dir.join(format!("{}.png", $name));
        let failed = |path: &Path, e: Box<dyn Error>| LoadError::Plot {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        font().map_err(|why| LoadError::Plot { path: svg.display().to_string(), why })?;
        (|| -> Drawn {
            let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            $draw(&root, $($arg),*)?;
            root.present()?;
            Ok(())
        })()
        .map_err(|e| failed(&svg, e))?;
        let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        (|| -> Drawn {
            let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
            $draw(&root, $($arg),*)?;
            root.present()?;
            Ok(())
        })()
        .map_err(|e| failed(&png, e))?;
        encode_png(&png, &pixels).map_err(|e| failed(&png, e))?;
        Ok::<[PathBuf; 2], LoadError>([svg, png])
    }};
}

fn encode_png(path: &Path, rgb: &[u8]) -> Drawn {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // A chart is flat colour and thin lines: the adaptive filter and the best compression make
    // it a fraction of the default's size.
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    encoder.write_header()?.write_image_data(rgb)?;
    Ok(())
}

const BANDS: [(&str, RGBColor); 4] = [
    ("p50", RGBColor(31, 119, 180)),
    ("p90", RGBColor(44, 160, 44)),
    ("p99", RGBColor(255, 127, 14)),
    ("max", RGBColor(214, 39, 40)),
];

fn legend<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> Drawn
where
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(at)
        .draw()?;
    Ok(())
}

/// The shade of a region's outage.
const OUTAGE: RGBAColor = RGBAColor(214, 39, 40, 0.15);

fn line_key(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

fn latency_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    seconds: &[Second],
    title: &str,
    outage: Option<(f64, f64)>,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(SIZE.1 * 62 / 100);
    let end = seconds.len().max(1) as f64;
    let top = seconds.iter().map(|s| s.latency[3]).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..end, 0f64..top)?;
    chart
        .configure_mesh()
        .y_desc("latency (ms), events due that second")
        .draw()?;
    if let Some((from, to)) = outage {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(from, 0.0), (to, top)],
                OUTAGE.filled(),
            )))?
            .label("region down")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], OUTAGE.filled()));
    }
    for (i, (name, color)) in BANDS.iter().enumerate() {
        let points = seconds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.latency[3] > 0.0)
            .map(|(t, s)| (t as f64 + 0.5, s.latency[i]));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(line_key(*color));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    let rate_top = seconds
        .iter()
        .map(|s| s.offered.max(s.sent).max(s.completed) as f64)
        .fold(1.0, f64::max)
        * 1.15;
    let mut rates = ChartBuilder::on(&lower)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..end, 0f64..rate_top)?;
    rates
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc("events/s")
        .draw()?;

    type Rate = fn(&Second) -> u64;
    let series: [(&str, RGBColor, Rate); 3] = [
        ("offered", RGBColor(120, 120, 120), |s| s.offered),
        ("sent", RGBColor(31, 119, 180), |s| s.sent),
        ("effects", RGBColor(44, 160, 44), |s| s.completed),
    ];
    for (name, color, value) in series {
        let points = seconds
            .iter()
            .enumerate()
            .map(|(t, s)| (t as f64 + 0.5, value(s) as f64));
        rates
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(line_key(color));
    }
    legend(&mut rates, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// `-log10(1 - q)`: 1 is p90, 2 p99, 3 p99.9.
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

fn percentiles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    histograms: &[(String, &Histogram<u64>)],
    title: &str,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let top = histograms
        .iter()
        .map(|(_, h)| h.max() as f64 / 1000.0)
        .fold(1.0, f64::max)
        * 1.5;
    let bottom = histograms
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(_, h)| h.min() as f64 / 1000.0)
        .fold(top, f64::min)
        .max(0.01)
        / 1.5;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..4.25f64, (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "p0".into(),
            1 => "p90".into(),
            2 => "p99".into(),
            3 => "p99.9".into(),
            4 => "p99.99".into(),
            _ => String::new(),
        })
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .draw()?;
    let palette = [
        RGBColor(0, 0, 0),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
    ];
    for (i, (name, h)) in histograms.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        let color = palette[i % palette.len()];
        let points = (0..=400).map(|k| {
            let q = 1.0 - 10f64.powf(-(k as f64) / 100.0);
            (nines(q.min(0.9999)), quantile_ms(h, q).max(bottom))
        });
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(format!("{name} ({})", h.len()))
            .legend(line_key(color));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// One curve of a sweep: its name and its points by offered rate.
pub struct Curve<'a> {
    /// What ran (`embedded engine`, `python peers`…).
    pub name: &'a str,
    /// Its points.
    pub points: &'a [SweepPoint],
    /// Its knee ([`super::report::knee`]).
    pub knee: Option<(Option<f64>, f64)>,
}

fn sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[Curve<'_>],
    title: &str,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let all = || curves.iter().flat_map(|c| c.points.iter());
    let right = all().map(|p| p.offered).fold(1.0, f64::max) * 1.05;
    let rate_top = all()
        .map(|p| p.offered.max(p.completed))
        .fold(1.0, f64::max)
        * 1.1;
    let p99_top = all().map(|p| p.p99).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0f64..right, 0f64..rate_top)?
        .set_secondary_coord(0f64..right, 0f64..p99_top);
    chart
        .configure_mesh()
        .x_desc("offered (events/s)")
        .y_desc("effects (events/s), solid")
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("p99 latency (ms), dashed")
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(0.0, 0.0), (right, right)],
        RGBColor(190, 190, 190).stroke_width(1),
    ))?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
    ];
    for (i, c) in curves.iter().enumerate() {
        let color = palette[i % palette.len()];
        let rate = c.points.iter().map(|p| (p.offered, p.completed));
        chart
            .draw_series(LineSeries::new(rate, color.stroke_width(2)).point_size(4))?
            .label(format!("{}: effects/s", c.name))
            .legend(line_key(color));
        let p99: Vec<(f64, f64)> = c.points.iter().map(|p| (p.offered, p.p99)).collect();
        chart
            .draw_secondary_series(DashedLineSeries::new(p99, 8, 5, color.stroke_width(2)))?
            .label(format!("{}: p99 ms", c.name))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(2))
            });
        if let Some((_, bad)) = c.knee {
            chart.draw_series(DashedLineSeries::new(
                [(bad, 0.0), (bad, rate_top)],
                4,
                4,
                color.mix(0.6).stroke_width(1),
            ))?;
            let label = match c.knee {
                Some((Some(good), _)) => format!("knee ({}): {good}–{bad}/s ", c.name),
                _ => format!("knee ({}): below {bad}/s ", c.name),
            };
            let style = ("sans-serif", 14)
                .into_font()
                .color(&color)
                .pos(Pos::new(HPos::Right, VPos::Top));
            chart.draw_series(std::iter::once(Text::new(
                label,
                (bad, rate_top * (0.97 - 0.05 * i as f64)),
                style,
            )))?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// Writes `latency-over-time` (with `outage` shaded: seconds since the start) and
/// `percentiles` of a run into `dir`; answers the files.
pub fn run_plots(
    dir: &Path,
    seconds: &[Second],
    histograms: &[(String, &Histogram<u64>)],
    (title, outage): (&str, Option<(f64, f64)>),
) -> Result<Vec<PathBuf>, LoadError> {
    let over_time = both!(
        dir,
        "latency-over-time",
        latency_over_time(seconds, title, outage)
    )?;
    let distribution = both!(dir, "percentiles", percentiles(histograms, title))?;
    Ok(over_time.into_iter().chain(distribution).collect())
}

/// Writes `sweep` into `dir`; answers the files.
pub fn sweep_plot(
    dir: &Path,
    curves: &[Curve<'_>],
    title: &str,
) -> Result<Vec<PathBuf>, LoadError> {
    Ok(both!(dir, "sweep", sweep(curves, title))?.to_vec())
}
