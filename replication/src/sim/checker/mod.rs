//! Safety checkers, one per property; each returns a description of the
//! first violation it sees.

pub mod election_safety;
pub mod leader_completeness;
pub mod linearizability;
pub mod log_matching;
pub mod state_machine_safety;

pub use crate::rng::mix;
use crate::types::Entry;

/// A stable 64-bit digest of an entry's payload (FNV-1a, then mixed).
pub fn digest(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// A digest of an entry's kind and payload.
pub fn entry_digest(e: &Entry) -> u64 {
    mix(digest(&e.data) ^ u64::from(e.kind.code()))
}
