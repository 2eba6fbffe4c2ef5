//! Leader election (§5.2) with pre-vote and check-quorum (Ongaro's thesis
//! §9.6, §6.2), and the election restriction (§5.4.1).

use super::membership::VoteResult;
use super::message::Body;
use super::{PlantedBug, Raft, Role};
use crate::types::{Entry, NodeId, Term};

impl Raft {
    pub(super) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.can_campaign() && self.election_elapsed >= self.randomized_timeout {
            self.election_elapsed = 0;
            if self.cfg.pre_vote {
                self.become_pre_candidate();
            } else {
                self.become_candidate(false);
            }
        }
    }

    pub(super) fn tick_leader(&mut self) {
        self.tick_transfer();
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                // Thesis §6.2: a leader cut off from a quorum steps down, so
                // its clients learn at once instead of waiting on it.
                self.become_follower(self.term, None);
                return;
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Whether the voters heard from since the last call (this node
    /// included, if it votes) form a quorum (of both halves while joint);
    /// starts a new round.
    fn quorum_recently_active(&mut self) -> bool {
        let me = self.cfg.id;
        let active = self
            .voting()
            .has_quorum(|id| id == me || self.progress.get(&id).is_some_and(|p| p.recent_active));
        for pr in self.progress.values_mut() {
            pr.recent_active = false;
        }
        active
    }

    /// §6: "if a server receives a RequestVote request within the minimum
    /// election timeout of hearing from a current leader, it does not
    /// update its term or grant its vote": a live leader is not disturbed
    /// by a removed server (one that never learned of its removal keeps
    /// campaigning) or a partitioned node rejoining. A leader hears from
    /// itself. With check-quorum a node that restarted within that timeout
    /// ignores them too, so a leader lease stays sound across a voter's
    /// restart.
    pub(super) fn in_lease(&self) -> bool {
        (self.cfg.check_quorum || self.leader.is_some())
            && self.election_elapsed < self.cfg.election_ticks
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "terms never go back");
        if self.role == Role::Leader {
            self.out.leadership_lost = Some(self.term);
            let failed = self.reads.fail_all();
            self.out.failed_reads.extend(failed);
        }
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.transfer = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.progress.clear();
        self.votes.clear();
        self.reset_randomized_timeout();
    }

    fn become_pre_candidate(&mut self) {
        assert!(self.role != Role::Leader, "a leader does not campaign");
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.reset_randomized_timeout();
        self.votes.insert(self.cfg.id, true);
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for to in self.peers() {
            self.send(
                to,
                self.term.next(),
                Body::PreVote {
                    last_index,
                    last_term,
                },
            );
        }
        self.poll();
    }

    pub(super) fn become_candidate(&mut self, transfer: bool) {
        assert!(self.role != Role::Leader, "a leader does not campaign");
        assert!(
            self.can_campaign(),
            "a learner or removed node does not campaign"
        );
        self.term = self.term.next();
        self.vote = Some(self.cfg.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        // The candidate's own vote counts once it is durable, like every
        // other vote: it comes back to this node after persistence (as in
        // etcd). A single voter would otherwise lead before its term and
        // vote are durable; a crash could then lose them, and the node
        // would elect itself in that term again, or vote for another node
        // in it: two leaders of one term, and with a learner, two entries
        // under one (index, term) (found by the simulator, seeds 70196 and
        // 18419).
        let me = self.cfg.id;
        self.send(me, self.term, Body::VoteResponse { granted: true });
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        for to in self.peers() {
            let body = Body::Vote {
                last_index,
                last_term,
                transfer,
            };
            self.send(to, self.term, body);
        }
        self.poll();
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(self.vote, Some(self.cfg.id), "a leader voted for itself");
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.votes.clear();
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        // Every member probed from the end of the log, counted active so
        // check-quorum gives the new term a full round before judging it.
        let next = self.log.last_index().next();
        self.progress.clear();
        self.track_members(next);
        self.reads = Default::default();
        self.transfer = None;
        self.lease_forfeited = false;
        // §5.4.2 / §8: a leader commits entries of earlier terms only by
        // committing one of its own; the no-op does that at once, and also
        // tells the leader what is committed before it serves reads.
        let noop = Entry::normal(next, self.term, Vec::new().into());
        self.log.append(&[noop]);
        self.broadcast_append(true);
    }

    /// Counts votes (a majority of each half while joint, §6); wins or
    /// loses the (pre-)election.
    fn poll(&mut self) {
        match self.voting().vote_result(&self.votes) {
            VoteResult::Won => match self.role {
                Role::PreCandidate => self.become_candidate(false),
                Role::Candidate => self.become_leader(),
                _ => {}
            },
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    pub(super) fn record_vote(&mut self, from: NodeId, granted: bool) {
        if self.membership().is_voter(from) {
            self.votes.entry(from).or_insert(granted);
            self.poll();
        }
    }

    /// RequestVote and PreVote at `m.term >= self.term` (higher terms were
    /// adopted already, except for pre-votes).
    pub(super) fn handle_vote_request(&mut self, from: NodeId, msg_term: Term, body: &Body) {
        let (last_index, last_term, pre) = match *body {
            Body::PreVote {
                last_index,
                last_term,
            } => (last_index, last_term, true),
            Body::Vote {
                last_index,
                last_term,
                ..
            } => (last_index, last_term, false),
            _ => unreachable!("only vote requests are routed here"),
        };
        // §5.2: one vote per term, first come first served; a pre-vote for a
        // later term binds nothing.
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && msg_term > self.term);
        // §5.4.1: only for a candidate whose log is at least as up-to-date.
        let up_to_date = self.log.is_up_to_date(last_index, last_term)
            || self.planted(PlantedBug::VoteWithoutLogCheck);
        let granted = can_vote && up_to_date;
        if pre {
            let term = if granted { msg_term } else { self.term };
            self.send(from, term, Body::PreVoteResponse { granted });
            return;
        }
        if granted {
            self.vote = Some(from);
            self.election_elapsed = 0;
        }
        self.send(from, self.term, Body::VoteResponse { granted });
    }
}
