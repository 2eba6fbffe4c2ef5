//! `ferrisdb-bench ycsb load|run`: the YCSB core workloads (A–F and any
//! mix of read, update, insert, scan and read-modify-write over uniform,
//! zipfian, latest or hotspot key choice) through `ferrisdb-client`
//! against a node, with YCSB's output, a JSON summary with time series,
//! and HdrHistogram percentile files.
//!
//! ```text
//! ferrisdb-bench ycsb run --spawn-node -P bench/workloads/workloada -p recordcount=100000 \
//!     -p operationcount=1000000 --threads 64 --json a.json
//! ferrisdb-bench ycsb load --endpoint 127.0.0.1:7400 --insecure -P bench/workloads/workloadb
//! ferrisdb-bench ycsb run  --endpoint 127.0.0.1:7400 --insecure -P bench/workloads/workloadb --target 20000
//! ```

pub mod args;
mod generator;
mod measure;
mod progress;
mod properties;
mod record;
pub mod report;
mod runner;
mod store;
#[cfg(test)]
mod tests;
mod text;
mod workload;

pub use text::file_safe;

use anyhow::{Context, Result, bail};
use args::YcsbArgs;
use ferrisdb_client::Client;
use generator::ZIPFIAN_CONSTANT;
use progress::Progress;
use record::KeyNamer;
use report::{FORMAT_VERSION, KIND, PhaseReport, Report};
use runner::{Phase, PhasePlan};
use std::sync::Arc;
use std::time::Duration;
use workload::{CoreWorkload, InsertOrder, LengthDistribution, RequestDistribution};

/// Key names sorted to find a spawned node's shard boundaries: all of them
/// up to this many, else an evenly spaced sample of key numbers.
const SPLIT_SAMPLE_MAX: u64 = 1_000_000;

/// Runs `ferrisdb-bench ycsb`.
pub fn run(args: &YcsbArgs) -> Result<()> {
    args.validate().map_err(anyhow::Error::msg)?;
    let properties = args.properties()?;
    let workload = Arc::new(CoreWorkload::from_properties(&properties)?);
    let threads = workload.thread_count.unwrap_or(1);
    let phases = match args.phase {
        Phase::Load => vec![Phase::Load],
        Phase::Run if args.node.spawn_node.is_some() => vec![Phase::Load, Phase::Run],
        Phase::Run => vec![Phase::Run],
    };
    if phases.contains(&Phase::Run)
        && workload.operation_count == 0
        && workload.max_execution_time.is_none()
    {
        bail!(
            "operationcount is 0 or not set: give -p operationcount=N (or -p maxexecutiontime=SECONDS)"
        );
    }
    let namer = KeyNamer {
        order: workload.insert_order,
        zero_padding: workload.zero_padding as usize,
    };
    let label = args.label();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    println!("Command line: {command_line}");
    print_preamble(&label, &workload, threads, args);

    let splits = split_keys(&workload, namer, args.node.cores);
    let (node, target) = crate::target::open(&args.node, &args.data_dir, &splits)?;
    let runtime = crate::target::runtime(args.node.client_threads)?;
    let ran = runtime.block_on(async {
        let timeout = Duration::from_secs_f64(args.request_timeout_secs);
        let mut clients: Vec<Client> = Vec::with_capacity(args.node.connections);
        for _ in 0..args.node.connections {
            clients.push(crate::target::connect(&target, &args.node, threads, timeout).await?);
        }
        let mut reports = Vec::new();
        for phase in &phases {
            // The load that precedes `run` on a spawned node only prepares
            // the data: it runs closed loop whatever --target says.
            let preparing = *phase == Phase::Load && args.phase == Phase::Run;
            let target_ops = workload.target.filter(|_| !preparing);
            let plan = PhasePlan {
                phase: *phase,
                threads,
                target: target_ops,
                max_time: workload.max_execution_time.filter(|_| *phase == Phase::Run),
                max_errors: args.max_errors,
                interval: Duration::from_millis(args.interval_ms),
                recorder_shards: args.node.client_threads,
                seed: args.seed,
                handle_interrupt: true,
            };
            println!(
                "=== {} phase: {label} ({} threads, {}) against {} ===",
                phase.name(),
                threads,
                target_ops.map_or("closed loop".to_string(), |t| format!(
                    "open loop at {t} ops/s"
                )),
                target.endpoint
            );
            let total = match phase {
                Phase::Load => Some(workload.insert_count),
                Phase::Run => Some(workload.operation_count).filter(|n| *n > 0),
            };
            let mut progress = Progress::new(
                phase.name(),
                total,
                args.progress,
                Duration::from_secs_f64(args.status_secs),
            );
            let outcome =
                runner::run_phase(workload.clone(), namer, &plan, &clients, &mut progress).await?;
            let report = PhaseReport::new(&plan, &outcome);
            print!("{}", text::ycsb_block(&report));
            for line in text::error_lines(&report) {
                eprintln!("{line}");
            }
            if let Some(dir) = &args.hgrm_dir {
                let files = text::write_hgrm_files(dir, &label, &report, &outcome.totals)?;
                println!(
                    "# {} percentile distribution files in {}",
                    files.len(),
                    dir.display()
                );
            }
            let stopped = report.stopped.is_some();
            reports.push(report);
            if stopped {
                break;
            }
        }
        anyhow::Ok(reports)
    });
    // Stop a spawned node whatever happened above.
    let closed = crate::target::close(node);
    let reports = ran?;
    let early = reports
        .iter()
        .find_map(|r| Some((r.phase.clone(), r.stopped.clone()?)));
    closed?;

    if let Some(path) = &args.json {
        let doc = Report {
            kind: KIND.into(),
            format_version: FORMAT_VERSION,
            label,
            command_line,
            workload_files: args
                .workload_files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            endpoint: target.endpoint.to_string(),
            node_cores: target.node_cores,
            client_threads: args.node.client_threads,
            connections: args.node.connections,
            lanes: args.node.lanes,
            combine_writes: Some(args.node.combine_writes),
            machine: serde_json::to_value(crate::sysinfo::machine(&args.data_dir))
                .context("describe the machine")?,
            phases: reports,
        };
        crate::report::write_json(path, &doc)?;
    }
    if let Some((phase, why)) = early {
        bail!("the {phase} phase ended early: {why}");
    }
    Ok(())
}

