//! Command-line flags of `ferrisdb-bench ycsb`, named after YCSB's client
//! (`-P FILE`, `-p key=value`, threads, target) plus the node flags shared
//! with `net`.

use super::properties::{Origin, Properties};
use super::runner::Phase;
use crate::target::NodeArgs;
use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;

/// Upper bound on `--interval-ms`.
const INTERVAL_MS_MAX: u64 = 60_000;
/// Lower bound on `--interval-ms`: finer intervals cost a sample each.
const INTERVAL_MS_MIN: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressArg {
    /// A bar when standard error is a terminal, else plain lines.
    Auto,
    /// Plain status lines every --status-secs.
    Lines,
    Off,
}

/// `ferrisdb-bench ycsb load|run`: YCSB's core workloads through
/// `ferrisdb-client`.
///
/// Properties come from the `-P` files in order, then the `-p` overrides,
/// then `--threads` and `--target`. With `--spawn-node`, the node starts
/// empty, so `run` first loads it (both phases are reported).
#[derive(Debug, Clone, Args, Serialize)]
pub struct YcsbArgs {
    #[arg(value_enum)]
    pub phase: Phase,
    /// A YCSB workload (property) file, e.g. bench/workloads/workloada;
    /// later files override earlier ones.
    #[arg(short = 'P', value_name = "FILE")]
    pub workload_files: Vec<PathBuf>,
    /// A property over the files' (e.g. `-p recordcount=100000`).
    #[arg(short = 'p', value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Worker tasks, each with one operation in flight (YCSB's client
    /// threads; `-p threadcount=T`). Default 1.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Open loop at this many operations per second over all workers;
    /// latencies are then also measured from each operation's intended
    /// start (`-p target=OPS`). Without it, a closed loop.
    #[arg(long, value_name = "OPS")]
    pub target: Option<f64>,
    #[command(flatten)]
    #[serde(flatten)]
    pub node: NodeArgs,
    /// Where a spawned node's data directory is made (and removed).
    #[arg(long = "data-dir", default_value = "./bench-data")]
    pub data_dir: PathBuf,
    /// Write the JSON summary (for `ferrisdb-bench plot`) here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write HdrHistogram percentile distributions (.hgrm) into this directory.
    #[arg(long = "hgrm-dir", value_name = "DIR")]
    pub hgrm_dir: Option<PathBuf>,
    /// Name of this run in the JSON, the .hgrm files and plots
    /// (default: the workload file names).
    #[arg(long)]
    pub label: Option<String>,
    /// Seed of every random stream (key choice, operation mix, values).
    #[arg(long, default_value_t = 301)]
    pub seed: u64,
    /// Length of one interval of the throughput/p99 time series.
    #[arg(long = "interval-ms", default_value_t = 1000)]
    pub interval_ms: u64,
    /// Seconds between plain status lines (when not drawing a bar).
    #[arg(long = "status-secs", default_value_t = 5.0)]
    pub status_secs: f64,
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Stop a phase after this many failed operations (the results so far
    /// are printed, and the exit status is 1).
    #[arg(long = "max-errors", default_value_t = 1000)]
    pub max_errors: u64,
    /// Deadline of one request, in seconds.
    #[arg(long = "request-timeout-secs", default_value_t = 30.0)]
    pub request_timeout_secs: f64,
}

impl YcsbArgs {
    /// Rejects flag values outside their limits.
    pub fn validate(&self) -> Result<(), String> {
        self.node.validate()?;
        if !(INTERVAL_MS_MIN..=INTERVAL_MS_MAX).contains(&self.interval_ms) {
            return Err(format!(
                "--interval-ms must be {INTERVAL_MS_MIN}..={INTERVAL_MS_MAX}"
            ));
        }
        if !(self.status_secs >= 0.1 && self.status_secs <= 3600.0) {
            return Err("--status-secs must be in 0.1..=3600".into());
        }
        if self.max_errors == 0 {
            return Err("--max-errors must be at least 1".into());
        }
        if !(self.request_timeout_secs >= 0.001 && self.request_timeout_secs <= 600.0) {
            return Err("--request-timeout-secs must be in 0.001..=600".into());
        }
        Ok(())
    }

    /// The properties: files, then `-p`, then the flags.
    pub fn properties(&self) -> Result<Properties> {
        let mut p = Properties::new();
        for file in &self.workload_files {
            p.load_file(file)?;
        }
        self.apply_overrides(&mut p)?;
        Ok(p)
    }

    /// `-p`, then the flags, over `p`.
    fn apply_overrides(&self, p: &mut Properties) -> Result<()> {
        for o in &self.properties {
            p.set_override(o)?;
        }
        if let Some(t) = self.threads {
            p.set(
                "threadcount".into(),
                t.to_string(),
                Origin::Flag("--threads"),
            );
        }
        if let Some(t) = self.target {
            p.set("target".into(), t.to_string(), Origin::Flag("--target"));
        }
        Ok(())
    }

    /// The name of the run: `--label`, else the workload files' names.
    pub fn label(&self) -> String {
        if let Some(l) = &self.label {
            return l.clone();
        }
        let names: Vec<String> = self
            .workload_files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if names.is_empty() {
            "ycsb".into()
        } else {
            names.join("+")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    fn parse(extra: &[&str]) -> YcsbArgs {
        let mut argv = vec!["ferrisdb-bench", "ycsb"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Ycsb(a) => a,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn ycsb_style_flags() {
        let a = parse(&[
            "run",
            "-P",
            "a",
            "-P",
            "b",
            "-p",
            "recordcount=10",
            "-p",
            "fieldcount=2",
            "--threads",
            "8",
            "--target",
            "500",
            "--spawn-node",
        ]);
        assert_eq!(a.phase, Phase::Run);
        assert_eq!(a.workload_files, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(a.properties, ["recordcount=10", "fieldcount=2"]);
        assert_eq!((a.threads, a.target), (Some(8), Some(500.0)));
        assert!(a.validate().is_ok());
        assert_eq!(a.label(), "a+b");
        let mut p = Properties::new();
        p.parse_text("threadcount=2\nrecordcount=5\n", std::path::Path::new("f"))
            .expect("parses");
        a.apply_overrides(&mut p).expect("applies");
        assert_eq!(p.get("recordcount").map(|(v, _)| v), Some("10"));
        assert_eq!(
            p.get("threadcount").map(|(v, o)| (v, o.to_string())),
            Some(("8", "--threads".into()))
        );
        assert_eq!(p.get("target").map(|(v, _)| v), Some("500"));
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            vec!["load", "--spawn-node", "--interval-ms=5"],
            vec!["load", "--spawn-node", "--max-errors=0"],
            vec!["load", "--spawn-node", "--status-secs=0"],
            vec!["load", "--spawn-node", "--lanes=0"],
            vec!["load", "--endpoint=127.0.0.1:1"],
            vec!["load"],
        ] {
            assert!(parse(&bad).validate().is_err(), "{bad:?} accepted");
        }
    }
}
