//! A simulated node: one Raft core per group, the node's storage model, and
//! per group a key-value register state machine with client sessions.

use super::checker::state_machine_safety::StateMachineSafety;
use super::storage::Storage;
use super::workload::{ClientId, Key, Outcome, Reply, Request, Value, decode_write, reply};
use crate::raft::{Config, Raft, RaftError, Ready, Restored, Role};
use crate::types::{Entry, EntryKind, GroupId, LogIndex, NodeId, Payload, Snapshot, Term};
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct GroupNode {
    pub raft: Raft,
    pub kv: BTreeMap<Key, Value>,
    /// Highest op applied per client: a command delivered twice applies once.
    pub sessions: BTreeMap<ClientId, u64>,
    /// Proposals awaiting their entry: index -> (term, request).
    pub proposals: BTreeMap<LogIndex, (Term, Request)>,
    /// Reads awaiting confirmation, by ctx.
    pub reads: BTreeMap<u64, Request>,
    /// Confirmed reads waiting for the applied index.
    pub ready_reads: Vec<(LogIndex, Request)>,
    pub last_role: Role,
    pub last_term: Term,
}

impl GroupNode {
    /// Replaces the state machine with a snapshot the core installed.
    /// Proposals under it cannot be matched to their entries any more: their
    /// outcome is unknown.
    pub fn install_snapshot(&mut self, snap: &Snapshot, replies: &mut Vec<Reply>) {
        (self.kv, self.sessions) = decode_state(&snap.data);
        let kept = self.proposals.split_off(&snap.index.next());
        for (_, (_, req)) in std::mem::replace(&mut self.proposals, kept) {
            replies.push(reply(req, Outcome::Unknown));
        }
    }

    /// The state machine as a snapshot at the applied index.
    pub fn state_image(&self) -> Snapshot {
        let log = self.raft.log();
        let index = log.applied();
        let term = log
            .term(index)
            .expect("the applied entry or the snapshot point");
        let membership = self
            .raft
            .membership_at(index)
            .expect("the applied index is at or above the compaction point")
            .clone();
        let data = encode_state(&self.kv, &self.sessions);
        Snapshot {
            index,
            term,
            membership,
            data,
        }
    }

    /// Snapshots the state machine and drops the log up to the applied
    /// index, in memory at once and on disk once the write is synced.
    pub fn compact(&mut self, storage: &mut Storage) {
        let snap = self.state_image();
        self.raft.compact(snap.index);
        storage.write(self.raft.group(), Some(snap), Vec::new(), None, Vec::new());
    }
}

#[derive(Debug)]
pub struct SimNode {
    pub id: NodeId,
    pub up: bool,
    /// Bumped at every crash, so events of an earlier life are ignored.
    pub epoch: u64,
    pub groups: BTreeMap<GroupId, GroupNode>,
    pub storage: Storage,
    /// A sync is in flight; writes queued meanwhile wait for the next one
    /// (group commit: one sync covers every write before it started).
    pub syncing: bool,
}

impl SimNode {
    pub fn new(id: NodeId) -> Self {
        SimNode {
            id,
            up: false,
            epoch: 0,
            groups: BTreeMap::new(),
            storage: Storage::default(),
            syncing: false,
        }
    }

    /// Starts (or restarts) every group from what storage holds.
    pub fn start(&mut self, configs: Vec<Config>) -> Result<(), RaftError> {
        self.groups.clear();
        for cfg in configs {
            let group = cfg.group;
            let disk = self
                .storage
                .durable
                .get(&group)
                .cloned()
                .unwrap_or_default();
            let restored = Restored {
                hard_state: disk.hard_state,
                before: disk.before(),
                entries: disk.entries.clone(),
                membership: disk.snapshot.as_ref().map(|s| s.membership.clone()),
            };
            let raft = Raft::new(cfg, restored)?;
            let (last_role, last_term) = (raft.role(), raft.term());
            let (kv, sessions) = disk
                .snapshot
                .as_ref()
                .map_or_else(Default::default, |s| decode_state(&s.data));
            self.groups.insert(
                group,
                GroupNode {
                    raft,
                    kv,
                    sessions,
                    proposals: BTreeMap::new(),
                    reads: BTreeMap::new(),
                    ready_reads: Vec::new(),
                    last_role,
                    last_term,
                },
            );
        }
        self.up = true;
        Ok(())
    }

