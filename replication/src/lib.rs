//! FerrisDB replication (DESIGN.md §6): Raft per shard as a sans-IO state
//! machine, the per-core Raft log on `ferrisdb_io::log`, and the simulator.
//! Built in a later issue; this crate holds no code yet.
#![forbid(unsafe_code)]
