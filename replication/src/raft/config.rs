//! A group's configuration of the core: identity, bootstrap membership,
//! timing, protocol options and flow-control limits; and the protocol bugs
//! tests may plant.

use super::RaftError;
use super::membership::Membership;
use crate::types::{GroupId, NodeId};

/// Protocol bugs the simulator must be able to catch; only the
/// `planted-bugs` feature (tests) lets [`Config`] plant one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// Grant votes without the §5.4.1 up-to-date check.
    VoteWithoutLogCheck,
    /// Commit an entry of an earlier term by counting replicas (§5.4.2).
    CommitPreviousTermByCount,
    /// Answer a read at a follower from its own commit index, without asking
    /// the leader (a stale read).
    FollowerReadsLocally,
    /// Switch from C_old straight to C_new, without the joint phase (§6:
    /// "it isn't possible to atomically switch all of the servers at
    /// once").
    ConfChangeWithoutJoint,
    /// While joint, count only C_new's majority (for commitment, elections,
    /// reads and check-quorum) instead of both.
    JointQuorumNewOnly,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    pub group: GroupId,
    /// The group's bootstrap voters: the configuration in force at index 0,
    /// the same on every replica, including replicas added later (which
    /// start outside it and learn their membership from the log or a
    /// snapshot). Later configurations come from the log (§6).
    pub voters: Vec<NodeId>,
    /// Bootstrap members that receive the log but neither vote nor count
    /// towards a quorum (e.g. a replica catching up before it becomes a
    /// voter).
    pub learners: Vec<NodeId>,
    /// The shortest election timeout; each node draws its timeout uniformly
    /// from `election_ticks..2 * election_ticks` (§5.2). In production a tick
    /// is wall-clock driven and independent of the disk, so a slow fdatasync
    /// delays no timer.
    pub election_ticks: u64,
    pub heartbeat_ticks: u64,
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum within an election timeout
    /// steps down; a follower that heard from a leader within the shortest
    /// election timeout ignores vote requests (Ongaro's thesis §6.2, §4.2.3).
    pub check_quorum: bool,
    /// Serve reads from a lease (needs `check_quorum`).
    pub lease_reads: bool,
    /// How many ticks a lease is shortened by, to absorb clock drift between
    /// nodes.
    pub drift_ticks: u64,
    /// Bytes of entries in one append message.
    pub msg_bytes_max: usize,
    /// Appends in flight to one follower.
    pub inflight_msgs_max: usize,
    /// Bytes of entries in flight to one follower.
    pub inflight_bytes_max: usize,
    /// Bytes of committed entries handed out in one `Ready`.
    pub apply_bytes_max: usize,
    pub seed: u64,
    /// Check the state invariants after every input.
    pub check_invariants: bool,
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

impl Config {
    pub fn new(id: NodeId, group: GroupId, voters: Vec<NodeId>) -> Self {
        Config {
            id,
            group,
            voters,
            learners: Vec::new(),
            election_ticks: 10,
            heartbeat_ticks: 2,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            drift_ticks: 2,
            msg_bytes_max: 1 << 20,
            inflight_msgs_max: 64,
            inflight_bytes_max: 8 << 20,
            apply_bytes_max: 4 << 20,
            seed: id.0,
            check_invariants: cfg!(debug_assertions),
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    /// The bootstrap configuration.
    pub fn bootstrap(&self) -> Result<Membership, RaftError> {
        Membership::new(&self.voters, &self.learners)
            .map_err(|why| RaftError::Config(format!("bootstrap configuration: {why}")))
    }

    pub(super) fn validate(&self) -> Result<(), RaftError> {
        let bad = |why: &str| Err(RaftError::Config(why.to_string()));
        self.bootstrap()?;
        if self.id == NodeId(0) {
            return bad("node id 0 is reserved");
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return bad("need 0 < heartbeat_ticks < election_ticks");
        }
        if self.lease_reads && (!self.check_quorum || self.drift_ticks >= self.election_ticks) {
            return bad("lease reads need check_quorum and drift_ticks < election_ticks");
        }
        if self.inflight_msgs_max == 0 || self.msg_bytes_max == 0 {
            return bad("flow control limits must be positive");
        }
        Ok(())
    }
}

impl Config {
    /// Whether `bug` is planted (always false without the feature).
    #[cfg(feature = "planted-bugs")]
    pub(super) fn plants(&self, bug: PlantedBug) -> bool {
        self.planted_bug == Some(bug)
    }

    #[cfg(not(feature = "planted-bugs"))]
    pub(super) fn plants(&self, _bug: PlantedBug) -> bool {
        false
    }
}
