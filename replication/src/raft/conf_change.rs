//! Membership change by joint consensus (§6; Ongaro's thesis §4.3).
//!
//! The leader proposes a change by appending the joint configuration
//! C_old,new; every replica uses the latest configuration in its log as soon
//! as it is appended, committed or not. While joint, elections, commitment,
//! ReadIndex confirmation, leases and check-quorum need a majority of C_old
//! and a majority of C_new (`Membership::has_quorum`). Once C_old,new is
//! committed, the leader (this one or a later one) appends C_new; once C_new
//! is committed, a leader that is not one of its voters steps down, handing
//! over to an up-to-date voter of C_new. One change at a time: a second
//! proposal is refused until C_new is committed.
//!
//! Learners are added, removed and promoted (or voters demoted) the same
//! way; a learner added at run time gets the log by normal replication or a
//! snapshot.

use super::membership::Membership;
use super::message::Body;
use super::progress::Progress;
use super::{PlantedBug, Proposed, Raft, RaftError, Role};
use crate::types::{Entry, EntryKind, LogIndex, NodeId};

impl Raft {
    /// The configuration in force: the latest in the log (§6).
    pub fn membership(&self) -> &Membership {
        self.configs.current()
    }

    /// The configuration in force at `index`; `None` below the compaction
    /// point. A snapshot image at `index` records it.
    pub fn membership_at(&self, index: LogIndex) -> Option<&Membership> {
        self.configs.at(index, &self.log)
    }

    /// Starts a change to `voters` and `learners` (lists in any order) at
    /// the leader: appends C_old,new. The change is complete when the C_new
    /// entry the leader appends after it is committed. Errors leave the
    /// state untouched: `NotLeader`, `TransferInProgress`, `BadConfChange`
    /// (an invalid or unchanged configuration), `ConfChangeInProgress`
    /// (another change is not complete, or this new leader has not
    /// committed an entry of its term, so it cannot know whether one is).
    pub fn propose_conf_change(
        &mut self,
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    ) -> Result<Proposed, RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(RaftError::TransferInProgress);
        }
        let next = Membership::new(&voters, &learners).map_err(RaftError::BadConfChange)?;
        if self.conf_change_pending() {
            return Err(RaftError::ConfChangeInProgress);
        }
        if next == *self.membership() {
            return Err(RaftError::BadConfChange("the configuration is unchanged"));
        }
        let entry = if self.planted(PlantedBug::ConfChangeWithoutJoint) {
            next
        } else {
            self.membership().joint_with(&next)
        };
        let index = self.append_configuration(entry);
        self.after_input();
        Ok(Proposed {
            first: index,
            last: index,
            term: self.term,
        })
    }

    /// Whether a change is in flight: the configuration in force is joint
    /// or not yet committed, or this leader has not committed an entry of
    /// its term (until then, entries before its own may be committed or
    /// not).
    fn conf_change_pending(&self) -> bool {
        self.membership().is_joint()
            || self.latest_config_uncommitted()
            || self.log.term(self.log.committed()) != Some(self.term)
    }

    /// The newest configuration entry is beyond the commit index.
    fn latest_config_uncommitted(&self) -> bool {
        self.configs
            .latest_index()
            .is_some_and(|i| i > self.log.committed())
    }

    /// Leader: appends a configuration entry, puts it in force, and sends it.
    fn append_configuration(&mut self, m: Membership) -> LogIndex {
        assert_eq!(
            self.role,
            Role::Leader,
            "only a leader appends configurations"
        );
        let entry = Entry {
            term: self.term,
            index: self.log.last_index().next(),
            kind: EntryKind::ConfChange,
            data: m.encode(),
        };
        let index = entry.index;
        self.log.append(std::slice::from_ref(&entry));
        self.configs.on_append(&self.log, &[entry]);
        self.track_members(index);
        self.broadcast_append(false);
        index
    }

    /// Leader: tracks every member of the configuration in force and only
    /// them. A new member is probed from `next` (the configuration entry
    /// that added it); a transfer to a node that is no longer an incoming
    /// voter is dropped.
    pub(super) fn track_members(&mut self, next: LogIndex) {
        let targets = self.targets();
        self.progress.retain(|id, _| targets.contains(id));
        for id in targets {
            self.progress.entry(id).or_insert_with(|| {
                let mut pr = Progress::new(next);
                // Counted active so check-quorum gives it a round to answer.
                pr.recent_active = true;
                pr
            });
        }
        if let Some(t) = self.transfer
            && !self.membership().voters.contains(&t.to)
        {
            self.transfer = None;
        }
    }

    /// Leader, after every input: once the configuration in force is
    /// committed, a joint one is followed by its C_new (§6: "once C_old,new
    /// has been committed ... the leader [creates] a log entry describing
    /// C_new"), and a C_new that leaves this leader out makes it step down
    /// (§6: "the leader steps down ... once it has committed the C_new log
    /// entry").
    pub(super) fn advance_membership(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if self.latest_config_uncommitted() {
            return;
        }
        if self.membership().is_joint() {
            let next = self.membership().leave_joint();
            self.append_configuration(next);
        } else if !self.membership().voters.contains(&self.cfg.id) {
            self.step_down_removed();
        }
    }

    /// Whether this node may campaign: a voter of the configuration in
    /// force, or a node that C_new (not yet known committed) removed from
    /// the joint configuration in which it voted. The latter is typically
    /// the removed leader that lost office before C_new committed: it may
    /// hold the only copy of C_new and the longest log, so the others can
    /// be elected neither under the joint configuration (it denies them its
    /// vote) nor under C_new (they do not have it). It campaigns under
    /// C_new, asking C_new's voters and not counting itself, then leads as
    /// before: commits C_new and steps down (found by the simulator, seed
    /// 10216: C_old {1}, C_new {3}).
    pub(super) fn can_campaign(&self) -> bool {
        self.is_voter() || self.removal_pending()
    }

    /// The configuration in force is a C_new that leaves this node out,
    /// not known committed, after a joint configuration in which it voted.
    pub(super) fn removal_pending(&self) -> bool {
        let (m, me) = (self.membership(), self.cfg.id);
        let Some(at) = self.configs.latest_index() else {
            return false;
        };
        !m.is_joint()
            && !m.is_voter(me)
            && self.latest_config_uncommitted()
            && self
                .membership_at(at.prev())
                .is_some_and(|prev| prev.is_voter(me))
    }

    /// The leader is not a voter of the committed C_new: it steps down and
    /// tells a voter of C_new whose log matches its own to campaign at once
    /// (thesis §3.10's `TimeoutNow`), so the group need not wait out an
    /// election timeout for a new leader.
    fn step_down_removed(&mut self) {
        let last = self.log.last_index();
        let heir = self
            .membership()
            .voters
            .iter()
            .copied()
            .find(|v| self.progress.get(v).is_some_and(|p| p.match_index == last));
        if let Some(to) = heir {
            self.send(to, self.term, Body::TimeoutNow);
        }
        self.become_follower(self.term, None);
    }
}
