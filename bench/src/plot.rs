//! `ferrisdb-bench plot RESULTS... -o DIR`: pictures of `ycsb --json`
//! results, each as PNG and SVG.
//!
//! - `<label>-<phase>-latency`: the latency percentile spectrum of every
//!   operation type, HdrHistogram style: the x axis is 1/(1-p) on a log
//!   scale (labelled 0%, 90%, 99%, 99.9%, ...) so the tail gets the room;
//!   response time solid, and in an open loop service time dashed.
//! - `<label>-<phase>-timeline`: throughput and p99 per interval over time.
//! - `overlay-latency` (two or more results): the response-time spectrum
//!   of all operations of each result's last phase, one line per result.

use crate::ycsb::report::{LatencySummary, PhaseReport, Report};
use anyhow::{Context, Result, anyhow};
use clap::Args;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Font family every text uses (the DejaVu Sans compiled in).
const FONT: &str = "sans-serif";
/// tab10: distinct, colour-blind friendly enough for up to ten lines.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Series with at most this many points also get a dot per point.
const MARKED_POINTS_MAX: usize = 120;
/// Largest picture side, in pixels.
const SIDE_MAX: u32 = 8000;

#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// JSON results written by `ferrisdb-bench ycsb --json`.
    #[arg(required = true, value_name = "RESULTS")]
    pub results: Vec<PathBuf>,
    /// Directory for the pictures (created if missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    #[arg(long, default_value_t = 700)]
    pub height: u32,
}

pub fn run(args: &PlotArgs) -> Result<()> {
    if !(200..=SIDE_MAX).contains(&args.width) || !(200..=SIDE_MAX).contains(&args.height) {
        anyhow::bail!("--width and --height must be 200..={SIDE_MAX}");
    }
    let reports = args
        .results
        .iter()
        .map(|p| Report::read_json(p))
        .collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let size = (args.width, args.height);
    let mut written = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for report in &reports {
        // Two results with one label must not overwrite each other's files.
        let base = crate::ycsb::file_safe(&report.label);
        let same = used.iter().filter(|n| **n == base).count();
        used.push(base.clone());
        let name = if same == 0 {
            base
        } else {
            format!("{base}-{}", same + 1)
        };
        for phase in &report.phases {
            let file = |what: &str| args.out.join(format!("{name}-{}-{what}", phase.phase));
            let spectrum = Spectrum::of_phase(&report.label, phase);
            written.extend(render(&spectrum, &file("latency"), size)?);
            let timeline = Timeline {
                title: format!(
                    "{} - {}: throughput and p99 per {} ms",
                    report.label, phase.phase, phase.interval_ms
                ),
                phase,
            };
            written.extend(render(&timeline, &file("timeline"), size)?);
        }
    }
    if reports.len() > 1 {
        let overlay = Spectrum::overlay(&reports);
        written.extend(render(&overlay, &args.out.join("overlay-latency"), size)?);
    }
    // A closed pipe (`plot ... | head`) is no failure: the files are written.
    let mut out = std::io::stdout().lock();
    for path in &written {
        if writeln!(out, "{}", path.display()).is_err() {
            break;
        }
    }
    Ok(())
}

/// Something drawn the same way on any backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws `chart` to `<stem>.png` and `<stem>.svg`.
fn render(chart: &impl Chart, stem: &Path, size: (u32, u32)) -> Result<Vec<PathBuf>> {
    register_font()?;
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw_to(
        chart,
        BitMapBackend::new(&png, size).into_drawing_area(),
        &png,
    )?;
    draw_to(chart, SVGBackend::new(&svg, size).into_drawing_area(), &svg)?;
    Ok(vec![png, svg])
}

/// Draws `chart` on `root` and writes it out to `path` (the backend's file).
fn draw_to<DB: DrawingBackend>(
    chart: &impl Chart,
    root: DrawingArea<DB, Shift>,
    path: &Path,
) -> Result<()> {
    chart
        .draw(&root)
        .map_err(|e| anyhow!("draw {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| anyhow!("write {}: {e}", path.display()))
}

fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| anyhow!("the compiled-in DejaVu Sans font does not load"));
    });
    result
}

/// One line of a spectrum chart: (1/(1-p), milliseconds) points.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    dashed: bool,
    /// Dots at the points (time series, one per interval).
    dots: bool,
}

