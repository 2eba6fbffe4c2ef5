//! State invariants, checked after every input when
//! `Config::check_invariants` is set (debug and simulation builds).

use super::{Raft, Role};
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
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader, Some(self.cfg.id));
                assert_eq!(self.vote, Some(self.cfg.id), "a leader voted for itself");
                assert!(self.voters.contains(&self.cfg.id), "a learner never leads");
                assert_eq!(
                    self.progress.len(),
                    self.voters.len() - 1 + self.learners.len()
                );
                for pr in self.progress.values() {
                    assert!(pr.match_index < pr.next_index, "match below next");
                    assert!(pr.match_index <= log.last_index(), "match beyond the log");
                }
            }
            Role::Candidate => assert_eq!(self.vote, Some(self.cfg.id)),
            Role::PreCandidate | Role::Follower => {
                assert!(self.progress.is_empty(), "only a leader tracks progress")
            }
        }
        self.ghost = Ghost {
            term: self.term,
            committed: log.committed(),
            applied: log.applied(),
        };
    }
}
