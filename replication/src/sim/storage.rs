//! A node's durable storage as the simulator models it: the per-core raft log
//! holding every group's entries and hard state. Writes are queued, become
//! durable in order when their sync completes, and a crash keeps the durable
//! part plus a random prefix of what was written but not synced, the last
//! write of that prefix possibly torn (some of its entries kept, its hard
//! state lost), like a log whose torn tail recovery cuts. As in the core
//! log (`core_log`), terms and votes live on a log of their own: its
//! unsynced records survive as a prefix of their own, so a crash can keep
//! a term and vote without the entries written with or before them, or the
//! entries and commit without the term and vote.

use crate::raft::Ready;
use crate::raft::message::Message;
use crate::rng::Rng;
use crate::types::{Entry, GroupId, HardState, LogIndex, Snapshot, Term};
use std::collections::{BTreeMap, VecDeque};

/// What survives of one group: a snapshot (the log before it is gone),
/// the entries after it, and the hard state.
#[derive(Debug, Clone, Default)]
pub struct GroupDisk {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot's index.
    pub entries: Vec<Entry>,
}

impl GroupDisk {
    pub fn before(&self) -> (LogIndex, Term) {
        self.snapshot
            .as_ref()
            .map_or((LogIndex(0), Term(0)), |s| (s.index, s.term))
    }

    fn apply(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) {
        if let Some(snap) = snapshot {
            let before = self.before().0;
            if snap.index > before {
                let at = (snap.index.0 - before.0) as usize;
                let keep = self
                    .entries
                    .get(at - 1)
                    .is_some_and(|e| e.term == snap.term);
                if keep {
                    self.entries.drain(..at);
                } else {
                    self.entries.clear();
                }
                self.snapshot = Some(snap.clone());
            }
        }
        if let Some(first) = entries.first() {
            // Entries at or below the last replace the suffix (one record
            // carries the truncation and the new entries).
            let before = self.before().0;
            assert!(first.index > before, "entries after the snapshot");
            let keep = (first.index.0 - before.0 - 1) as usize;
            self.entries.truncate(keep);
            self.entries.extend_from_slice(entries);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
    }
}

/// One write of one group's `Ready`.
#[derive(Debug)]
pub struct Write {
    pub seq: u64,
    pub group: GroupId,
    /// A snapshot to persist first (received, or of the node's own state
    /// machine when it compacts).
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// Sent once this write is durable.
    pub after: Vec<Message>,
    /// Reported to the core once durable.
    pub last: Option<(LogIndex, Term)>,
}

#[derive(Debug, Default)]
pub struct Storage {
    pub durable: BTreeMap<GroupId, GroupDisk>,
    pub unsynced: VecDeque<Write>,
    next_seq: u64,
}

impl Storage {
    pub fn write(
        &mut self,
        group: GroupId,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
        after: Vec<Message>,
    ) {
        self.next_seq += 1;
        let last = entries.last().map(|e| (e.index, e.term));
        self.unsynced.push_back(Write {
            seq: self.next_seq,
            group,
            snapshot,
            entries,
            hard_state,
            after,
            last,
        });
    }

    /// Queues what a `Ready` must make durable (its snapshot, entries, hard
    /// state, and the messages waiting for them); returns whether there was
    /// anything.
    pub fn write_ready(&mut self, group: GroupId, rd: &mut Ready) -> bool {
        let write = !rd.entries.is_empty()
            || rd.hard_state.is_some()
            || !rd.messages_after_persist.is_empty()
            || rd.snapshot.is_some();
        if write {
            self.write(
                group,
                rd.snapshot.take(),
                std::mem::take(&mut rd.entries),
                rd.hard_state,
                std::mem::take(&mut rd.messages_after_persist),
            );
        }
        write
    }

    /// Sequence number of the newest write.
    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// The sync covering writes up to `seq` completed: they are durable.
    pub fn synced(&mut self, seq: u64) -> Vec<Write> {
        let mut done = Vec::new();
        while self.unsynced.front().is_some_and(|w| w.seq <= seq) {
            let w = self.unsynced.pop_front().expect("front exists");
            self.make_durable(&w);
            done.push(w);
        }
        done
    }

    /// Power loss: unsynced writes survive as a random prefix, the last one
    /// possibly torn when `tear` is set; their terms and votes survive as a
    /// prefix of their own.
    pub fn crash(&mut self, rng: &mut Rng, tear: bool) {
        let writes: Vec<Write> = self.unsynced.drain(..).collect();
        let kept = rng.below(writes.len() as u64 + 1) as usize;
        let votes_kept = rng.below(writes.len() as u64 + 1) as usize;
        for (i, w) in writes.iter().enumerate() {
            let disk = self.durable.entry(w.group).or_default();
            if i < kept {
                let commit = w.hard_state.map(|hs| hs.commit);
                disk.apply(w.snapshot.as_ref(), &w.entries, None);
                if let Some(commit) = commit {
                    disk.hard_state.commit = commit;
                }
            } else if i == kept && tear {
                // The snapshot is one record: whole or lost; the entries after
                // it survive only with it.
                let snapshot_kept = w.snapshot.is_some() && rng.chance(0.5);
                if snapshot_kept || w.snapshot.is_none() {
                    disk.apply(w.snapshot.as_ref(), &[], None);
                    let part = rng.below(w.entries.len() as u64 + 1) as usize;
                    disk.apply(None, &w.entries[..part], None);
                }
            }
            if let (true, Some(hs)) = (i < votes_kept, w.hard_state) {
                disk.hard_state.term = hs.term;
                disk.hard_state.vote = hs.vote;
            }
        }
    }

    fn make_durable(&mut self, w: &Write) {
        self.durable.entry(w.group).or_default().apply(
            w.snapshot.as_ref(),
            &w.entries,
            w.hard_state,
        );
    }
}
