//! A node's durable storage as the simulator models it: the per-core raft log
//! holding every group's entries and hard state. Writes are queued, become
//! durable in order when their sync completes, and a crash keeps the durable
//! part plus a random prefix of what was written but not synced, the last
//! write of that prefix possibly torn (some of its entries kept, its hard
//! state lost), like a log whose torn tail recovery cuts.

use crate::raft::message::Message;
use crate::rng::Rng;
use crate::types::{Entry, GroupId, HardState, LogIndex, Term};
use std::collections::{BTreeMap, VecDeque};

/// What survives of one group.
#[derive(Debug, Clone, Default)]
pub struct GroupDisk {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

impl GroupDisk {
    fn apply(&mut self, entries: &[Entry], hard_state: Option<HardState>) {
        if let Some(first) = entries.first() {
            // Entries at or below the last replace the suffix (one record
            // carries the truncation and the new entries).
            self.entries.truncate((first.index.0 - 1) as usize);
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
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
        after: Vec<Message>,
    ) {
        self.next_seq += 1;
        let last = entries.last().map(|e| (e.index, e.term));
        self.unsynced.push_back(Write {
            seq: self.next_seq,
            group,
            entries,
            hard_state,
            after,
            last,
        });
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
            self.durable
                .entry(w.group)
                .or_default()
                .apply(&w.entries, w.hard_state);
            done.push(w);
        }
        done
    }

    /// Power loss: unsynced writes survive as a random prefix, the last one
    /// possibly torn when `tear` is set.
    pub fn crash(&mut self, rng: &mut Rng, tear: bool) {
        let writes: Vec<Write> = self.unsynced.drain(..).collect();
        let kept = rng.below(writes.len() as u64 + 1) as usize;
        for w in &writes[..kept] {
            self.durable
                .entry(w.group)
                .or_default()
                .apply(&w.entries, w.hard_state);
        }
        if let (true, Some(w)) = (tear, writes.get(kept)) {
            let part = rng.below(w.entries.len() as u64 + 1) as usize;
            if part > 0 {
                self.durable
                    .entry(w.group)
                    .or_default()
                    .apply(&w.entries[..part], None);
            }
        }
    }
}
