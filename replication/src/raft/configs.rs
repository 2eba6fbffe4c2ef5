//! The configurations a replica's log holds: the one in force at the
//! compaction point, and every configuration entry after it. A replica
//! uses the latest, committed or not (§6); when a conflicting leader
//! truncates the log, the entries it drops leave this list too, and the
//! configuration falls back to the one before them.
//!
//! # Invariants
//! Entries are ascending, after the compaction point, and each is a
//! configuration entry the log holds (same index and term). Each
//! configuration follows the one before it through the joint phase
//! ([`Membership::follows`]).

use super::log::RaftLog;
use super::membership::Membership;
use crate::types::{Entry, EntryKind, LogIndex, Term};

#[derive(Debug, Clone)]
pub(crate) struct Configs {
    /// In force at the log's compaction point (`RaftLog::snapshot_index`):
    /// from the snapshot, or the bootstrap configuration at index 0.
    base: Membership,
    /// Configuration entries of the in-memory log: (index, term, config).
    entries: Vec<(LogIndex, Term, Membership)>,
}

/// Decodes a configuration entry that was validated when it entered the
/// process (on receipt, at restore, or built by the leader).
fn decoded(e: &Entry) -> Membership {
    Membership::decode(&e.data).expect("configuration entries are validated on entry")
}

impl Configs {
    pub(crate) fn new(base: Membership) -> Self {
        Configs {
            base,
            entries: Vec::new(),
        }
    }

    /// The configuration in force: the latest in the log.
    pub(crate) fn current(&self) -> &Membership {
        self.entries.last().map_or(&self.base, |(_, _, m)| m)
    }

    /// Index of the newest configuration entry still in memory; `None` if
    /// the configuration in force is the one at the compaction point.
    pub(crate) fn latest_index(&self) -> Option<LogIndex> {
        self.entries.last().map(|(i, _, _)| *i)
    }

    /// Configuration entries after `index`.
    pub(crate) fn count_after(&self, index: LogIndex) -> usize {
        self.entries.iter().filter(|(i, _, _)| *i > index).count()
    }

    /// The configuration in force at `index`; `None` below the compaction
    /// point (the log knows nothing there).
    pub(crate) fn at(&self, index: LogIndex, log: &RaftLog) -> Option<&Membership> {
        if index < log.snapshot_index() {
            return None;
        }
        let m = self
            .entries
            .iter()
            .rev()
            .find(|(i, _, _)| *i <= index)
            .map_or(&self.base, |(_, _, m)| m);
        Some(m)
    }

    /// `appended` went into the log (possibly replacing a suffix, or only
    /// partly, where the log already held them): forget configuration
    /// entries the log no longer holds — rolling back to the configuration
    /// before them — then track the new ones.
    pub(crate) fn on_append(&mut self, log: &RaftLog, appended: &[Entry]) {
        self.forget_replaced(log);
        for e in appended.iter().filter(|e| e.kind == EntryKind::ConfChange) {
            let newer = self.latest_index().is_none_or(|i| e.index > i);
            if newer && e.index > log.snapshot_index() && log.term(e.index) == Some(e.term) {
                self.entries.push((e.index, e.term, decoded(e)));
            }
        }
    }

    /// Drops tracked entries the log no longer holds. Truncation removes a
    /// suffix, and an entry at a tracked index with another term is another
    /// entry (Log Matching), so checking from the back suffices.
    fn forget_replaced(&mut self, log: &RaftLog) {
        while let Some((i, t, _)) = self.entries.last() {
            if log.term(*i) == Some(*t) && *i > log.snapshot_index() {
                break;
            }
            self.entries.pop();
        }
    }

    /// The log was compacted: entries at or below the new compaction point
    /// fold into the base.
    pub(crate) fn on_compact(&mut self, log: &RaftLog) {
        let point = log.snapshot_index();
        let folded = self.entries.iter().filter(|(i, _, _)| *i <= point).count();
        if let Some((_, _, m)) = self.entries.drain(..folded).next_back() {
            self.base = m;
        }
    }

    /// A snapshot carrying `membership` (the configuration at its index)
    /// replaced the log up to its index; entries after it may have been
    /// kept.
    pub(crate) fn on_snapshot(&mut self, log: &RaftLog, membership: Membership) {
        self.base = membership;
        let point = log.snapshot_index();
        self.entries
            .retain(|(i, t, _)| *i > point && log.term(*i) == Some(*t));
    }

