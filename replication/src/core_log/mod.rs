//! The per-core raft log: one log per core shared by every Raft group on it,
//! so one `fdatasync` makes every group's entries durable (group commit).
//! Built on `ferrisdb_io::log` (segmented, crc32c-framed, torn tail cut on
//! recovery), it runs on the real and the simulated `Disk`.
//!
//! Two logs live in the directory: `raft-*.log` holds entries and commit
//! indexes, `raftvote-*.log` holds terms and votes. A vote is persisted on
//! its own small log, so it never queues behind a bulk write of entries (the
//! etcd lesson: elections stalled behind a disk-heavy neighbour). A lost
//! vote record is harmless: votes are answered only once durable, and
//! recovery takes the higher of the two logs' terms.
//!
//! Record layout: [`record`]. Segments are reclaimed once every group has
//! compacted past them ([`CoreLog::reclaim`]).

pub mod record;

use crate::raft::Restored;
use crate::types::{Entry, EntryKind, GroupId, HardState, LogIndex, NodeId, Term};
use ferrisdb_io::Disk;
use ferrisdb_io::log::{Log, LogOptions, Lsn};
use record::{DecodeError, READY_FIXED_BYTES, Record, entry_header_bytes};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

pub const ENTRIES_PREFIX: &str = "raft";
pub const VOTES_PREFIX: &str = "raftvote";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreLogError {
    #[error(transparent)]
    Io(#[from] ferrisdb_io::Error),
    #[error("raft log record {lsn} of the {log} log: {source}")]
    Decode {
        log: &'static str,
        lsn: Lsn,
        #[source]
        source: DecodeError,
    },
    #[error("raft log record {lsn}: group {group} entries start at {first}, after {last}")]
    Gap {
        lsn: Lsn,
        group: GroupId,
        first: LogIndex,
        last: LogIndex,
    },
}

#[derive(Debug, Clone)]
pub struct CoreLogOptions {
    pub segment_bytes_max: u64,
    pub chunk_bytes_max: usize,
    pub preallocate: bool,
}

impl Default for CoreLogOptions {
    /// The settings of `ferrisdb_io::log`'s defaults.
    fn default() -> Self {
        let log = LogOptions::default();
        CoreLogOptions {
            segment_bytes_max: log.segment_bytes_max,
            chunk_bytes_max: log.chunk_bytes_max,
            preallocate: log.preallocate,
        }
    }
}

impl CoreLogOptions {
    fn log_options(&self, prefix: &str) -> LogOptions {
        LogOptions {
            prefix: prefix.into(),
            segment_bytes_max: self.segment_bytes_max,
            chunk_bytes_max: self.chunk_bytes_max,
            preallocate: self.preallocate,
        }
    }
}

/// What a call to [`CoreLog::append`] must wait for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticket {
    entries_lsn: Option<Lsn>,
    vote_lsn: Option<Lsn>,
}

#[derive(Debug, Default)]
struct GroupState {
    term: Term,
    vote: Option<NodeId>,
    commit: LogIndex,
    /// Entries up to here are no longer needed.
    compacted: (LogIndex, Term),
    /// LSN of the record holding each live entry after `compacted`.
    entry_lsns: Vec<Lsn>,
}

impl GroupState {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.compacted.0.0 + self.entry_lsns.len() as u64)
    }
}

pub struct CoreLog<D: Disk> {
    record_bytes_max: usize,
    entries: Rc<Log<D>>,
    votes: Rc<Log<D>>,
    groups: RefCell<BTreeMap<GroupId, GroupState>>,
}

impl<D: Disk> std::fmt::Debug for CoreLog<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreLog")
            .field("groups", &self.groups.borrow().len())
            .finish()
    }
}

/// Replay state of one group: the CoreLog's view plus the entries.
struct Replayed {
    state: GroupState,
    entries: Vec<Entry>,
    /// No record of the group seen yet.
    fresh: bool,
    /// The group's first entries record did not start at 1; a compaction
    /// record must confirm where the log starts.
    provisional: bool,
}

