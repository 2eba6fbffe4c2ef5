//! The in-memory view of one group's log: entries, and the commit, apply and
//! persistence marks over them.
//!
//! # Invariants
//! `first_index - 1 <= applied <= committed <= last_index`, `persisted <=
//! last_index`, and every entry's index is its position (checked by
//! [`RaftLog::check`]).

use crate::types::{Entry, LogIndex, Term};

#[derive(Debug, Clone)]
pub struct RaftLog {
    /// Index and term of the entry just before `entries[0]` (0/0 for a log
    /// that starts at 1).
    before_index: LogIndex,
    before_term: Term,
    entries: Vec<Entry>,
    pub(crate) committed: LogIndex,
    pub(crate) applied: LogIndex,
    /// Entries from this index on have not yet been handed to the host to
    /// persist.
    unstable_from: LogIndex,
    /// The host confirmed entries up to here durable (with the terms they have
    /// in the log now).
    persisted: LogIndex,
}

impl RaftLog {
    /// A log recovered from storage: `entries` are durable and contiguous
    /// after `before`.
    pub fn restore(before: (LogIndex, Term), entries: Vec<Entry>, committed: LogIndex) -> Self {
        for (n, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index.0,
                before.0.0 + 1 + n as u64,
                "restored entries are contiguous"
            );
        }
        let last = LogIndex(before.0.0 + entries.len() as u64);
        assert!(
            committed <= last,
            "persisted commit {committed} beyond last index {last}"
        );
        let committed = committed.max(before.0);
        RaftLog {
            before_index: before.0,
            before_term: before.1,
            entries,
            committed,
            applied: before.0,
            unstable_from: last.next(),
            persisted: last,
        }
    }

    pub fn first_index(&self) -> LogIndex {
        self.before_index.next()
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.before_index.0 + self.entries.len() as u64)
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.before_term, |e| e.term)
    }

    pub fn committed(&self) -> LogIndex {
        self.committed
    }

    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    pub(crate) fn unstable_from(&self) -> LogIndex {
        self.unstable_from
    }

    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// Term of the entry at `index`, if the log still holds it (or it is the
    /// compaction point).
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.before_index {
            return Some(self.before_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.before_index || index > self.last_index() {
            return None;
        }
        Some(&self.entries[(index.0 - self.before_index.0 - 1) as usize])
    }

    pub fn match_term(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// §5.4.1: a candidate's log is at least as up-to-date as ours if its last
    /// term is higher, or equal with a last index at least ours.
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Appends entries that follow the last one (the leader's own proposals).
    pub fn append(&mut self, entries: &[Entry]) {
        for e in entries {
            assert_eq!(e.index, self.last_index().next(), "append is contiguous");
            assert!(
                e.term >= self.last_term(),
                "terms never decrease along the log"
            );
            self.entries.push(e.clone());
        }
    }

    /// The follower side of AppendEntries (§5.3): if our entry at `prev`
    /// matches, drop any conflicting suffix, append what is new and return the
    /// index of the last entry the leader sent. `None` if `prev` does not match.
    pub fn maybe_append(
        &mut self,
        prev: LogIndex,
        prev_term: Term,
        entries: &[Entry],
    ) -> Option<LogIndex> {
        if !self.match_term(prev, prev_term) {
            return None;
        }
        let last_new = LogIndex(prev.0 + entries.len() as u64);
        let conflict = entries
            .iter()
            .find(|e| !self.match_term(e.index, e.term) && e.index > self.before_index);
        if let Some(first) = conflict {
            let at = first.index;
            assert!(
                at > self.committed,
                "conflict at {at} would overwrite committed entry (committed {})",
                self.committed
            );
            if at <= self.last_index() {
                self.entries
                    .truncate((at.0 - self.before_index.0 - 1) as usize);
                self.unstable_from = self.unstable_from.min(at);
                self.persisted = self.persisted.min(at.prev());
            }
            let from = (at.0 - prev.0 - 1) as usize;
            self.append(&entries[from..]);
        }
        Some(last_new)
    }

    /// The follower's answer to a rejected append at (`index`, `term`): the
    /// largest index at or below `index` whose term is at most `term`, and its
    /// term. The leader can skip every entry above it (fast backtracking,
    /// §5.3 "the follower can include the term of the conflicting entry").
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> (LogIndex, Term) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Some(t) if t > term && i > self.before_index => i = i.prev(),
                Some(t) => return (i, t),
                None => return (i, Term(0)),
            }
        }
    }

    /// Entries from `from` on, at most `bytes_max` bytes (but at least one).
    pub fn entries_from(&self, from: LogIndex, bytes_max: usize) -> Vec<Entry> {
        let Some(start) = from.0.checked_sub(self.before_index.0 + 1) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in self.entries.iter().skip(start as usize) {
            if !out.is_empty() && bytes + e.size_bytes() > bytes_max {
                break;
            }
            bytes += e.size_bytes();
            out.push(e.clone());
        }
        out
    }

    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    /// Entries not yet handed to the host for persistence; marks them handed.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let out = self.entries_from(self.unstable_from, usize::MAX);
        self.unstable_from = self.last_index().next();
        out
    }

    /// Committed entries not yet applied; marks them applied (the host applies
    /// what a `Ready` carries, in order).
    pub fn take_committed(&mut self, bytes_max: usize) -> Vec<Entry> {
        if self.applied >= self.committed {
            return Vec::new();
        }
        let mut out = self.entries_from(self.applied.next(), bytes_max);
        out.truncate((self.committed.0 - self.applied.0) as usize);
        if let Some(last) = out.last() {
            self.applied = last.index;
        }
        out
    }

    /// The host made entries up to (`index`, `term`) durable. Ignored if that
    /// entry has since been replaced (a later persist will cover the new one).
    pub fn persisted_to(&mut self, index: LogIndex, term: Term) -> bool {
        if index <= self.persisted || index >= self.unstable_from {
            return false;
        }
        if !self.match_term(index, term) {
            return false;
        }
        self.persisted = index;
        true
    }

    /// Index of the last entry dropped by compaction or replaced by a
    /// snapshot (0 if none): "purged" and "snapshot" of the invariants.
    pub fn snapshot_index(&self) -> LogIndex {
        self.before_index
    }

    /// Drops entries up to `index` (at most the applied index; the state
    /// machine holds their effect). Returns whether anything was dropped.
    pub fn compact_to(&mut self, index: LogIndex) -> bool {
        let index = index.min(self.applied).min(self.persisted);
        if index <= self.before_index {
            return false;
        }
        let term = self.term(index).expect("entry above the compaction point");
        self.entries
            .drain(..(index.0 - self.before_index.0) as usize);
        self.before_index = index;
        self.before_term = term;
        true
    }

    /// Replaces the log up to (`index`, `term`) by a snapshot (§7: "if
    /// existing log entry has same index and term as snapshot's last included
    /// entry, retain log entries following it and reply"; otherwise discard
    /// the entire log). Returns false (and changes nothing) if the snapshot is
    /// not ahead of the commit index.
    pub fn install_snapshot(&mut self, index: LogIndex, term: Term) -> bool {
        if index <= self.committed {
            return false;
        }
        let keep = self.match_term(index, term);
        if keep {
            self.entries
                .drain(..(index.0 - self.before_index.0) as usize);
        } else {
            self.entries.clear();
        }
        self.before_index = index;
        self.before_term = term;
        self.committed = index;
        self.applied = index;
        if keep {
            self.persisted = self.persisted.max(index);
            self.unstable_from = self.unstable_from.max(index.next());
        } else {
            self.persisted = index;
            self.unstable_from = index.next();
        }
        true
    }

    /// # Panics
    /// If an invariant of the module doc is broken.
    pub fn check(&self) {
        assert!(
            self.before_index <= self.applied,
            "applied below the log start"
        );
        assert!(self.applied <= self.committed, "applied beyond committed");
        assert!(
            self.committed <= self.last_index(),
            "committed beyond last index"
        );
        assert!(
            self.persisted <= self.last_index(),
            "persisted beyond last index"
        );
        assert!(
            self.unstable_from <= self.last_index().next(),
            "unstable mark beyond the end"
        );
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            assert_eq!(first.index, self.before_index.next(), "first entry index");
            assert_eq!(last.index, self.last_index(), "last entry index");
            assert!(first.term >= self.before_term, "terms along the log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry {
        Entry::normal(LogIndex(index), Term(term), vec![index as u8].into())
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| e(i as u64 + 1, t))
            .collect();
        RaftLog::restore((LogIndex(0), Term(0)), entries, LogIndex(0))
    }

    #[test]
    fn maybe_append_truncates_only_the_conflicting_suffix() {
        let mut log = log_of(&[1, 1, 2, 2]);
        // §5.3: "If an existing entry conflicts with a new one (same index but
        // different terms), delete the existing entry and all that follow it."
        let last = log.maybe_append(LogIndex(2), Term(1), &[e(3, 3)]);
        assert_eq!(last, Some(LogIndex(3)));
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.term(LogIndex(3)), Some(Term(3)));
        // A stale, shorter append that matches changes nothing.
        let last = log.maybe_append(LogIndex(1), Term(1), &[e(2, 1)]);
        assert_eq!(last, Some(LogIndex(2)));
        assert_eq!(log.last_index(), LogIndex(3));
        // A mismatching prev is rejected.
        assert_eq!(log.maybe_append(LogIndex(3), Term(2), &[]), None);
        log.check();
    }

    #[test]
    fn find_conflict_by_term_skips_whole_terms() {
        let log = log_of(&[1, 1, 2, 2, 2, 4, 4]);
        assert_eq!(
            log.find_conflict_by_term(LogIndex(7), Term(3)),
            (LogIndex(5), Term(2))
        );
        assert_eq!(
            log.find_conflict_by_term(LogIndex(9), Term(4)),
            (LogIndex(7), Term(4))
        );
        assert_eq!(
            log.find_conflict_by_term(LogIndex(5), Term(1)),
            (LogIndex(2), Term(1))
        );
        assert_eq!(
            log.find_conflict_by_term(LogIndex(5), Term(0)),
            (LogIndex(0), Term(0))
        );
    }

    #[test]
    fn compaction_and_snapshot_install_keep_the_invariants() {
        let mut log = log_of(&[1, 1, 2, 2, 3]);
        log.commit_to(LogIndex(4));
        log.take_committed(usize::MAX);
        // Only applied (and persisted) entries leave memory.
        assert!(log.compact_to(LogIndex(5)));
        assert_eq!(log.snapshot_index(), LogIndex(4));
        assert_eq!(log.term(LogIndex(4)), Some(Term(2)));
        assert_eq!(log.term(LogIndex(3)), None);
        log.check();
        // §7: a snapshot matching an entry keeps the entries after it...
        let mut keep = log_of(&[1, 1, 2, 2, 3]);
        assert!(keep.install_snapshot(LogIndex(3), Term(2)));
        assert_eq!(
            (keep.first_index(), keep.last_index()),
            (LogIndex(4), LogIndex(5))
        );
        assert_eq!(
            (keep.committed(), keep.applied()),
            (LogIndex(3), LogIndex(3))
        );
        keep.check();
        // ...otherwise the whole log goes.
        let mut drop = log_of(&[1, 1, 2, 2, 3]);
        drop.take_unstable();
        assert!(drop.install_snapshot(LogIndex(4), Term(9)));
        assert_eq!(drop.last_index(), LogIndex(4));
        assert_eq!(drop.last_term(), Term(9));
        drop.check();
        // A snapshot not ahead of the commit index changes nothing.
        assert!(!drop.install_snapshot(LogIndex(2), Term(1)));
    }

    #[test]
    fn persisted_ignores_replaced_entries() {
        let mut log = log_of(&[]);
        log.append(&[e(1, 1), e(2, 1)]);
        assert_eq!(log.take_unstable().len(), 2);
        log.maybe_append(LogIndex(1), Term(1), &[e(2, 2)]);
        assert!(!log.persisted_to(LogIndex(2), Term(1)));
        assert!(log.persisted_to(LogIndex(1), Term(1)));
        assert_eq!(log.take_unstable().len(), 1);
        assert!(log.persisted_to(LogIndex(2), Term(2)));
        log.check();
    }
}
