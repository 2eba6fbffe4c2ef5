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
            for _ in 0..if full { 3 } else { 1 } {
                let r = run(Params {
                    entries,
                    batch,
                    payload_bytes: 64,
                    check_invariants,
                });
                rates.push(r.entries_per_sec());
            }
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            println!(
                "batch {batch:>4}  invariants {:<5}  {:>12.0} entries/s (median of {})",
                check_invariants,
                median,
                rates.len()
            );
        }
    }
}