impl Default for Replayed {
    fn default() -> Self {
        Replayed {
            state: GroupState::default(),
            entries: Vec::new(),
            fresh: true,
            provisional: false,
        }
    }
}

impl Replayed {
    fn apply(&mut self, lsn: Lsn, record: Record) -> Result<(), CoreLogError> {
        match record {
            Record::Ready {
                group,
                entries,
                commit,
            } => {
                let s = &mut self.state;
                if let Some(first) = entries.first().map(|e| e.index) {
                    if self.fresh && first > s.last_index().next() {
                        // The segments before were reclaimed: the group's
                        // log starts here, and a later compaction record
                        // (written by every reclaim) confirms the start.
                        s.compacted = (first.prev(), Term(0));
                        self.provisional = true;
                    }
                    self.fresh = false;
                    if first > s.last_index().next() {
                        return Err(CoreLogError::Gap {
                            lsn,
                            group,
                            first,
                            last: s.last_index(),
                        });
                    }
                    let keep = first.0.saturating_sub(s.compacted.0.0 + 1) as usize;
                    s.entry_lsns.truncate(keep);
                    self.entries.truncate(keep);
                    for e in entries.into_iter().filter(|e| e.index > s.compacted.0) {
                        s.entry_lsns.push(lsn);
                        self.entries.push(e);
                    }
                }
                if let Some(c) = commit {
                    s.commit = s.commit.max(c);
                }
            }
            Record::Compacted { group, index, term } => {
                self.fresh = false;
                if self.provisional {
                    if index < self.state.compacted.0 {
                        return Err(CoreLogError::Gap {
                            lsn,
                            group,
                            first: self.state.compacted.0.next(),
                            last: index,
                        });
                    }
                    self.provisional = false;
                    if index == self.state.compacted.0 {
                        self.state.compacted.1 = term;
                    }
                }
                let s = &mut self.state;
                if index > s.compacted.0 {
                    let drop = ((index.0 - s.compacted.0.0) as usize).min(s.entry_lsns.len());
                    s.entry_lsns.drain(..drop);
                    self.entries.drain(..drop);
                    s.compacted = (index, term);
                    s.commit = s.commit.max(index);
                }
            }
            Record::Vote { term, vote, .. } => {
                let s = &mut self.state;
                if term > s.term || (term == s.term && vote.is_some()) {
                    s.term = term;
                    s.vote = vote;
                }
            }
        }
        Ok(())
    }
}

/// How many of `entries` (at least one, if any) fit `room` bytes of a
/// Ready record.
fn entries_fitting(entries: &[Entry], room: usize) -> usize {
    let (mut data, mut kinds, mut n) = (0, false, 0);
    for e in entries {
        let k = kinds || e.kind != EntryKind::Normal;
        let bytes = (n + 1) * entry_header_bytes(k) + data + e.data.len();
        if n > 0 && bytes > room {
            break;
        }
        (data, kinds, n) = (data + e.data.len(), k, n + 1);
    }
    n
}

fn group_of(r: &Record) -> GroupId {
    match r {
        Record::Ready { group, .. }
        | Record::Vote { group, .. }
        | Record::Compacted { group, .. } => *group,
    }
}

