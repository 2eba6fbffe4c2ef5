//! The simulator's events, in a queue ordered by (virtual time, scheduling
//! order).

use super::workload::{Reply, Request};
use crate::raft::message::Message;
use crate::types::NodeId;
use std::cmp::Ordering;

#[derive(Debug)]
pub(super) enum Event {
    Tick {
        node: usize,
        epoch: u64,
    },
    Deliver {
        msg: Message,
    },
    Request {
        node: usize,
        req: Request,
    },
    Reply {
        reply: Reply,
    },
    Synced {
        node: usize,
        epoch: u64,
        seq: u64,
    },
    ClientNext {
        client: usize,
    },
    ClientTimeout {
        client: usize,
        op: u64,
    },
    Crash,
    Restart {
        node: usize,
        epoch: u64,
    },
    Nemesis,
    /// Propose a membership change to a group's leader.
    Membership,
    Link {
        from: NodeId,
        to: NodeId,
        cut: bool,
    },
    Heal,
    Converged,
}

#[derive(Debug)]
pub(super) struct Scheduled {
    pub(super) at: u64,
    pub(super) seq: u64,
    pub(super) event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
