//! Group membership (Raft §6; Ongaro's thesis §4.3): who votes, who only
//! receives the log, and — while a change is in flight — the joint
//! configuration C_old,new, in which every decision (election, commitment,
//! read confirmation, lease, check-quorum) needs a majority of the outgoing
//! voters C_old *and* a majority of the incoming voters C_new.
//!
//! A configuration travels in the log as the payload of an
//! [`EntryKind::ConfChange`](crate::types::EntryKind) entry. Layout
//! (little-endian, version 1):
//!
//! ```text
//!   0  u8   version = 1
//!   1  u8   zero
//!   2  u16  voter count v       (C_new while joint)
//!   4  u16  learner count l
//!   6  u16  outgoing count o    (C_old voters; 0 when not joint)
//!   8  …    v × u64 voters, l × u64 learners, o × u64 outgoing voters,
//!           each list strictly ascending, no id 0
//! ```

use crate::types::{NodeId, Payload};
use std::collections::BTreeMap;

/// Largest number of ids in each list of a configuration.
pub const MEMBERS_MAX: usize = 64;
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 8;

/// A group configuration.
///
/// # Invariants
/// Each list is strictly ascending without `NodeId(0)`; `voters` is not
/// empty; `voters` and `learners` are disjoint. A learner may also be an
/// outgoing voter (a voter being demoted: it still votes in C_old until the
/// joint phase ends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// The voters (C_new while joint).
    pub voters: Vec<NodeId>,
    /// Members that receive the log but neither vote nor count towards a
    /// quorum.
    pub learners: Vec<NodeId>,
    /// While joint: the outgoing voters C_old. Empty otherwise.
    pub outgoing: Vec<NodeId>,
}

/// Where an election stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    Won,
    Lost,
    Pending,
}

fn majority(n: usize) -> usize {
    n / 2 + 1
}