    pub fn crash(&mut self) {
        self.up = false;
        self.syncing = false;
        self.epoch += 1;
        self.groups.clear();
    }
}

/// The register state machine as snapshot bytes: count, (key, value)*,
/// count, (client, op)*, little-endian.
pub fn encode_state(kv: &BTreeMap<Key, Value>, sessions: &BTreeMap<ClientId, u64>) -> Payload {
    let mut b = Vec::with_capacity(8 + kv.len() * 12 + sessions.len() * 12);
    put_map(&mut b, kv);
    put_map(&mut b, sessions);
    b.into()
}

type State = (BTreeMap<Key, Value>, BTreeMap<ClientId, u64>);

/// # Panics
/// On malformed bytes: only [`encode_state`] makes them.
pub fn decode_state(b: &[u8]) -> State {
    let mut at = 0;
    let kv = take_map(b, &mut at);
    let sessions = take_map(b, &mut at);
    assert_eq!(at, b.len(), "snapshot bytes fully used");
    (kv, sessions)
}

/// Both maps of the state are `u32 -> u64`: count, then (key, value)*.
fn put_map(b: &mut Vec<u8>, map: &BTreeMap<u32, u64>) {
    b.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        b.extend_from_slice(&k.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
}

fn take_map(b: &[u8], at: &mut usize) -> BTreeMap<u32, u64> {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let n = u32_at(*at) as usize;
    *at += 4;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        map.insert(u32_at(*at), u64_at(*at + 4));
        *at += 12;
    }
    map
}

/// Applies committed entries to the register state machine and answers the
/// proposals they settle.
pub(super) fn apply(
    gn: &mut GroupNode,
    node: NodeId,
    group: GroupId,
    entries: &[Entry],
    checker: &mut StateMachineSafety,
    replies: &mut Vec<Reply>,
) -> Result<(), String> {
    for e in entries {
        checker.observe_apply(node, group, e)?;
        if e.kind != EntryKind::Normal {
            continue; // a configuration: the core put it in force already
        }
        if let Some((client, op, key, value)) = decode_write(&e.data) {
            let last = gn.sessions.entry(client).or_insert(0);
            if op > *last {
                *last = op;
                gn.kv.insert(key, value);
            }
        }
        if let Some((term, req)) = gn.proposals.remove(&e.index) {
            // Another entry in our slot means ours can never commit.
            let outcome = if term == e.term {
                Outcome::Ok(None)
            } else {
                Outcome::Failed { leader: None }
            };
            replies.push(reply(req, outcome));
        }
    }
    Ok(())
}

/// Queues confirmed reads, answers those the applied index reached, and
/// fails reads and proposals the core gave up on.
pub(super) fn answer_reads(gn: &mut GroupNode, rd: &Ready, replies: &mut Vec<Reply>) {
    for rs in &rd.read_states {
        if let Some(req) = gn.reads.remove(&rs.ctx) {
            gn.ready_reads.push((rs.index, req));
        }
    }
    let applied = gn.raft.log().applied();
    let kv = &gn.kv;
    gn.ready_reads.retain(|(index, req)| {
        if *index > applied {
            return true;
        }
        replies.push(reply(*req, Outcome::Ok(kv.get(&req.key).copied())));
        false
    });
    for ctx in &rd.failed_reads {
        if let Some(req) = gn.reads.remove(ctx) {
            replies.push(reply(req, Outcome::Failed { leader: None }));
        }
    }
    if rd.leadership_lost.is_some() {
        // Fail in-flight proposals at once (retryable, outcome unknown)
        // rather than leave them to the client's timeout.
        for (_, (_, req)) in std::mem::take(&mut gn.proposals) {
            replies.push(reply(req, Outcome::Unknown));
        }
    }
}
