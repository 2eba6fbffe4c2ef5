//! The deterministic simulator: N nodes each running Raft groups, a simulated
//! network and disk, virtual time and a client workload, all in one thread
//! and all decided by one seed. A run has a fault phase (safety checked after
//! every event) and a heal phase (the cluster must converge). See
//! `docs/replication.md` for the fault model.

pub mod checker;
mod clients;
mod event;
mod heal;
mod membership;
mod nemesis;
pub mod network;
pub mod node;
pub mod plan;
mod run;
pub mod storage;
pub mod throughput;
pub mod workload;

pub use run::{Failure, SimOptions, Stats, run, run_catching};

/// The command that replays one seed exactly.
pub fn replay_command(seed: u64) -> String {
    format!(
        "cargo run --release -p ferrisdb-replication --bin ferrisdb-sim -- --seeds 1 --seed {seed}"
    )
}