impl<D: Disk> CoreLog<D> {
    /// Opens (or creates) the log in `dir` and returns what each group had.
    pub async fn open(
        disk: D,
        dir: &Path,
        opts: CoreLogOptions,
    ) -> Result<(Rc<Self>, BTreeMap<GroupId, Restored>), CoreLogError> {
        let mut replayed: BTreeMap<GroupId, Replayed> = BTreeMap::new();
        let entries_opts = opts.log_options(ENTRIES_PREFIX);
        let record_bytes_max = entries_opts.record_bytes_max();
        let entries = Self::open_one(&disk, dir, entries_opts, "entries", &mut replayed).await?;
        let votes = Self::open_one(
            &disk,
            dir,
            opts.log_options(VOTES_PREFIX),
            "vote",
            &mut replayed,
        )
        .await?;
        let mut groups = BTreeMap::new();
        let mut restored = BTreeMap::new();
        for (group, r) in replayed {
            if r.provisional {
                return Err(CoreLogError::Gap {
                    lsn: 0,
                    group,
                    first: r.state.compacted.0.next(),
                    last: LogIndex(0),
                });
            }
            let s = r.state;
            let hard_state = HardState {
                term: s.term,
                vote: s.vote,
                commit: s.commit.min(s.last_index()),
            };
            restored.insert(
                group,
                Restored {
                    hard_state,
                    before: s.compacted,
                    entries: r.entries,
                    // The configuration at the compaction point is in the
                    // state machine's snapshot, which the host restores.
                    membership: None,
                },
            );
            groups.insert(group, s);
        }
        let log = CoreLog {
            record_bytes_max,
            entries,
            votes,
            groups: RefCell::new(groups),
        };
        Ok((Rc::new(log), restored))
    }

