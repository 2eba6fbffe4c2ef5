//! Runs the deterministic Raft simulator over a range of seeds.
//!
//! `ferrisdb-sim --seeds N --seed S` runs seeds S, S+1, ..., S+N-1 (S
//! defaults to a random start, printed). `--seeds 1 --seed S` replays one
//! seed exactly. Exits non-zero on the first failure, printing the seed and
//! the command that replays it.

use clap::Parser;
use ferrisdb_replication::sim::{SimOptions, Stats, run_catching};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(about = "Deterministic simulation of FerrisDB's Raft")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (each seed runs in one thread, deterministically).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Fix the fault phase length in milliseconds (default: drawn per seed).
    #[arg(long)]
    fault_ms: Option<u64>,
    /// Print each seed's statistics.
    #[arg(long)]
    verbose: bool,
    /// The churn profile (three voters, one entry per message, frequent
    /// crashes and partition changes) instead of the general mix.
    #[arg(long)]
    churn: bool,
}

#[derive(Default)]
struct Totals {
    seeds: u64,
    events: u64,
    ops_ok: u64,
    ops_unknown: u64,
    ops_failed: u64,
    elections: u64,
    crashes: u64,
    transfers: u64,
    conf_changes: u64,
    leader_removals: u64,
    conf_changes_refused: u64,
    compactions: u64,
    snapshots_installed: u64,
    inconclusive: u64,
    virtual_us: u64,
}

impl Totals {
    fn add(&mut self, s: &Stats) {
        self.seeds += 1;
        self.events += s.events;
        self.ops_ok += s.ops_ok;
        self.ops_unknown += s.ops_unknown;
        self.ops_failed += s.ops_failed;
        self.elections += s.elections;
        self.crashes += s.crashes;
        self.transfers += s.transfers;
        self.conf_changes += s.conf_changes;
        self.leader_removals += s.leader_removals;
        self.conf_changes_refused += s.conf_changes_refused;
        self.compactions += s.compactions;
        self.snapshots_installed += s.snapshots_installed;
        self.inconclusive += s.linearizability.inconclusive as u64;
        self.virtual_us += s.virtual_us;
    }
}

fn main() {
    let args = Args::parse();
    let start_seed = args.seed.unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
    });
    println!(
        "ferrisdb-sim: seeds {start_seed}..{} ({} seeds, {} jobs)",
        start_seed + args.seeds - 1,
        args.seeds,
        args.jobs
    );
    let opts = SimOptions {
        fault_us: args.fault_ms.map(|ms| ms * 1000),
        churn: args.churn,
        ..SimOptions::default()
    };
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let totals = Mutex::new(Totals::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= args.seeds {
                        return;
                    }
                    let seed = start_seed + n;
                    match run_catching(seed, &opts) {
                        Ok(stats) => {
                            if args.verbose {
                                println!("{stats:?}");
                            }
                            let mut t = totals.lock().expect("no panics while locked");
                            t.add(&stats);
                            if t.seeds % 1000 == 0 {
                                println!(
                                    "  {} seeds clean ({:.0} s)",
                                    t.seeds,
                                    started.elapsed().as_secs_f64()
                                );
                            }
                        }
                        Err(failure) => {
                            if !failed.swap(true, Ordering::Relaxed) {
                                eprintln!("FAILED: {failure}");
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    let t = totals.into_inner().expect("no panics while locked");
    println!(
        "{} seeds clean in {:.1} s wall ({:.1} s virtual): {} events, {} ops ok, {} unknown, \
         {} failed, {} elections, {} crashes, {} transfers, {} membership changes ({} removing \
         the leader, {} refused), {} compactions, {} snapshots installed, {} registers \
         inconclusive",
        t.seeds,
        started.elapsed().as_secs_f64(),
        t.virtual_us as f64 / 1e6,
        t.events,
        t.ops_ok,
        t.ops_unknown,
        t.ops_failed,
        t.elections,
        t.crashes,
        t.transfers,
        t.conf_changes,
        t.leader_removals,
        t.conf_changes_refused,
        t.compactions,
        t.snapshots_installed,
        t.inconclusive
    );
    if failed.load(Ordering::Relaxed) {
        std::process::exit(1);
    }
}
