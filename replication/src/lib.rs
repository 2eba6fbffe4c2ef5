//! FerrisDB replication (DESIGN.md §6): Raft per shard as a sans-IO state
//! machine ([`raft`]), and the deterministic simulator that tests it
//! ([`sim`]). See `docs/replication.md`.
#![forbid(unsafe_code)]

pub mod core_log;
pub mod raft;
pub mod rng;
pub mod sim;
pub mod types;

pub use raft::message::{Body, Message};
pub use raft::{Config, Membership, Proposed, Raft, RaftError, Ready, Restored, Role};
pub use types::{Entry, EntryKind, GroupId, HardState, LogIndex, NodeId, Payload, Snapshot, Term};