    /// The first configuration that does not follow the one before it
    /// through the joint phase, described; `None` if the chain is sound.
    pub(crate) fn chain_error(&self, log: &RaftLog) -> Option<String> {
        let mut prev = (log.snapshot_index(), &self.base);
        for (i, _, m) in &self.entries {
            if !m.follows(prev.1) {
                return Some(format!(
                    "configuration {m:?} at {i} does not follow {:?} at {} through the joint phase",
                    prev.1, prev.0
                ));
            }
            prev = (*i, m);
        }
        None
    }

    /// # Panics
    /// If an invariant of the module doc is broken (`chain`: also the
    /// joint-phase chain).
    pub(crate) fn check(&self, log: &RaftLog, chain: bool) {
        let mut prev_index = log.snapshot_index();
        for (i, t, _) in &self.entries {
            assert!(*i > prev_index, "configuration entries ascending");
            let held = log
                .entry(*i)
                .expect("a tracked configuration entry is in the log");
            assert_eq!(held.term, *t, "tracked configuration entry replaced");
            assert_eq!(held.kind, EntryKind::ConfChange);
            prev_index = *i;
        }
        if chain && let Some(why) = self.chain_error(log) {
            panic!("{why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    fn simple(voters: &[u64]) -> Membership {
        let v: Vec<NodeId> = voters.iter().copied().map(NodeId).collect();
        Membership::new(&v, &[]).expect("valid")
    }

    fn conf(index: u64, term: u64, m: &Membership) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind: EntryKind::ConfChange,
            data: m.encode(),
        }
    }

    fn normal(index: u64, term: u64) -> Entry {
        Entry::normal(LogIndex(index), Term(term), vec![1].into())
    }

    /// §6: "a server always uses the latest configuration in its log,
    /// regardless of whether the entry is committed"; when a new leader
    /// overwrites the uncommitted configuration entry, the server falls
    /// back to the configuration before it.
    #[test]
    fn truncating_a_configuration_entry_rolls_back() {
        let old = simple(&[1, 2, 3]);
        let joint = old.joint_with(&simple(&[2, 3, 4]));
        let mut log = RaftLog::restore((LogIndex(0), Term(0)), vec![normal(1, 1)], LogIndex(1));
        let mut c = Configs::new(old.clone());
        let appended = [conf(2, 1, &joint), normal(3, 1)];
        log.maybe_append(LogIndex(1), Term(1), &appended)
            .expect("matches");
        c.on_append(&log, &appended);
        assert_eq!(c.current(), &joint);
        assert_eq!(c.at(LogIndex(1), &log), Some(&old));
        assert_eq!(c.at(LogIndex(3), &log), Some(&joint));
        c.check(&log, true);
        // A leader of term 2 never saw it: its entry at 2 replaces it.
        let theirs = [normal(2, 2)];
        log.maybe_append(LogIndex(1), Term(1), &theirs)
            .expect("matches");
        c.on_append(&log, &theirs);
        assert_eq!(c.current(), &old, "rolled back");
        assert_eq!(c.latest_index(), None);
        c.check(&log, true);
    }

    #[test]
    fn compaction_and_snapshots_keep_the_configuration_at_their_point() {
        let old = simple(&[1, 2, 3]);
        let joint = old.joint_with(&simple(&[1, 2]));
        let new = joint.leave_joint();
        let entries = vec![
            normal(1, 1),
            conf(2, 1, &joint),
            conf(3, 1, &new),
            normal(4, 1),
        ];
        let mut log = RaftLog::restore((LogIndex(0), Term(0)), Vec::new(), LogIndex(0));
        log.maybe_append(LogIndex(0), Term(0), &entries)
            .expect("matches");
        let mut c = Configs::new(old.clone());
        c.on_append(&log, &entries);
        assert_eq!(c.current(), &new);
        log.take_unstable();
        assert!(log.persisted_to(LogIndex(4), Term(1)));
        log.commit_to(LogIndex(4));
        log.take_committed(usize::MAX);
        assert!(log.compact_to(LogIndex(2)));
        c.on_compact(&log);
        assert_eq!(
            c.at(LogIndex(2), &log),
            Some(&joint),
            "folded into the base"
        );
        assert_eq!(c.at(LogIndex(1), &log), None, "below the compaction point");
        assert_eq!(c.current(), &new);
        c.check(&log, true);
        // A snapshot at 5, an entry the log does not hold, replaces it all.
        log.install_snapshot(LogIndex(5), Term(2));
        c.on_snapshot(&log, new.clone());
        assert_eq!(c.current(), &new);
        assert_eq!(c.latest_index(), None);
        c.check(&log, true);
    }
}