/// The points of a percentile spectrum: x = 1/(1-p); the 100% point
/// (infinite x) goes at x = the sample count, where the next point would be.
fn spectrum_points(s: &LatencySummary) -> Vec<(f64, f64)> {
    s.spectrum
        .iter()
        .map(|&(q, us)| {
            let x = if q < 1.0 {
                1.0 / (1.0 - q)
            } else {
                s.count.max(2) as f64
            };
            (x.max(1.0), us.max(1) as f64 / 1000.0)
        })
        .collect()
}

/// `x` = 1/(1-p) at a power of ten as a percentile: 1 → 0%, 10 → 90%,
/// 100 → 99%, 1000 → 99.9%.
pub fn percentile_label(x: f64) -> String {
    let nines = x.max(1.0).log10().round() as usize;
    match nines {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        n => format!("99.{}%", "9".repeat(n - 2)),
    }
}

/// Milliseconds with three significant digits and no trailing zeros.
fn ms_label(v: f64) -> String {
    if v <= 0.0 {
        return "0".into();
    }
    let decimals = (2 - v.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

struct Spectrum {
    title: String,
    lines: Vec<Line>,
}

impl Spectrum {
    fn of_phase(label: &str, phase: &PhaseReport) -> Spectrum {
        let mut lines = Vec::new();
        for (i, op) in phase.operations_by_type.iter().enumerate() {
            if op.ok.response.count == 0 {
                continue;
            }
            let color = COLORS[i % COLORS.len()];
            let what = if phase.open_loop() { " response" } else { "" };
            lines.push(Line {
                label: format!("{}{what} ({} ops)", op.name, op.ok.response.count),
                points: spectrum_points(&op.ok.response),
                color,
                dashed: false,
                dots: false,
            });
            if phase.open_loop() {
                lines.push(Line {
                    label: format!("{} service", op.name),
                    points: spectrum_points(&op.ok.service),
                    color,
                    dashed: true,
                    dots: false,
                });
            }
        }
        let mode = match phase.target_ops_per_sec {
            Some(t) => format!("open loop at {t:.0} ops/s"),
            None => "closed loop".into(),
        };
        Spectrum {
            title: format!(
                "{label} - {}: latency by percentile ({} threads, {mode}, {:.0} ops/s)",
                phase.phase, phase.threads, phase.throughput_ops_per_sec
            ),
            lines,
        }
    }

    fn overlay(reports: &[Report]) -> Spectrum {
        let lines = reports
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.phases.last().map(|p| (i, r, p)))
            .map(|(i, r, p)| Line {
                label: format!(
                    "{} {} ({:.0} ops/s)",
                    r.label, p.phase, p.throughput_ops_per_sec
                ),
                points: spectrum_points(&p.overall.response),
                color: COLORS[i % COLORS.len()],
                dashed: false,
                dots: false,
            })
            .collect();
        Spectrum {
            title: "response time by percentile, all operations".into(),
            lines,
        }
    }
}

impl Chart for Spectrum {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let points = self.lines.iter().flat_map(|l| l.points.iter());
        let x_max = points.clone().map(|p| p.0).fold(100.0f64, f64::max);
        let decades = x_max.log10().ceil() as i32;
        let x_top = 10f64.powi(decades);
        let (y_min, y_max) = log_range(points.map(|p| p.1));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 20))
            .margin(15)
            .margin_right(45)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (1.0..x_top)
                    .log_scale()
                    .with_key_points((0..=decades).map(|d| 10f64.powi(d)).collect()),
                (y_min..y_max).log_scale(),
            )
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| ms_label(*y))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        for line in &self.lines {
            draw_line(&mut chart, line)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// Draws `line` (solid or dashed) with its legend entry.
fn draw_line<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    line: &Line,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = line.color.stroke_width(2);
    let color = line.color;
    if line.dashed {
        chart
            .draw_series(DashedLineSeries::new(
                line.points.iter().copied(),
                6,
                4,
                style,
            ))
            .map_err(|e| e.to_string())?
            .label(&line.label)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (6, 0)], style)
                    + PathElement::new(vec![(10, 0), (16, 0)], style)
            });
    } else {
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), style))
            .map_err(|e| e.to_string())?
            .label(&line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
    }
    if line.dots && line.points.len() <= MARKED_POINTS_MAX {
        // A short series (a run of a few intervals) stays visible as dots.
        let dots = line
            .points
            .iter()
            .map(|p| Circle::new(*p, 3, color.filled()));
        chart.draw_series(dots).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The legend of `chart`'s labelled series, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// A log-scale axis range around positive `values`, with room above and
/// below; a fixed range when there is none.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi > 0.0 {
        (lo * 0.8, hi * 1.5)
    } else {
        (0.001, 1.0)
    }
}

