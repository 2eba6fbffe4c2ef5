//! The Raft core of one group: a sans-IO state machine.
//!
//! Inputs: [`Raft::tick`], [`Raft::step`] (a message), [`Raft::propose`] (a
//! batch), [`Raft::propose_conf_change`], [`Raft::read_index`],
//! [`Raft::persisted`]. Outputs are collected
//! in a [`Ready`] taken with [`Raft::ready`]. There is no clock, socket, file
//! or ambient randomness inside: time is the tick count, randomness a seeded
//! generator from [`Config::seed`].
//!
//! # The host's contract
//! For each `Ready`, in order: send `messages` at once; append `entries` to
//! the log (an entry whose index is at or below the last one replaces it and
//! everything after) and write `hard_state`, entries first; once those writes
//! and every earlier one are durable, send `messages_after_persist` and call
//! [`Raft::persisted`] with the last entry's index and term. Apply `committed`
//! in order (skipping [`EntryKind::ConfChange`] entries, which the core
//! interprets itself; a snapshot image records [`Raft::membership_at`] its
//! index). Serve each `ReadState` once the applied index reaches its index.
//! On `leadership_lost`, fail every proposal not yet applied with a retryable
//! "outcome unknown" error (it may still commit under the next leader), and
//! fail the reads listed in `failed_reads`. `messages_after_persist` may
//! hold a message to this node itself — a candidate's own vote, counted only
//! once durable — which the host delivers back with [`Raft::step`].

mod conf_change;
mod config;
mod configs;
mod election;
mod invariants;
pub mod log;
pub mod membership;
pub mod message;
pub mod progress;
mod read;
mod replication;
mod snapshot;
mod transfer;

use crate::rng::Rng;
use crate::types::{
    Entry, EntryKind, GroupId, HardState, LogIndex, NodeId, Payload, Snapshot, Term,
};
use configs::Configs;
use log::RaftLog;
use message::{Body, Message};
use progress::Progress;
use std::borrow::Cow;
use std::collections::BTreeMap;

pub use config::{Config, PlantedBug};
pub use membership::{Membership, VoteResult};
pub use read::ReadState;

/// Largest number of entries one proposal batch may carry.
pub const PROPOSAL_ENTRIES_MAX: usize = 4096;
/// Largest payload of one entry.
pub const ENTRY_BYTES_MAX: usize = 1 << 20;
/// ReadIndex requests a leader holds at once.
pub const READS_PENDING_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    #[error("not the leader (leader: {leader:?}); retry at the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("proposal rejected: {entries} entries / largest {bytes} bytes exceed the limits")]
    ProposalTooLarge { entries: usize, bytes: usize },
    #[error("too many reads pending ({READS_PENDING_MAX}); retry later")]
    ReadsBusy,
    #[error("message for group {group} node {to} delivered to group {ours_group} node {ours}")]
    Misrouted {
        group: GroupId,
        to: NodeId,
        ours_group: GroupId,
        ours: NodeId,
    },
    #[error("malformed {kind} from node {from}: {why}")]
    BadMessage {
        kind: &'static str,
        from: NodeId,
        why: &'static str,
    },
    #[error(
        "snapshot not usable: the follower is not waiting for one or it does not cover the compaction point"
    )]
    BadSnapshot,
    #[error("a leadership transfer is in progress; retry shortly")]
    TransferInProgress,
    #[error("cannot transfer leadership to {to}: not another voter")]
    BadTransfer { to: NodeId },
    #[error("bad configuration: {0}")]
    Config(String),
    #[error(
        "a membership change is in progress (or this new leader has not yet committed an entry of its term); retry once it completes"
    )]
    ConfChangeInProgress,
    #[error("bad membership change: {0}")]
    BadConfChange(&'static str),
    #[error("restored state is inconsistent: {0}")]
    BadRestore(String),
}

/// What storage held at startup.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub hard_state: HardState,
    /// Index and term of the entry before the first in `entries`.
    pub before: (LogIndex, Term),
    pub entries: Vec<Entry>,
    /// The configuration in force at `before`: the host takes it from the
    /// snapshot it restores its state machine from (`Snapshot::membership`).
    /// `None`: the bootstrap configuration of [`Config`] (right when no
    /// configuration entry was ever compacted away).
    pub membership: Option<Membership>,
}

/// Where a proposed batch landed: entries `first..=last` of `term`. The host
/// answers each once the entry at that index is applied with that term, and
/// fails it if another entry is applied there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposed {
    pub first: LogIndex,
    pub last: LogIndex,
    pub term: Term,
}

