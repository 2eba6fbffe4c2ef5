//! Log compaction and snapshots (§7): the host compacts the in-memory log
//! below what its state machine holds; a follower that needs compacted
//! entries gets a snapshot instead, sent in chunks one at a time, resumed
//! from the last acknowledged byte after a loss.

use super::membership::Membership;
use super::message::Body;
use super::progress::ProgressState;
use super::{Raft, RaftError, Role};
use crate::types::{LogIndex, NodeId, Payload, Snapshot, Term};

/// Smallest snapshot chunk, whatever `msg_bytes_max` says.
pub const SNAPSHOT_CHUNK_BYTES_MIN: usize = 4096;
/// Largest snapshot a follower accepts.
pub const SNAPSHOT_BYTES_MAX: usize = 1 << 30;

/// One snapshot chunk as received.
pub(super) struct Chunk<'a> {
    pub(super) index: LogIndex,
    pub(super) term: Term,
    pub(super) membership: &'a Membership,
    pub(super) offset: u64,
    pub(super) data: &'a [u8],
    pub(super) done: bool,
}

/// Follower: the snapshot being received.
#[derive(Debug)]
pub(super) struct Incoming {
    index: LogIndex,
    term: Term,
    /// The configuration at `index`, from the first chunk.
    membership: Membership,
    bytes: Vec<u8>,
}

impl Raft {
    /// The host's state machine holds everything up to `index`: entries up to
    /// it (at most the applied and persisted index) leave memory.
    pub fn compact(&mut self, index: LogIndex) {
        if self.log.compact_to(index) {
            self.configs.on_compact(&self.log);
        }
        self.after_input();
    }

    /// Sends `snapshot` to `to`, which asked for one (`Ready::snapshot_needed`).
    /// The snapshot must cover the leader's compaction point and carry the
    /// configuration in force at its index ([`Raft::membership_at`]).
    pub fn send_snapshot(&mut self, to: NodeId, snapshot: Snapshot) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        let usable = snapshot.index >= self.log.snapshot_index()
            && self.log.term(snapshot.index) == Some(snapshot.term)
            && self.membership_at(snapshot.index) == Some(&snapshot.membership);
        let Some(pr) = self.progress.get_mut(&to) else {
            return Err(RaftError::BadSnapshot);
        };
        if !usable || pr.state != ProgressState::Snapshot {
            return Err(RaftError::BadSnapshot);
        }
        pr.snapshot = Some(snapshot);
        pr.snapshot_acked = 0;
        pr.snapshot_chunk_out = false;
        self.send_snapshot_chunk(to);
        self.after_input();
        Ok(())
    }

    /// The follower needs entries below the compaction point.
    pub(super) fn need_snapshot(&mut self, to: NodeId) {
        let pr = self.progress.get_mut(&to).expect("progress of a peer");
        if pr.state != ProgressState::Snapshot {
            pr.become_snapshot();
        }
        if pr.snapshot.is_none() && !self.out.snapshot_needed.contains(&to) {
            self.out.snapshot_needed.push(to);
        }
    }

    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let chunk_max = self.cfg.msg_bytes_max.max(SNAPSHOT_CHUNK_BYTES_MIN);
        let term = self.term;
        let pr = self.progress.get_mut(&to).expect("progress of a peer");
        if pr.state != ProgressState::Snapshot || pr.snapshot_chunk_out {
            return;
        }
        let Some(snap) = &pr.snapshot else {
            return;
        };
        let len = snap.data.len() as u64;
        let offset = pr.snapshot_acked.min(len);
        let end = (offset + chunk_max as u64).min(len);
        let body = Body::Snapshot {
            index: snap.index,
            snapshot_term: snap.term,
            membership: Box::new(snap.membership.clone()),
            offset,
            data: Payload::from(&snap.data[offset as usize..end as usize]),
            done: end == len,
        };
        pr.snapshot_chunk_out = true;
        self.send(to, term, body);
    }

    /// Leader: the follower holds `received` bytes of the snapshot at `index`.
    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        received: u64,
    ) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        let ours = pr.snapshot.as_ref().map(|s| (s.index, s.data.len() as u64));
        match ours {
            Some((i, len)) if i == index && received <= len => {
                pr.snapshot_acked = received;
                pr.snapshot_chunk_out = false;
                if received < len {
                    self.send_snapshot_chunk(from);
                }
            }
            _ => {}
        }
    }

    /// Follower: one chunk of a snapshot.
    pub(super) fn handle_snapshot_chunk(&mut self, from: NodeId, chunk: Chunk<'_>) {
        let Chunk {
            index,
            term,
            membership,
            offset,
            data,
            done,
        } = chunk;
        if index <= self.log.committed() {
            // Already have everything it holds.
            self.incoming = None;
            self.send_append_ack(from, self.log.committed());
            return;
        }
        let fresh = !matches!(&self.incoming, Some(inc) if inc.index == index && inc.term == term);
        if fresh {
            if offset != 0 {
                self.send(
                    from,
                    self.term,
                    Body::SnapshotResponse { index, received: 0 },
                );
                return;
            }
            self.incoming = Some(Incoming {
                index,
                term,
                membership: membership.clone(),
                bytes: Vec::new(),
            });
        }
        let buf = &mut self.incoming.as_mut().expect("set above").bytes;
        if offset != buf.len() as u64 || buf.len() + data.len() > SNAPSHOT_BYTES_MAX {
            let received = if offset == buf.len() as u64 {
                0
            } else {
                buf.len() as u64
            };
            if received == 0 {
                buf.clear();
            }
            self.send(from, self.term, Body::SnapshotResponse { index, received });
            return;
        }
        buf.extend_from_slice(data);
        if !done {
            let received = buf.len() as u64;
            self.send(from, self.term, Body::SnapshotResponse { index, received });
            return;
        }
        let inc = self.incoming.take().expect("set above");
        if self.log.install_snapshot(inc.index, inc.term) {
            // §7: the snapshot carries the configuration at its index; any
            // configuration entry after it in a kept suffix stays in force.
            self.configs.on_snapshot(&self.log, inc.membership.clone());
            self.out.snapshot = Some(Snapshot {
                index: inc.index,
                term: inc.term,
                membership: inc.membership,
                data: inc.bytes.into(),
            });
        }
        self.send_append_ack(from, self.log.committed());
    }
}
