//! Linearizable reads without a log write (§8; Ongaro's thesis §6.4):
//! ReadIndex (the leader confirms with a quorum heartbeat round that it is
//! still leader, then serves at the commit index it recorded) and leader
//! leases (skip the round while a quorum acknowledged a heartbeat sent less
//! than `election_ticks - drift_ticks` ago).

use super::{PlantedBug, READS_PENDING_MAX, Raft, RaftError, Role, voting};
use crate::types::{LogIndex, NodeId};
use std::collections::{BTreeSet, VecDeque};

/// A read may be served once the applied index reaches `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: u64,
    pub index: LogIndex,
}

#[derive(Debug)]
struct PendingRead {
    ctx: u64,
    index: LogIndex,
    seq: u64,
    acks: BTreeSet<NodeId>,
}

#[derive(Debug, Default)]
pub(super) struct ReadQueue {
    /// Reads that arrived before the leader committed an entry of its term.
    before_commit: Vec<u64>,
    pending: VecDeque<PendingRead>,
    next_seq: u64,
}

impl ReadQueue {
    pub(super) fn newest_seq(&self) -> u64 {
        self.pending.back().map_or(0, |r| r.seq)
    }

    pub(super) fn fail_all(&mut self) -> Vec<u64> {
        let mut out = std::mem::take(&mut self.before_commit);
        out.extend(self.pending.drain(..).map(|r| r.ctx));
        out
    }

    fn len(&self) -> usize {
        self.before_commit.len() + self.pending.len()
    }
}

impl Raft {
    /// Asks for a linearizable read point; the answer comes as a
    /// [`ReadState`] with this `ctx` in a later `Ready`, or in
    /// `failed_reads` if leadership is lost first.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), RaftError> {
        if self.role != Role::Leader && self.planted(PlantedBug::FollowerReadsLocally) {
            let index = self.log.committed();
            self.out.read_states.push(ReadState { ctx, index });
            return Ok(());
        }
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads.len() >= READS_PENDING_MAX {
            return Err(RaftError::ReadsBusy);
        }
        self.admit_read(ctx);
        self.after_input();
        Ok(())
    }

    fn admit_read(&mut self, ctx: u64) {
        // Until an entry of this term commits, the leader does not know the
        // commit index of its predecessor (§8).
        if self.log.term(self.log.committed()) != Some(self.term) {
            self.reads.before_commit.push(ctx);
            return;
        }
        let index = self.log.committed();
        let me = self.cfg.id;
        if self.voting().has_quorum(|id| id == me) || self.lease_valid() {
            self.out.read_states.push(ReadState { ctx, index });
            return;
        }
        self.reads.next_seq += 1;
        let mut acks = BTreeSet::new();
        acks.insert(self.cfg.id);
        self.reads.pending.push_back(PendingRead {
            ctx,
            index,
            seq: self.reads.next_seq,
            acks,
        });
        self.broadcast_heartbeat();
    }

    /// The lease holds while a quorum (of both halves while joint)
    /// acknowledged heartbeats sent at or after `start` and `now < start +
    /// election_ticks - drift_ticks`: none of those voters grants a vote
    /// within `election_ticks` of receiving it.
    fn lease_valid(&self) -> bool {
        if !self.cfg.lease_reads || self.lease_forfeited {
            return false;
        }
        let me = self.cfg.id;
        let start = self.voting().quorum_value(|v| {
            if v == me {
                self.ticks
            } else {
                self.progress[&v].ack_tick
            }
        });
        start > 0 && self.ticks < start + self.cfg.election_ticks - self.cfg.drift_ticks
    }

    pub(super) fn on_read_ack(&mut self, from: NodeId, seq: u64) {
        if !self.membership().is_voter(from) {
            return; // a learner's acknowledgement proves nothing
        }
        let voting = voting(
            &self.configs,
            self.cfg.plants(PlantedBug::JointQuorumNewOnly),
        );
        let mut ready_upto = None;
        for (n, read) in self.reads.pending.iter_mut().enumerate() {
            if read.seq > seq {
                break;
            }
            read.acks.insert(from);
            if voting.has_quorum(|id| read.acks.contains(&id)) {
                ready_upto = Some(n);
            }
        }
        if let Some(n) = ready_upto {
            for read in self.reads.pending.drain(..=n) {
                self.out.read_states.push(ReadState {
                    ctx: read.ctx,
                    index: read.index,
                });
            }
        }
    }

    pub(super) fn on_commit_for_reads(&mut self) {
        if self.reads.before_commit.is_empty()
            || self.log.term(self.log.committed()) != Some(self.term)
        {
            return;
        }
        for ctx in std::mem::take(&mut self.reads.before_commit) {
            self.admit_read(ctx);
        }
    }
}