/// Outputs of the core since the last `ready()`; see the module doc.
#[derive(Debug, Default)]
pub struct Ready {
    pub messages: Vec<Message>,
    pub hard_state: Option<HardState>,
    pub entries: Vec<Entry>,
    pub messages_after_persist: Vec<Message>,
    pub committed: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    pub failed_reads: Vec<u64>,
    /// This node was leader in that term and no longer is.
    pub leadership_lost: Option<Term>,
    /// A snapshot received from the leader: persist it and replace the
    /// state machine with it (it is durable before `messages_after_persist`
    /// go out). The log now starts after its index.
    pub snapshot: Option<Snapshot>,
    /// Followers that need a snapshot: the host builds one (at its applied
    /// index) and passes it to [`Raft::send_snapshot`].
    pub snapshot_needed: Vec<NodeId>,
}

impl Ready {
    /// Whether `messages_after_persist` need every earlier write durable
    /// too, not just this Ready's: true unless they are all vote traffic
    /// (a vote answers for the vote alone).
    pub fn needs_earlier_writes(&self) -> bool {
        self.messages_after_persist
            .iter()
            .any(|m| !matches!(m.body, Body::Vote { .. } | Body::VoteResponse { .. }))
    }
}

pub struct Raft {
    cfg: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// The configuration at the compaction point and every configuration
    /// entry of the log; the latest is in force.
    configs: Configs,
    /// Leader only: every other member (voters of both halves, learners).
    progress: BTreeMap<NodeId, Progress>,
    /// Candidate and pre-candidate: responses so far.
    votes: BTreeMap<NodeId, bool>,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    randomized_timeout: u64,
    /// This node's clock in ticks; starts at 1 so 0 can mean "never".
    ticks: u64,
    rng: Rng,
    reads: read::ReadQueue,
    out: Ready,
    transfer: Option<transfer::Transfer>,
    /// Follower: the snapshot being received.
    incoming: Option<snapshot::Incoming>,
    /// Set once this leader sent `TimeoutNow`: no lease reads for the rest
    /// of its term.
    lease_forfeited: bool,
    /// Hard state as last handed out.
    emitted: HardState,
    ghost: invariants::Ghost,
}

impl std::fmt::Debug for Raft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft")
            .field("id", &self.cfg.id)
            .field("term", &self.term)
            .field("role", &self.role)
            .field("last", &self.log.last_index())
            .field("committed", &self.log.committed())
            .finish()
    }
}

