//! Identifiers and the log entry: newtypes so a term is never mistaken for an
//! index.

use std::fmt;
use std::sync::Arc;

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype!(
    /// A Raft term (§5.1). Terms only grow on a node.
    Term
);
newtype!(
    /// Position of an entry in a group's log; the first entry is 1, 0 means
    /// "before the log".
    LogIndex
);
newtype!(
    /// A node (a replica of every group placed on it).
    NodeId
);
newtype!(
    /// A Raft group: one per shard.
    GroupId
);

impl LogIndex {
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one, saturating at 0.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl Term {
    pub fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

/// Opaque command bytes, shared between the log, messages and the applier
/// without copying.
pub type Payload = Arc<[u8]>;

/// What an entry's payload is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A command for the state machine (empty: the no-op a new leader
    /// appends to commit entries of earlier terms, §5.4.2, §8).
    #[default]
    Normal,
    /// A group configuration ([`crate::raft::Membership`], encoded with
    /// `Membership::encode`): in force on a replica as soon as it is in its
    /// log, committed or not (§6). The state machine skips it.
    ConfChange,
}

impl EntryKind {
    /// The kind's code on disk and on the wire.
    pub fn code(self) -> u8 {
        match self {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(EntryKind::Normal),
            1 => Some(EntryKind::ConfChange),
            _ => None,
        }
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub kind: EntryKind,
    pub data: Payload,
}

impl Entry {
    /// A command (or the no-op, with empty data).
    pub fn normal(index: LogIndex, term: Term, data: Payload) -> Self {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data,
        }
    }

    /// Bytes this entry counts for in flow control and message size limits.
    pub fn size_bytes(&self) -> usize {
        self.data.len() + 16
    }
}

/// What must be durable before a node answers for it (§5.1, Figure 2:
/// "persistent state on all servers"). `commit` is persisted too so a restart
/// re-applies without waiting for a leader; it is only ever a lower bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: LogIndex,
}

/// A state machine image at `index` (whose entry had `term`): what replaces
/// the log up to `index` when a follower is too far behind to be sent
/// entries (§7). It carries the configuration in force at `index` (§7: "the
/// snapshot also includes the latest configuration as of the last included
/// index"), since the entries that set it are gone from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub index: LogIndex,
    pub term: Term,
    pub membership: crate::raft::Membership,
    pub data: Payload,
}
