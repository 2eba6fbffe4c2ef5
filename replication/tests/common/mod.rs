//! A tiny synchronous cluster for protocol tests: storage is instantly
//! durable, messages are delivered in order unless a link is cut.
#![allow(dead_code)]

use ferrisdb_replication::raft::ReadState;
use ferrisdb_replication::{
    Body, Config, Entry, EntryKind, GroupId, LogIndex, Membership, Message, NodeId, Raft, Ready,
    Restored, Role, Snapshot, Term,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A message of group 1 from `from` to `to` in `term`.
pub fn msg(from: u64, to: u64, term: u64, body: Body) -> Message {
    Message {
        group: GroupId(1),
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body,
    }
}

pub fn ids(v: &[u64]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

/// A configuration that is not joint.
pub fn simple(voters: &[u64], learners: &[u64]) -> Membership {
    Membership::new(&ids(voters), &ids(learners)).expect("valid")
}

/// Has `leader` propose a change to `voters` and `learners`; returns the
/// index of the joint entry.
pub fn change(c: &mut Cluster, leader: u64, voters: &[u64], learners: &[u64]) -> LogIndex {
    c.node(leader)
        .propose_conf_change(ids(voters), ids(learners))
        .expect("the leader accepts the change")
        .first
}

pub fn config(id: u64, n: u64) -> Config {
    let voters: Vec<u64> = (1..=n).collect();
    config_with(id, &voters, &[])
}

/// A node's config in a group bootstrapped with `voters` and `learners`
/// (the node may be neither: a replica added later).
pub fn config_with(id: u64, voters: &[u64], learners: &[u64]) -> Config {
    let mut cfg = Config::new(NodeId(id), GroupId(1), ids(voters));
    cfg.learners = ids(learners);
    cfg.check_invariants = true;
    cfg.seed = id * 7919;
    // The paper's algorithm; tests of the extensions turn them on.
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg
}

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Raft>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub queue: VecDeque<Message>,
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub read_states: BTreeMap<NodeId, Vec<ReadState>>,
    pub failed_reads: BTreeMap<NodeId, Vec<u64>>,
    pub lost: BTreeMap<NodeId, Vec<Term>>,
    pub snapshots: BTreeMap<NodeId, Vec<Snapshot>>,
    pub snapshot_needed: BTreeMap<NodeId, Vec<NodeId>>,
}

impl Cluster {
    pub fn new(n: u64) -> Self {
        Self::with(n, |_| {})
    }

    pub fn with(n: u64, tweak: impl Fn(&mut Config)) -> Self {
        let voters: Vec<u64> = (1..=n).collect();
        Self::members(n, &voters, &[], tweak)
    }

    /// Nodes 1..=n of a group bootstrapped with `voters` and `learners`;
    /// the other nodes start outside the group.
    pub fn members(n: u64, voters: &[u64], learners: &[u64], tweak: impl Fn(&mut Config)) -> Self {
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let mut cfg = config_with(id, voters, learners);
            tweak(&mut cfg);
            nodes.insert(
                NodeId(id),
                Raft::new(cfg, Restored::default()).expect("valid"),
            );
        }
        Cluster {
            nodes,
            cut: BTreeSet::new(),
            queue: VecDeque::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            failed_reads: BTreeMap::new(),
            lost: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            snapshot_needed: BTreeMap::new(),
        }
    }

    pub fn node(&mut self, id: u64) -> &mut Raft {
        self.nodes.get_mut(&NodeId(id)).expect("node exists")
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: u64) {
        for &other in self.nodes.keys() {
            self.cut.insert((NodeId(id), other));
            self.cut.insert((other, NodeId(id)));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Handles every node's Ready (persisting at once) and queues messages.
    pub fn flush(&mut self) {
        for (&id, raft) in self.nodes.iter_mut() {
            while raft.has_ready() {
                let rd: Ready = raft.ready();
                self.queue.extend(rd.messages);
                if let Some(last) = rd.entries.last() {
                    raft.persisted(last.index, last.term);
                }
                self.queue.extend(rd.messages_after_persist);
                self.applied.entry(id).or_default().extend(rd.committed);
                self.read_states
                    .entry(id)
                    .or_default()
                    .extend(rd.read_states);
                self.failed_reads
                    .entry(id)
                    .or_default()
                    .extend(rd.failed_reads);
                self.snapshot_needed
                    .entry(id)
                    .or_default()
                    .extend(rd.snapshot_needed);
                if let Some(s) = rd.snapshot {
                    self.snapshots.entry(id).or_default().push(s);
                }
                if let Some(t) = rd.leadership_lost {
                    self.lost.entry(id).or_default().push(t);
                }
            }
        }
    }

    /// Delivers messages until the network is quiet.
    pub fn settle(&mut self) {
        self.settle_until(|_| false);
    }

    /// Like [`Cluster::settle`], but stops as soon as `done` holds (checked
    /// after every delivery); returns whether it did.
    pub fn settle_until(&mut self, done: impl Fn(&mut Cluster) -> bool) -> bool {
        for _ in 0..100_000 {
            self.flush();
            if done(self) {
                return true;
            }
            let Some(m) = self.queue.pop_front() else {
                return false;
            };
            if self.cut.contains(&(m.from, m.to)) {
                continue;
            }
            if let Some(raft) = self.nodes.get_mut(&m.to) {
                raft.step(m).expect("well-formed message");
            }
        }
        panic!("the cluster did not settle");
    }

    /// Ticks `id` until its election timer fires (at most 2 * election_ticks).
    pub fn campaign(&mut self, id: u64) {
        let ticks = 2 * self.node(id).config().election_ticks;
        let term = self.node(id).term();
        for _ in 0..ticks {
            self.node(id).tick();
            if self.node(id).role() != Role::Follower || self.node(id).term() > term {
                break;
            }
        }
        self.settle();
    }

    /// Elects `id` with every message but its appends: its election timer
    /// fires, the vote requests and the votes are delivered, and what it
    /// sends as the new leader (the no-op's appends) is dropped.
    pub fn elect_dropping_appends(&mut self, id: u64) {
        for _ in 0..2 * self.node(id).config().election_ticks {
            if self.node(id).role() != Role::Follower {
                break;
            }
            self.node(id).tick();
        }
        self.flush();
        for m in std::mem::take(&mut self.queue) {
            self.nodes
                .get_mut(&m.to)
                .expect("node")
                .step(m)
                .expect("ok");
        }
        self.flush();
        let votes: Vec<Message> = self
            .queue
            .drain(..)
            .filter(|m| m.to == NodeId(id))
            .collect();
        for m in votes {
            self.node(id).step(m).expect("ok");
        }
        assert_eq!(self.node(id).role(), Role::Leader);
        self.flush();
        self.queue.clear();
    }

    pub fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for raft in self.nodes.values_mut() {
                raft.tick();
            }
            self.settle();
        }
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|r| r.role() == Role::Leader)
            .map(|r| r.id())
            .collect()
    }

    /// Payloads of the normal, non-empty entries `id` applied.
    pub fn applied_data(&self, id: u64) -> Vec<Vec<u8>> {
        self.applied.get(&NodeId(id)).map_or(Vec::new(), |v| {
            v.iter()
                .filter(|e| e.kind == EntryKind::Normal && !e.data.is_empty())
                .map(|e| e.data.to_vec())
                .collect()
        })
    }

    pub fn propose(&mut self, id: u64, data: &[u8]) {
        self.node(id)
            .propose(vec![data.into()])
            .expect("leader accepts");
        self.settle();
    }
}