impl Raft {
    pub fn new(cfg: Config, restored: Restored) -> Result<Self, RaftError> {
        cfg.validate()?;
        let hs = restored.hard_state;
        let last = LogIndex(restored.before.0.0 + restored.entries.len() as u64);
        for (n, e) in restored.entries.iter().enumerate() {
            let prev_term = if n == 0 {
                restored.before.1
            } else {
                restored.entries[n - 1].term
            };
            if e.index.0 != restored.before.0.0 + 1 + n as u64 || e.term < prev_term {
                return Err(RaftError::BadRestore(format!("entry {n} out of order")));
            }
        }
        let last_term = restored
            .entries
            .last()
            .map_or(restored.before.1, |e| e.term);
        if hs.commit > last {
            return Err(RaftError::BadRestore(format!(
                "commit {} beyond a log ending at {last}",
                hs.commit
            )));
        }
        // A crash can keep the entries of a write and lose the hard state
        // that followed them. The lost vote was never answered (answers wait
        // for persistence), so taking the log's term with no vote is safe.
        let (term, vote) = if last_term > hs.term {
            (last_term, None)
        } else {
            (hs.term, hs.vote)
        };
        let base = match restored.membership {
            Some(m) => {
                m.validate().map_err(|why| {
                    RaftError::BadRestore(format!("configuration at the snapshot: {why}"))
                })?;
                m
            }
            None => cfg.bootstrap()?,
        };
        let conf_entries: Vec<Entry> = restored
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::ConfChange)
            .cloned()
            .collect();
        for e in &conf_entries {
            Membership::decode(&e.data).map_err(|why| {
                RaftError::BadRestore(format!("configuration entry {}: {why}", e.index))
            })?;
        }
        let log = RaftLog::restore(restored.before, restored.entries, hs.commit);
        let mut configs = Configs::new(base);
        configs.on_append(&log, &conf_entries);
        if let Some(why) = configs.chain_error(&log)
            && !cfg.plants(PlantedBug::ConfChangeWithoutJoint)
        {
            return Err(RaftError::BadRestore(why));
        }
        let mut raft = Raft {
            rng: Rng::new(cfg.seed),
            term,
            vote,
            role: Role::Follower,
            leader: None,
            log,
            configs,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            ticks: 1,
            reads: read::ReadQueue::default(),
            out: Ready::default(),
            transfer: None,
            incoming: None,
            lease_forfeited: false,
            emitted: hs,
            ghost: invariants::Ghost::default(),
            cfg,
        };
        raft.reset_randomized_timeout();
        raft.after_input();
        Ok(raft)
    }

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    pub fn group(&self) -> GroupId {
        self.cfg.group
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// The leader's view of a follower (for metrics and tests).
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        self.progress.get(&id)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// One unit of time passed.
    pub fn tick(&mut self) {
        self.ticks += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
        self.after_input();
    }

    /// A message from a peer. Errors leave the state untouched.
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        if m.group != self.cfg.group || m.to != self.cfg.id {
            return Err(RaftError::Misrouted {
                group: m.group,
                to: m.to,
                ours_group: self.cfg.group,
                ours: self.cfg.id,
            });
        }
        message::validate(&m)?;
        self.step_checked(m);
        self.after_input();
        Ok(())
    }

    /// Appends a batch of commands at the leader.
    pub fn propose(&mut self, batch: Vec<Payload>) -> Result<Proposed, RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(RaftError::TransferInProgress);
        }
        let bytes = batch.iter().map(|d| d.len()).max().unwrap_or(0);
        if batch.is_empty() || batch.len() > PROPOSAL_ENTRIES_MAX || bytes > ENTRY_BYTES_MAX {
            return Err(RaftError::ProposalTooLarge {
                entries: batch.len(),
                bytes,
            });
        }
        let first = self.log.last_index().next();
        let entries: Vec<Entry> = batch
            .into_iter()
            .enumerate()
            .map(|(n, data)| Entry::normal(LogIndex(first.0 + n as u64), self.term, data))
            .collect();
        self.log.append(&entries);
        let last = self.log.last_index();
        self.broadcast_append(false);
        // A single-voter group commits once its own write is durable.
        self.after_input();
        Ok(Proposed {
            first,
            last,
            term: self.term,
        })
    }

    /// The host made entries up to (`index`, `term`) durable.
    pub fn persisted(&mut self, index: LogIndex, term: Term) {
        if self.log.persisted_to(index, term) && self.role == Role::Leader && self.maybe_commit() {
            self.on_commit_advanced();
        }
        self.after_input();
    }

    pub fn has_ready(&self) -> bool {
        let o = &self.out;
        !o.messages.is_empty()
            || !o.messages_after_persist.is_empty()
            || !o.read_states.is_empty()
            || !o.failed_reads.is_empty()
            || o.leadership_lost.is_some()
            || o.snapshot.is_some()
            || !o.snapshot_needed.is_empty()
            || self.hard_state() != self.emitted
            || self.log.applied() < self.log.committed()
            || self.log.last_index() >= self.log.unstable_from()
    }

    /// Takes the outputs accumulated since the last call.
    pub fn ready(&mut self) -> Ready {
        let mut rd = std::mem::take(&mut self.out);
        rd.entries = self.log.take_unstable();
        let hs = self.hard_state();
        if hs != self.emitted {
            rd.hard_state = Some(hs);
            self.emitted = hs;
        }
        rd.committed = self.log.take_committed(self.cfg.apply_bytes_max);
        rd
    }

    /// The configuration whose majorities decide elections, commitment,
    /// reads and check-quorum: the one in force (both halves while joint).
    fn voting(&self) -> Cow<'_, Membership> {
        voting(&self.configs, self.planted(PlantedBug::JointQuorumNewOnly))
    }

    fn is_voter(&self) -> bool {
        self.membership().is_voter(self.cfg.id)
    }

    /// Other voters of either half (asked for votes).
    fn peers(&self) -> Vec<NodeId> {
        let m = self.membership();
        let mut out: Vec<NodeId> = m.voters.iter().chain(&m.outgoing).copied().collect();
        out.sort();
        out.dedup();
        out.retain(|&v| v != self.cfg.id);
        out
    }

    /// Everyone the leader replicates to: every other member.
    fn targets(&self) -> Vec<NodeId> {
        let mut out = self.membership().members();
        out.retain(|&v| v != self.cfg.id);
        out
    }

    fn send(&mut self, to: NodeId, term: Term, body: Body) {
        let after_persist = matches!(
            body,
            Body::Vote { .. } | Body::VoteResponse { .. } | Body::AppendResponse { .. }
        );
        let m = Message {
            group: self.cfg.group,
            from: self.cfg.id,
            to,
            term,
            body,
        };
        if after_persist {
            self.out.messages_after_persist.push(m);
        } else {
            self.out.messages.push(m);
        }
    }

    fn reset_randomized_timeout(&mut self) {
        let e = self.cfg.election_ticks;
        self.randomized_timeout = e + self.rng.below(e);
    }

    /// Runs after every input: finishes a membership change the input made
    /// possible, then checks the invariants.
    fn after_input(&mut self) {
        self.advance_membership();
        if self.cfg.check_invariants {
            self.check_invariants();
        }
    }

    fn planted(&self, bug: PlantedBug) -> bool {
        self.cfg.plants(bug)
    }
}

/// [`Raft::voting`] over the configurations alone, for callers that hold
/// other fields of the core mutably.
fn voting(configs: &Configs, new_only: bool) -> Cow<'_, Membership> {
    let current = configs.current();
    if new_only && current.is_joint() {
        Cow::Owned(current.incoming_only())
    } else {
        Cow::Borrowed(current)
    }
}
