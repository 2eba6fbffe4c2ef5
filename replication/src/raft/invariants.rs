//! State invariants, checked after every input when
//! `Config::check_invariants` is set (debug and simulation builds).

use super::{PlantedBug, Raft, Role};
use crate::types::{LogIndex, Term};

/// What the previous check saw, to prove monotonicity.
#[derive(Debug, Default)]
pub(super) struct Ghost {
    term: Term,
    committed: LogIndex,
    applied: LogIndex,
}

impl Raft {
    /// # Panics
    /// If the state is inconsistent: a bug in this crate, never bad input.
    pub(super) fn check_invariants(&mut self) {
        let log = &self.log;
        log.check();
        // purged <= snapshot <= applied <= committed <= last index; the
        // in-memory log is purged exactly up to its snapshot point.
        assert_eq!(log.first_index().prev(), log.snapshot_index());
        assert!(log.snapshot_index() <= log.applied());
        assert!(log.applied() <= log.committed() && log.committed() <= log.last_index());
        assert!(self.term >= self.ghost.term, "term went back");
        assert!(log.committed() >= self.ghost.committed, "commit went back");
        assert!(log.applied() >= self.ghost.applied, "applied went back");
        assert!(
            log.last_term() <= self.term,
            "log holds an entry from the future"
        );
        // Configurations: each tracked one is a configuration entry of the
        // log, and each follows the one before through the joint phase
        // (unless the planted bug skips that phase).
        let chain = !self.planted(PlantedBug::ConfChangeWithoutJoint);
        self.configs.check(log, chain);
        match self.role {
            Role::Leader => self.check_leader(),
            Role::Candidate => {
                assert_eq!(self.vote, Some(self.cfg.id));
                assert!(self.can_campaign(), "only a voter campaigns");
            }
            Role::PreCandidate => {
                assert!(self.progress.is_empty(), "only a leader tracks progress");
                assert!(self.can_campaign(), "only a voter campaigns");
            }
            Role::Follower => {
                assert!(self.progress.is_empty(), "only a leader tracks progress")
            }
        }
        let log = &self.log;
        self.ghost = Ghost {
            term: self.term,
            committed: log.committed(),
            applied: log.applied(),
        };
    }
}

impl Raft {
    fn check_leader(&self) {
        let (me, log) = (self.cfg.id, &self.log);
        assert_eq!(self.leader, Some(me));
        assert_eq!(self.vote, Some(me), "a leader voted for itself");
        // A leader is a voter of its configuration, except between a C_new
        // that leaves it out and that entry's commit (after which it steps
        // down at once, §6).
        assert!(
            self.is_voter() || self.removal_pending(),
            "a leader outside its committed configuration"
        );
        // One change in flight: once the leader knows what is committed (an
        // entry of its term is), at most one configuration entry is not.
        if log.term(log.committed()) == Some(self.term) {
            assert!(
                self.configs.count_after(log.committed()) <= 1,
                "more than one configuration entry uncommitted"
            );
        }
        assert!(
            self.progress.keys().copied().eq(self.targets()),
            "the leader tracks exactly the other members"
        );
        for pr in self.progress.values() {
            assert!(pr.match_index < pr.next_index, "match below next");
            assert!(pr.match_index <= log.last_index(), "match beyond the log");
        }
    }
}
