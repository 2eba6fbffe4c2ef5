//! Messages between the replicas of one group.

use super::RaftError;
use super::membership::Membership;
use crate::types::{Entry, EntryKind, GroupId, LogIndex, NodeId, Payload, Term};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub group: GroupId,
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term, except in pre-vote traffic, where a request carries
    /// the term the sender would campaign in and a granted response echoes it.
    pub term: Term,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Would you vote for me at `term`? Changes no state on the receiver
    /// (pre-vote, Ongaro's thesis §9.6).
    PreVote {
        last_index: LogIndex,
        last_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    /// RequestVote (§5.2). `transfer` marks a campaign started by a leadership
    /// transfer, which may disturb a live leader.
    Vote {
        last_index: LogIndex,
        last_term: Term,
        transfer: bool,
    },
    VoteResponse {
        granted: bool,
    },
    /// AppendEntries (§5.3).
    Append {
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: LogIndex,
    },
    /// `index`: on success the highest index known to match the leader; on
    /// rejection the `prev_index` that did not match, with a hint for fast
    /// backtracking: the follower's last index at or below it whose term is
    /// at most the leader's `prev_term`, and that term.
    AppendResponse {
        success: bool,
        index: LogIndex,
        hint_index: LogIndex,
        hint_term: Term,
    },
    /// Leader liveness plus the commit index the follower may know
    /// (`min(commit, follower's match)`). `read_ctx` identifies the newest
    /// ReadIndex request awaiting confirmation; `sent_tick` is the leader's
    /// clock, echoed back for leases.
    Heartbeat {
        commit: LogIndex,
        read_ctx: u64,
        sent_tick: u64,
    },
    HeartbeatResponse {
        read_ctx: u64,
        sent_tick: u64,
    },
    /// Leadership transfer: campaign now, ignoring the election timer.
    TimeoutNow,
    /// InstallSnapshot (§7), one chunk at `offset` of the image at
    /// (`index`, `term`), with the configuration in force at `index`;
    /// `done` marks the last chunk.
    Snapshot {
        index: LogIndex,
        snapshot_term: Term,
        /// Boxed: snapshots are rare, and every message is as large as the
        /// largest body.
        membership: Box<Membership>,
        offset: u64,
        data: Payload,
        done: bool,
    },
    /// Bytes of the snapshot at `index` the follower holds: the leader sends
    /// from there (resume after a lost chunk).
    SnapshotResponse {
        index: LogIndex,
        received: u64,
    },
}

impl Body {
    /// A short name for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::PreVote { .. } => "PreVote",
            Body::PreVoteResponse { .. } => "PreVoteResponse",
            Body::Vote { .. } => "Vote",
            Body::VoteResponse { .. } => "VoteResponse",
            Body::Append { .. } => "Append",
            Body::AppendResponse { .. } => "AppendResponse",
            Body::Heartbeat { .. } => "Heartbeat",
            Body::HeartbeatResponse { .. } => "HeartbeatResponse",
            Body::TimeoutNow => "TimeoutNow",
            Body::Snapshot { .. } => "Snapshot",
            Body::SnapshotResponse { .. } => "SnapshotResponse",
        }
    }
}

/// Structural checks of peer input, so nothing a peer sends can trip an
/// assertion.
pub(super) fn validate(m: &Message) -> Result<(), RaftError> {
    let bad = |why| {
        Err(RaftError::BadMessage {
            kind: m.body.kind(),
            from: m.from,
            why,
        })
    };
    if m.from == m.to && !matches!(m.body, Body::VoteResponse { granted: true }) {
        return bad("sent to itself");
    }
    if let Body::Append {
        prev_index,
        prev_term,
        entries,
        ..
    } = &m.body
    {
        let mut term = *prev_term;
        for (n, e) in entries.iter().enumerate() {
            if e.index.0 != prev_index.0 + 1 + n as u64 {
                return bad("entries not contiguous after prev_index");
            }
            if e.term < term || e.term > m.term {
                return bad("entry terms out of order");
            }
            if e.kind == EntryKind::ConfChange && Membership::decode(&e.data).is_err() {
                return bad("malformed configuration entry");
            }
            term = e.term;
        }
        if *prev_term > m.term {
            return bad("prev_term above the message term");
        }
    }
    if let Body::Snapshot {
        index,
        snapshot_term,
        membership,
        ..
    } = &m.body
    {
        if *snapshot_term > m.term || index.0 == 0 {
            return bad("snapshot point out of range");
        }
        if membership.validate().is_err() {
            return bad("malformed snapshot configuration");
        }
    }
    Ok(())
}