    async fn open_one(
        disk: &D,
        dir: &Path,
        opts: LogOptions,
        log: &'static str,
        replayed: &mut BTreeMap<GroupId, Replayed>,
    ) -> Result<Rc<Log<D>>, CoreLogError> {
        let mut failure: Option<CoreLogError> = None;
        let (opened, _) = Log::open(disk.clone(), dir, opts, 1, |lsn, bytes| {
            if failure.is_none() {
                let result = Record::decode(bytes)
                    .map_err(|source| CoreLogError::Decode { log, lsn, source })
                    .and_then(|r| replayed.entry(group_of(&r)).or_default().apply(lsn, r));
                failure = result.err();
            }
            Ok(())
        })
        .await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(opened),
        }
    }

    /// Buffers one group's `Ready` output: entries and commit go to the
    /// entries log, a changed term or vote to the vote log. Nothing is
    /// written until [`CoreLog::sync`].
    ///
    /// `with_earlier`: the ticket also covers every earlier record of both
    /// logs.
    /// The host passes [`crate::raft::Ready::needs_earlier_writes`]: answers
    /// about the log (append responses) need every earlier write durable,
    /// while vote traffic needs only the vote, so a vote never waits for
    /// bulk entries buffered before it.
    pub fn append(
        &self,
        group: GroupId,
        entries: &[Entry],
        hard_state: Option<HardState>,
        with_earlier: bool,
    ) -> Result<Ticket, CoreLogError> {
        let mut groups = self.groups.borrow_mut();
        let g = groups.entry(group).or_default();
        let mut ticket = Ticket::default();
        if with_earlier {
            ticket.entries_lsn = Some(self.entries.last_lsn()).filter(|&l| l > 0);
            ticket.vote_lsn = Some(self.votes.last_lsn()).filter(|&l| l > 0);
        }
        let commit = hard_state.map(|hs| hs.commit).filter(|&c| c > g.commit);
        if !entries.is_empty() || commit.is_some() {
            // Split so every record fits a chunk; the commit rides on the last.
            let room = self.record_bytes_max - READY_FIXED_BYTES;
            let mut start = 0;
            loop {
                let end = start + entries_fitting(&entries[start..], room);
                let last = end == entries.len();
                let record = Record::Ready {
                    group,
                    entries: entries[start..end].to_vec(),
                    commit: if last { commit } else { None },
                };
                let lsn = self.entries.append(&record.encode())?;
                if let Some(first) = entries.get(start) {
                    let keep = first.index.0.saturating_sub(g.compacted.0.0 + 1) as usize;
                    assert!(
                        keep <= g.entry_lsns.len(),
                        "entries continue the group's log"
                    );
                    g.entry_lsns.truncate(keep);
                    g.entry_lsns.extend(std::iter::repeat_n(lsn, end - start));
                }
                ticket.entries_lsn = Some(lsn);
                start = end;
                if last {
                    break;
                }
            }
            if let Some(c) = commit {
                g.commit = c;
            }
        }
        if let Some(hs) = hard_state
            && (hs.term, hs.vote) != (g.term, g.vote)
        {
            let record = Record::Vote {
                group,
                term: hs.term,
                vote: hs.vote,
            };
            ticket.vote_lsn = Some(self.votes.append(&record.encode())?);
            g.term = hs.term;
            g.vote = hs.vote;
        }
        Ok(ticket)
    }

    /// Makes everything a ticket covers durable (group commit with every
    /// other caller on this core). A vote-only ticket touches only the vote
    /// log.
    pub async fn sync(&self, ticket: Ticket) -> Result<(), CoreLogError> {
        if let Some(lsn) = ticket.vote_lsn {
            self.votes.sync(lsn).await?;
        }
        if let Some(lsn) = ticket.entries_lsn {
            self.entries.sync(lsn).await?;
        }
        Ok(())
    }

    /// Records that `group` no longer needs entries up to `index` (its state
    /// machine made them durable elsewhere, e.g. an engine flush or a
    /// snapshot). Space is reclaimed by [`CoreLog::reclaim`].
    pub fn compact(&self, group: GroupId, index: LogIndex, term: Term) -> Result<(), CoreLogError> {
        let mut groups = self.groups.borrow_mut();
        let g = groups.entry(group).or_default();
        if index <= g.compacted.0 {
            return Ok(());
        }
        assert!(index <= g.commit, "only committed entries are compacted");
        let record = Record::Compacted { group, index, term };
        self.entries.append(&record.encode())?;
        let drop = ((index.0 - g.compacted.0.0) as usize).min(g.entry_lsns.len());
        g.entry_lsns.drain(..drop);
        g.compacted = (index, term);
        Ok(())
    }

    /// Removes segments that no group needs: every group's live entries and
    /// latest state lie in later segments. Rewrites each group's state
    /// (compaction point, commit, vote) first, so nothing a group needs is
    /// left only in a segment about to go. Returns segments removed.
    pub async fn reclaim(&self) -> Result<usize, CoreLogError> {
        if self.entries.segment_count() < 2 && self.votes.segment_count() < 2 {
            return Ok(0);
        }
        let (entries_cut, votes_cut) = {
            let groups = self.groups.borrow();
            let mut entries_cut = Lsn::MAX;
            let mut votes_cut = Lsn::MAX;
            for (&group, g) in groups.iter() {
                let (index, term) = g.compacted;
                let lsn = self
                    .entries
                    .append(&Record::Compacted { group, index, term }.encode())?;
                let ready = Record::Ready {
                    group,
                    entries: Vec::new(),
                    commit: Some(g.commit),
                };
                self.entries.append(&ready.encode())?;
                entries_cut = entries_cut.min(lsn);
                if let Some(&first) = g.entry_lsns.first() {
                    entries_cut = entries_cut.min(first);
                }
                let vote = Record::Vote {
                    group,
                    term: g.term,
                    vote: g.vote,
                };
                votes_cut = votes_cut.min(self.votes.append(&vote.encode())?);
            }
            (entries_cut, votes_cut)
        };
        if entries_cut == Lsn::MAX {
            return Ok(0);
        }
        self.entries.sync(self.entries.last_lsn()).await?;
        self.votes.sync(self.votes.last_lsn()).await?;
        let removed = self.entries.truncate_before(entries_cut).await?
            + self.votes.truncate_before(votes_cut).await?;
        Ok(removed)
    }

    pub fn segment_count(&self) -> usize {
        self.entries.segment_count() + self.votes.segment_count()
    }

    /// Highest durable LSN of the entries log (for tests and metrics).
    pub fn entries_durable_lsn(&self) -> Lsn {
        self.entries.durable_lsn()
    }

    pub async fn close(self: Rc<Self>) -> Result<(), CoreLogError> {
        self.entries.clone().close().await?;
        self.votes.clone().close().await?;
        Ok(())
    }
}