fn print_preamble(label: &str, w: &CoreWorkload, threads: usize, args: &YcsbArgs) {
    let request = match w.request {
        RequestDistribution::Uniform => "uniform".to_string(),
        RequestDistribution::Zipfian => {
            format!("zipfian (scrambled, constant {ZIPFIAN_CONSTANT})")
        }
        RequestDistribution::Latest => "latest".to_string(),
        RequestDistribution::Hotspot {
            data_fraction,
            opn_fraction,
        } => format!("hotspot ({opn_fraction} of operations on {data_fraction} of the keys)"),
    };
    println!(
        "Workload:   {label}: read {:.3} update {:.3} insert {:.3} scan {:.3} read-modify-write {:.3}; \
         requests {request}",
        w.mix[0], w.mix[1], w.mix[2], w.mix[3], w.mix[4]
    );
    let lengths = &w.field_lengths;
    let field_bytes = match lengths.distribution {
        LengthDistribution::Constant => format!("{} bytes", lengths.max),
        LengthDistribution::Uniform => format!("{}..={} bytes (uniform)", lengths.min, lengths.max),
        LengthDistribution::Zipfian => format!("{}..={} bytes (zipfian)", lengths.min, lengths.max),
    };
    println!(
        "Records:    {} (keys user<{}>), {} fields of {field_bytes}; operations {}{}",
        w.record_count,
        match w.insert_order {
            InsertOrder::Hashed => "fnv-hash",
            InsertOrder::Ordered => "number",
        },
        w.field_count,
        w.operation_count,
        if w.data_integrity {
            "; reads verify the data (dataintegrity)"
        } else {
            ""
        }
    );
    println!(
        "Client:     {threads} threads over {} connection(s) x {} lanes, {} client thread(s), combine writes {}; {}; node writes are durable",
        args.node.connections,
        args.node.lanes,
        args.node.client_threads,
        args.node.combine_writes,
        w.target.map_or("closed loop".to_string(), |t| format!(
            "open loop, target {t} ops/s"
        ))
    );
}

/// Shard boundaries for a spawned node: the key names of the records to
/// load, cut into `cores` equal parts (YCSB's hashed keys do not spread
/// evenly over the first bytes, so the node's default split would not do).
fn split_keys(w: &CoreWorkload, namer: KeyNamer, cores: usize) -> Vec<String> {
    if cores < 2 {
        return Vec::new();
    }
    let count = w.insert_count.min(SPLIT_SAMPLE_MAX);
    let mut names: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            namer.name(w.insert_start + (i as u128 * w.insert_count as u128 / count as u128) as u64)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let parts = cores as u64;
    let mut splits: Vec<String> = (1..parts)
        .map(|i| names[(i * names.len() as u64 / parts) as usize].clone())
        .map(|k| String::from_utf8(k).expect("key names are ASCII"))
        .collect();
    splits.dedup();
    splits
}
