//! Micro-benchmark of the Raft core's CPU cost: committed entries per second
//! through a simulated 3-node group in one thread, with batching, with and
//! without the invariant checks.
//!
//! `cargo bench -p ferrisdb-replication --bench core` for the figures;
//! without `--bench` (e.g. `cargo test --benches`) it runs tiny parameters.

use ferrisdb_replication::sim::throughput::{Params, run};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let entries = if full { 1_000_000 } else { 5_000 };
    println!("raft core throughput, 3 voters, one thread, {entries} entries per run");
    for batch in [1, 16, 256] {
        for check_invariants in [false, true] {
            let mut rates = Vec::new();
            let mut cpu_rates = Vec::new();
            for _ in 0..if full { 5 } else { 1 } {
                let r = run(Params {
                    entries,
                    batch,
                    payload_bytes: 64,
                    check_invariants,
                });
                rates.push(r.entries_per_sec());
                cpu_rates.extend(r.entries_per_cpu_sec());
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            };
            println!(
                "batch {batch:>4}  invariants {:<5}  {:>10.0} entries/s wall  {:>10.0} entries/s CPU \
                 (medians of {})",
                check_invariants,
                median(&mut rates),
                median(&mut cpu_rates),
                rates.len()
            );
        }
    }
}