impl Membership {
    /// A (non-joint) configuration from lists in any order; an error says
    /// what is wrong with them.
    pub fn new(voters: &[NodeId], learners: &[NodeId]) -> Result<Self, &'static str> {
        let sorted = |ids: &[NodeId]| {
            let mut v = ids.to_vec();
            v.sort();
            v
        };
        let m = Membership {
            voters: sorted(voters),
            learners: sorted(learners),
            outgoing: Vec::new(),
        };
        m.validate()?;
        Ok(m)
    }

    /// Checks the invariants of the type doc.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.voters.is_empty() {
            return Err("no voters");
        }
        for list in [&self.voters, &self.learners, &self.outgoing] {
            if list.len() > MEMBERS_MAX {
                return Err("too many members");
            }
            if list.first() == Some(&NodeId(0)) {
                return Err("node id 0 is reserved");
            }
            if list.windows(2).any(|w| w[0] >= w[1]) {
                return Err("duplicate member");
            }
        }
        if self.learners.iter().any(|l| self.voters.contains(l)) {
            return Err("a node is both voter and learner");
        }
        Ok(())
    }

    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Votes in either half.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member (voters of both halves and learners), ascending.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(&self.learners)
            .chain(&self.outgoing)
            .copied()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// C_old,new: this configuration's voters going out, `next` coming in.
    pub fn joint_with(&self, next: &Membership) -> Membership {
        assert!(
            !self.is_joint() && !next.is_joint(),
            "joint of two simple configurations"
        );
        Membership {
            voters: next.voters.clone(),
            learners: next.learners.clone(),
            outgoing: self.voters.clone(),
        }
    }

    /// C_new of a joint configuration (itself if not joint).
    pub fn leave_joint(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            outgoing: Vec::new(),
        }
    }

    /// The voters that count while joint under a planted bug: C_new only.
    pub(crate) fn incoming_only(&self) -> Membership {
        self.leave_joint()
    }

    /// Whether this configuration may follow `prev` in a log: a simple
    /// configuration is followed by a joint one leaving its voters, and a
    /// joint one by its C_new (thesis §4.3).
    pub fn follows(&self, prev: &Membership) -> bool {
        if prev.is_joint() {
            *self == prev.leave_joint()
        } else {
            self.is_joint() && self.outgoing == prev.voters
        }
    }

    /// The halves whose majorities a decision needs.
    fn halves(&self) -> impl Iterator<Item = &Vec<NodeId>> {
        std::iter::once(&self.voters).chain(self.is_joint().then_some(&self.outgoing))
    }

    /// Whether `yes` holds for a majority of each half.
    pub fn has_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        self.halves()
            .all(|half| half.iter().filter(|&&id| yes(id)).count() >= majority(half.len()))
    }

    /// The largest value that a majority of each half has reached: with
    /// match indexes, the commit point; with acknowledged ticks, the lease
    /// start.
    pub fn quorum_value<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> T {
        self.halves()
            .map(|half| {
                let mut v: Vec<T> = half.iter().map(|&id| value(id)).collect();
                v.sort_unstable_by(|a, b| b.cmp(a));
                v[majority(half.len()) - 1]
            })
            .min()
            .expect("a configuration has voters")
    }

    /// Won once a majority of each half granted; lost once some half can no
    /// longer reach a majority.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let mut result = VoteResult::Won;
        for half in self.halves() {
            let granted = half
                .iter()
                .filter(|id| votes.get(id) == Some(&true))
                .count();
            let rejected = half
                .iter()
                .filter(|id| votes.get(id) == Some(&false))
                .count();
            if rejected > half.len() - majority(half.len()) {
                return VoteResult::Lost;
            }
            if granted < majority(half.len()) {
                result = VoteResult::Pending;
            }
        }
        result
    }

    /// The payload of a configuration entry (layout in the module doc).
    ///
    /// # Panics
    /// If the configuration is not valid (a bug: every one built here is).
    pub fn encode(&self) -> Payload {
        self.validate()
            .expect("only valid configurations are encoded");
        let ids = self.voters.len() + self.learners.len() + self.outgoing.len();
        let mut b = Vec::with_capacity(HEADER_BYTES + 8 * ids);
        b.push(VERSION);
        b.push(0);
        for list in [&self.voters, &self.learners, &self.outgoing] {
            let n = u16::try_from(list.len()).expect("at most MEMBERS_MAX ids");
            b.extend_from_slice(&n.to_le_bytes());
        }
        for list in [&self.voters, &self.learners, &self.outgoing] {
            for id in list {
                b.extend_from_slice(&id.0.to_le_bytes());
            }
        }
        b.into()
    }

    /// Decodes and validates a configuration entry's payload.
    pub fn decode(b: &[u8]) -> Result<Membership, &'static str> {
        if b.len() < HEADER_BYTES {
            return Err("configuration shorter than its header");
        }
        if b[0] != VERSION {
            return Err("unknown configuration version");
        }
        if b[1] != 0 {
            return Err("reserved configuration byte not zero");
        }
        let count = |at: usize| usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
        let counts = [count(2), count(4), count(6)];
        if counts.iter().any(|&n| n > MEMBERS_MAX) {
            return Err("too many members");
        }
        if b.len() != HEADER_BYTES + 8 * counts.iter().sum::<usize>() {
            return Err("configuration length does not match its counts");
        }
        let mut ids = b[HEADER_BYTES..]
            .chunks_exact(8)
            .map(|c| NodeId(u64::from_le_bytes(c.try_into().expect("8 bytes"))));
        let mut take = |n: usize| ids.by_ref().take(n).collect::<Vec<NodeId>>();
        let m = Membership {
            voters: take(counts[0]),
            learners: take(counts[1]),
            outgoing: take(counts[2]),
        };
        m.validate()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    fn joint(new: &[u64], old: &[u64]) -> Membership {
        Membership {
            voters: ids(new),
            learners: Vec::new(),
            outgoing: ids(old),
        }
    }

    /// Quorum arithmetic as a table (raft-rs keeps these as golden files):
    /// configuration, nodes that said yes, whether that is a quorum.
    /// (C_new, C_old (empty: not joint), nodes that said yes, quorum).
    type QuorumCase<'a> = (&'a [u64], &'a [u64], &'a [u64], bool);

    #[test]
    fn joint_quorums_need_a_majority_of_each_half() {
        let cases: &[QuorumCase] = &[
            (&[1, 2, 3], &[], &[1, 2], true),
            (&[1, 2, 3], &[], &[3], false),
            (&[1, 2, 3, 4], &[], &[1, 2], false),
            (&[1], &[], &[1], true),
            (&[1, 2, 3], &[1, 2, 3], &[1, 2], true),
            // A majority of C_new alone is not enough while joint...
            (&[3, 4, 5], &[1, 2, 3], &[3, 4, 5], false),
            // ...nor a majority of C_old alone.
            (&[3, 4, 5], &[1, 2, 3], &[1, 2, 3], false),
            (&[3, 4, 5], &[1, 2, 3], &[2, 3, 4], true),
            (&[4], &[1, 2, 3], &[1, 2], false),
            (&[4], &[1, 2, 3], &[1, 2, 4], true),
        ];
        for &(new, old, yes, want) in cases {
            let m = joint(new, old);
            let got = m.has_quorum(|id| yes.contains(&id.0));
            assert_eq!(got, want, "C_new {new:?} C_old {old:?} yes {yes:?}");
        }
    }

    #[test]
    fn the_quorum_value_is_the_minimum_over_both_halves() {
        // Match indexes: C_new {3,4,5} has a majority at 7, C_old {1,2,3}
        // only at 5: the joint commit point is 5.
        let m = joint(&[3, 4, 5], &[1, 2, 3]);
        let matched = |id: NodeId| [0, 9, 5, 5, 7, 7][id.0 as usize];
        assert_eq!(m.quorum_value(matched), 5);
        assert_eq!(m.leave_joint().quorum_value(matched), 7);
    }

    #[test]
    fn elections_are_won_and_lost_per_half() {
        let m = joint(&[3, 4, 5], &[1, 2, 3]);
        let votes = |v: &[(u64, bool)]| v.iter().map(|&(id, g)| (NodeId(id), g)).collect();
        assert_eq!(
            m.vote_result(&votes(&[(3, true), (4, true)])),
            VoteResult::Pending,
            "C_old has one vote"
        );
        assert_eq!(
            m.vote_result(&votes(&[(3, true), (4, true), (1, true)])),
            VoteResult::Won
        );
        assert_eq!(
            m.vote_result(&votes(&[(3, true), (1, false), (2, false)])),
            VoteResult::Lost,
            "C_old can no longer reach a majority"
        );
    }

    #[test]
    fn configurations_round_trip_and_bad_bytes_are_errors() {
        let samples = [
            Membership::new(&ids(&[3, 1, 2]), &ids(&[9])).expect("valid"),
            Membership {
                voters: ids(&[2, 3, 4]),
                learners: ids(&[1]),
                outgoing: ids(&[1, 2, 3]),
            },
        ];
        for m in samples {
            let b = m.encode();
            assert_eq!(Membership::decode(&b), Ok(m.clone()));
            for cut in 0..b.len() {
                assert!(Membership::decode(&b[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = b.to_vec();
            longer.push(0);
            assert!(Membership::decode(&longer).is_err());
            let mut version = b.to_vec();
            version[0] = 2;
            assert!(Membership::decode(&version).is_err());
        }
        let mut rng = crate::rng::Rng::new(11);
        for _ in 0..2000 {
            let len = rng.below(48) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if let Some(v) = junk.first_mut() {
                *v = VERSION;
            }
            if let Ok(m) = Membership::decode(&junk) {
                m.validate()
                    .expect("decode returns only valid configurations");
            }
        }
    }

    #[test]
    fn invalid_configurations_are_refused() {
        assert!(Membership::new(&[], &ids(&[1])).is_err(), "no voters");
        assert!(Membership::new(&ids(&[1, 1]), &[]).is_err(), "duplicate");
        assert!(
            Membership::new(&ids(&[1, 2]), &ids(&[2])).is_err(),
            "overlap"
        );
        assert!(Membership::new(&ids(&[0, 1]), &[]).is_err(), "id 0");
        let many: Vec<NodeId> = (1..=MEMBERS_MAX as u64 + 1).map(NodeId).collect();
        assert!(Membership::new(&many, &[]).is_err(), "too many");
    }

    #[test]
    fn changes_go_through_the_joint_phase() {
        let old = Membership::new(&ids(&[1, 2, 3]), &[]).expect("valid");
        let new = Membership::new(&ids(&[2, 3, 4]), &ids(&[1])).expect("valid");
        let j = old.joint_with(&new);
        assert!(j.follows(&old));
        assert!(new.follows(&j));
        assert!(!new.follows(&old), "no direct switch");
        assert!(j.is_voter(NodeId(1)) && j.is_voter(NodeId(4)));
        assert!(!new.is_voter(NodeId(1)) && new.is_member(NodeId(1)));
    }
}
