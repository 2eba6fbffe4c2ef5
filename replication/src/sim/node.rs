//! A simulated node: one Raft core per group, the node's storage model, and
//! per group a key-value register state machine with client sessions.

use super::storage::Storage;
use super::workload::{ClientId, Key, Request, Value};
use crate::raft::{Config, Raft, RaftError, Restored, Role};
use crate::types::{GroupId, LogIndex, NodeId, Term};
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
                before: (LogIndex(0), Term(0)),
                entries: disk.entries,
            };
            let raft = Raft::new(cfg, restored)?;
            let (last_role, last_term) = (raft.role(), raft.term());
            self.groups.insert(
                group,
                GroupNode {
                    raft,
                    kv: BTreeMap::new(),
                    sessions: BTreeMap::new(),
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