struct Timeline<'a> {
    title: String,
    phase: &'a PhaseReport,
}

impl Chart for Timeline<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&self.title, (FONT, 20))
            .map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 / 2);
        // The phase's last point covers what completed after the last full
        // interval; a sliver of an interval gives a meaningless rate.
        let full = self.phase.interval_ms as f64 / 1000.0;
        let mut series: Vec<_> = self.phase.series.iter().collect();
        if let [.., before, last] = series[..]
            && last.t_secs - before.t_secs < full / 2.0
        {
            series.pop();
        }
        let t_max = series.iter().map(|p| p.t_secs).fold(1.0f64, f64::max);
        let target = self.phase.target_ops_per_sec;
        let rate_max = series
            .iter()
            .map(|p| p.ops_per_sec)
            .chain(target)
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..t_max, 0.0..rate_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ops/s")
            .light_line_style(RGBColor(235, 235, 235))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        let throughput = Line {
            label: "throughput".into(),
            points: series.iter().map(|p| (p.t_secs, p.ops_per_sec)).collect(),
            color: COLORS[0],
            dashed: false,
            dots: true,
        };
        draw_line(&mut chart, &throughput)?;
        if let Some(t) = target {
            let line = Line {
                label: format!("target {t:.0} ops/s"),
                points: vec![(0.0, t), (t_max, t)],
                color: COLORS[7],
                dashed: true,
                dots: false,
            };
            draw_line(&mut chart, &line)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;

        let ms = |us: Option<u64>| us.map(|v| v.max(1) as f64 / 1000.0);
        let mut lines = vec![Line {
            label: "p99 response".into(),
            points: series
                .iter()
                .filter_map(|p| Some((p.t_secs, ms(p.p99_us)?)))
                .collect(),
            color: COLORS[3],
            dashed: false,
            dots: true,
        }];
        if self.phase.open_loop() {
            lines.push(Line {
                label: "p99 service".into(),
                points: series
                    .iter()
                    .filter_map(|p| Some((p.t_secs, ms(p.p99_service_us)?)))
                    .collect(),
                color: COLORS[2],
                dashed: true,
                dots: true,
            });
        } else {
            lines[0].label = "p99".into();
        }
        let (lo, hi) = log_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(&bottom)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..t_max, (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("p99 latency (ms)")
            .light_line_style(RGBColor(235, 235, 235))
            .y_label_formatter(&|v| ms_label(*v))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        for line in &lines {
            draw_line(&mut chart, line)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        let got: Vec<String> = [1.0, 10.0, 100.0, 1000.0, 1e5]
            .iter()
            .map(|x| percentile_label(*x))
            .collect();
        assert_eq!(got, ["0%", "90%", "99%", "99.9%", "99.999%"]);
    }

    #[test]
    fn millisecond_labels_keep_three_digits() {
        let got: Vec<String> = [0.0123, 0.5, 1.0, 2.5, 12.345, 1234.6]
            .iter()
            .map(|v| ms_label(*v))
            .collect();
        assert_eq!(got, ["0.0123", "0.5", "1", "2.5", "12.3", "1235"]);
    }

    #[test]
    fn spectrum_points_map_percentiles_to_the_log_axis() {
        let summary = LatencySummary {
            count: 1000,
            spectrum: vec![(0.0, 100), (0.9, 200), (0.99, 1500), (1.0, 9000)],
            ..LatencySummary::default()
        };
        let p = spectrum_points(&summary);
        assert_eq!(p[0], (1.0, 0.1));
        assert!((p[1].0 - 10.0).abs() < 1e-9 && (p[2].0 - 100.0).abs() < 1e-6);
        assert_eq!(p[3], (1000.0, 9.0));
    }
}
