//! The text outputs: YCSB's result block (`[OVERALL], RunTime(ms), ...`,
//! one section per operation with its percentiles and return codes) and
//! HdrHistogram's percentile distribution (`.hgrm`) files.

use super::measure::{HISTOGRAM_SIGFIG, Recorder};
use super::report::{LatencyPair, LatencySummary, OpReport, PhaseReport};
use super::workload::Operation;
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Percentiles of each section (YCSB prints 95 and 99 by default; more
/// are asked of it with `hdrhistogram.percentiles`).
const PERCENTILES: [f64; 5] = [50.0, 95.0, 99.0, 99.9, 99.99];

/// YCSB's result block for one phase: a section per operation (and per
/// failed operation) with its service times; in an open loop then the
/// same sections again as `Intended-` sections with the response times
/// (YCSB's `measurement.interval=both`).
pub fn ycsb_block(phase: &PhaseReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "[OVERALL], RunTime(ms), {:.0}", phase.runtime_ms);
    let _ = writeln!(
        s,
        "[OVERALL], Throughput(ops/sec), {}",
        phase.throughput_ops_per_sec
    );
    // Service times, then in an open loop the response times.
    let sides: &[bool] = if phase.open_loop() {
        &[false, true]
    } else {
        &[false]
    };
    for &intended in sides {
        let prefix = if intended { "Intended-" } else { "" };
        for op in &phase.operations_by_type {
            let name = format!("{prefix}{}", op.name);
            // The return codes go under the first section of an operation.
            let returns = (!intended).then_some(op);
            section(&mut s, &name, side(&op.ok, intended), returns);
            if let Some(failed) = &op.failed {
                section(
                    &mut s,
                    &format!("{name}-FAILED"),
                    side(failed, intended),
                    None,
                );
            }
        }
    }
    s
}

/// Response times (from the intended start) or service times.
fn side(l: &LatencyPair, intended: bool) -> &LatencySummary {
    if intended { &l.response } else { &l.service }
}

fn section(s: &mut String, name: &str, l: &LatencySummary, returns: Option<&OpReport>) {
    let _ = writeln!(s, "[{name}], Operations, {}", l.count);
    let _ = writeln!(s, "[{name}], AverageLatency(us), {}", l.mean_us);
    let _ = writeln!(s, "[{name}], MinLatency(us), {}", l.min_us);
    let _ = writeln!(s, "[{name}], MaxLatency(us), {}", l.max_us);
    let values = [l.p50_us, l.p95_us, l.p99_us, l.p999_us, l.p9999_us];
    for (p, v) in PERCENTILES.iter().zip(values) {
        let _ = writeln!(s, "[{name}], {}PercentileLatency(us), {v}", ordinal(*p));
    }
    if let Some(op) = returns {
        for (code, n) in &op.returns {
            let _ = writeln!(s, "[{name}], Return={code}, {n}");
        }
    }
}

/// YCSB's `ordinal`: `50th`, `99th`, `99.9`, `99.99` (no suffix on fractions).
fn ordinal(p: f64) -> String {
    if p.fract() != 0.0 {
        return format!("{p}");
    }
    let n = p as u64;
    let suffix = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// One line per operation type with failures, for standard error.
pub fn error_lines(phase: &PhaseReport) -> Vec<String> {
    phase
        .operations_by_type
        .iter()
        .filter(|op| !op.errors.is_empty())
        .map(|op| {
            let classes: Vec<String> = op.errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
            format!(
                "{} {}: failures: {}; first: {}",
                phase.phase,
                op.name,
                classes.join(", "),
                op.first_error.as_deref().unwrap_or("?")
            )
        })
        .collect()
}

/// HdrHistogram's percentile distribution of `h` (microseconds), with
/// values printed in milliseconds, as `outputPercentileDistribution(out,
/// 5, 1000.0)` prints it; HdrHistogram's plotter reads these files.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let digits = usize::from(HISTOGRAM_SIGFIG);
    let ms = |us: f64| us / 1000.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(super::report::SPECTRUM_TICKS_PER_HALF) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = ms(v.value_iterated_to() as f64);
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:>12.digits$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:>12.digits$} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean(), h.stdev())
    };
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.digits$}, StdDeviation   = {:>12.digits$}]",
        ms(mean),
        ms(stdev)
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.digits$}, Total count    = {:>12}]",
        ms(h.max() as f64),
        h.len()
    );
    let sub_buckets = (2 * 10u64.pow(u32::from(HISTOGRAM_SIGFIG))).next_power_of_two();
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets
    );
    s
}

/// Writes `<dir>/<label>-<phase>-<OP>.hgrm` (service times) for every
/// operation type that ran, and in an open loop also
/// `...-Intended-<OP>.hgrm` (response times); returns the paths.
pub fn write_hgrm_files(
    dir: &Path,
    label: &str,
    phase: &PhaseReport,
    totals: &Recorder,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, h: &Histogram<u64>| -> Result<()> {
        let path = dir.join(format!("{}-{}-{name}.hgrm", file_safe(label), phase.phase));
        std::fs::write(&path, hgrm(h)).with_context(|| format!("write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    write("OVERALL".into(), &totals.overall.service)?;
    if phase.open_loop() {
        write("Intended-OVERALL".into(), &totals.overall.response)?;
    }
    for op in Operation::ALL {
        let stats = &totals.ops[op.index()];
        if stats.ok.service.is_empty() {
            continue;
        }
        write(op.name().to_string(), &stats.ok.service)?;
        if phase.open_loop() {
            write(format!("Intended-{}", op.name()), &stats.ok.response)?;
        }
    }
    Ok(written)
}

/// `label` with anything but letters, digits, `-`, `_` and `.` made `_`.
pub fn file_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_are_ycsbs() {
        let got: Vec<String> = [50.0, 95.0, 99.0, 99.9, 99.99, 1.0, 2.0, 3.0, 11.0, 21.0]
            .iter()
            .map(|p| ordinal(*p))
            .collect();
        assert_eq!(
            got,
            [
                "50th", "95th", "99th", "99.9", "99.99", "1st", "2nd", "3rd", "11th", "21st"
            ]
        );
    }

    #[test]
    fn hgrm_has_hdrhistograms_layout() {
        let mut h = super::super::measure::histogram();
        for v in 1..=10_000u64 {
            super::super::measure::record(&mut h, v);
        }
        let text = hgrm(&h);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            lines.next(),
            Some("       0.001 0.000000000000          1           1.00")
        );
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .skip(1)
            .collect();
        let last = rows.last().expect("rows");
        assert!(
            last.starts_with("      10.007 1.000000000000      10000"),
            "{last}"
        );
        assert_eq!(last.split_whitespace().count(), 3);
        assert!(
            text.contains("#[Max     =       10.007, Total count    =        10000]"),
            "{text}"
        );
        assert!(text.contains("SubBuckets     =         2048]"));
        let counts: Vec<u64> = rows
            .iter()
            .map(|r| {
                r.split_whitespace()
                    .nth(2)
                    .and_then(|c| c.parse().ok())
                    .expect("count")
            })
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "cumulative counts");
        assert!(
            hgrm(&super::super::measure::histogram()).contains("Total count    =            0]")
        );
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("workloada run/1 x"), "workloada_run_1_x");
    }
}
