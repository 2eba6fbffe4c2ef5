//! Message dispatch and log replication (§5.3): pipelined AppendEntries with
//! flow control, fast backtracking, and commitment by quorum of entries of the
//! current term only (§5.4.2).

use super::message::{Body, Message};
use super::progress::ProgressState;
use super::snapshot::Chunk;
use super::{PlantedBug, Raft, Role};
use crate::types::{LogIndex, NodeId, Term};

impl Raft {
    /// Term handling common to every message (§5.1: "if one server's current
    /// term is smaller than the other's, then it updates its current term";
    /// "if a server receives a request with a stale term number, it rejects
    /// the request"), then dispatch by role.
    pub(super) fn step_checked(&mut self, m: Message) {
        if m.term > self.term {
            let is_vote_request = matches!(m.body, Body::PreVote { .. } | Body::Vote { .. });
            let transfer = matches!(m.body, Body::Vote { transfer: true, .. });
            if is_vote_request && !transfer && self.in_lease() {
                return;
            }
            match m.body {
                Body::PreVote { .. } | Body::PreVoteResponse { granted: true } => {}
                Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                    self.become_follower(m.term, Some(m.from));
                }
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            match m.body {
                // A leader from an old term (e.g. back from a partition)
                // learns the current term from the answer and steps down.
                Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                    let body = Body::AppendResponse {
                        success: false,
                        index: LogIndex(0),
                        hint_index: LogIndex(0),
                        hint_term: Term(0),
                    };
                    self.send(m.from, self.term, body);
                }
                Body::PreVote { .. } => {
                    self.send(m.from, self.term, Body::PreVoteResponse { granted: false });
                }
                // Figure 2: "Reply false if term < currentTerm": the answer
                // carries our term, so a candidate that fell behind (say,
                // one nobody else talks to after a membership change: found
                // by the simulator, seed 11084) learns it and can campaign
                // in a term that counts.
                Body::Vote { .. } => {
                    self.send(m.from, self.term, Body::VoteResponse { granted: false });
                }
                _ => {}
            }
            return;
        }
        if matches!(m.body, Body::PreVote { .. } | Body::Vote { .. }) {
            self.handle_vote_request(m.from, m.term, &m.body);
            return;
        }
        match self.role {
            Role::Leader => self.step_leader(m),
            Role::Candidate | Role::PreCandidate => self.step_candidate(m),
            Role::Follower => self.step_follower(m),
        }
    }

    fn step_leader(&mut self, m: Message) {
        let Some(pr) = self.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        match m.body {
            Body::AppendResponse {
                success,
                index,
                hint_index,
                hint_term,
            } => self.handle_append_response(m.from, success, index, hint_index, hint_term),
            Body::HeartbeatResponse {
                read_ctx,
                sent_tick,
            } => {
                pr.ack_tick = pr.ack_tick.max(sent_tick);
                // The follower is alive. If its window is shut and nothing was
                // acknowledged since the last heartbeat, appends to it were
                // lost: resend from its match (a stuck window never reopens
                // on its own). Otherwise send an append, empty if nothing is
                // new: a follower missing entries rejects it with a hint.
                pr.probe_sent = false;
                if pr.state == ProgressState::Snapshot {
                    // Resume a snapshot whose chunk may have been lost.
                    pr.snapshot_chunk_out = false;
                    self.send_snapshot_chunk(m.from);
                    self.need_snapshot(m.from);
                    self.on_read_ack(m.from, read_ctx);
                    return;
                }
                let (msgs_max, bytes_max) =
                    (self.cfg.inflight_msgs_max, self.cfg.inflight_bytes_max);
                if pr.is_paused(msgs_max, bytes_max) && !pr.take_progressed() {
                    pr.become_probe();
                }
                if pr.match_index < self.log.last_index() {
                    self.send_append(m.from, true);
                }
                self.on_read_ack(m.from, read_ctx);
            }
            Body::SnapshotResponse { index, received } => {
                self.handle_snapshot_response(m.from, index, received);
            }
            _ => {}
        }
    }

    fn step_candidate(&mut self, m: Message) {
        match m.body {
            // §5.2: a candidate that hears from a leader of its term yields.
            Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } => {
                self.become_follower(m.term, Some(m.from));
                self.step_follower(m);
            }
            Body::PreVoteResponse { granted } if self.role == Role::PreCandidate => {
                let ours = if granted { self.term.next() } else { self.term };
                if m.term == ours {
                    self.record_vote(m.from, granted);
                }
            }
            Body::VoteResponse { granted } if self.role == Role::Candidate => {
                self.record_vote(m.from, granted);
            }
            _ => {}
        }
    }

    fn step_follower(&mut self, m: Message) {
        if matches!(
            m.body,
            Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. }
        ) {
            // Word from the leader of this term.
            self.election_elapsed = 0;
            self.leader = Some(m.from);
        }
        match m.body {
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => self.handle_append(m.from, prev_index, prev_term, &entries, commit),
            Body::Heartbeat {
                commit,
                read_ctx,
                sent_tick,
            } => {
                // The leader sends min(commit, our match), so our log matches
                // the leader's up to it.
                self.log.commit_to(commit.min(self.log.last_index()));
                let body = Body::HeartbeatResponse {
                    read_ctx,
                    sent_tick,
                };
                self.send(m.from, self.term, body);
            }
            Body::Snapshot {
                index,
                snapshot_term,
                membership,
                offset,
                data,
                done,
            } => {
                let chunk = Chunk {
                    index,
                    term: snapshot_term,
                    membership: &membership,
                    offset,
                    data: &data,
                    done,
                };
                self.handle_snapshot_chunk(m.from, chunk);
            }
            Body::TimeoutNow if self.can_campaign() => self.become_candidate(true),
            _ => {}
        }
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: &[crate::types::Entry],
        commit: LogIndex,
    ) {
        let committed = self.log.committed();
        if prev_index < committed {
            // Everything up to our commit matches any leader's log (§5.4).
            self.send_append_ack(from, committed);
            return;
        }
        let Some(last_new) = self.log.maybe_append(prev_index, prev_term, entries) else {
            let probe = prev_index.min(self.log.last_index());
            let (hint_index, hint_term) = self.log.find_conflict_by_term(probe, prev_term);
            let body = Body::AppendResponse {
                success: false,
                index: prev_index,
                hint_index,
                hint_term,
            };
            self.send(from, self.term, body);
            return;
        };
        // §6: a configuration is in force as soon as it is in the log; one
        // the leader's entries replaced rolls back.
        self.configs.on_append(&self.log, entries);
        // §5.3: "set commitIndex = min(leaderCommit, index of last new
        // entry)".
        self.log.commit_to(commit.min(last_new));
        self.send_append_ack(from, last_new);
    }

    /// A successful AppendResponse: the log matches the sender's up to
    /// `index`.
    pub(super) fn send_append_ack(&mut self, to: NodeId, index: LogIndex) {
        let body = Body::AppendResponse {
            success: true,
            index,
            hint_index: LogIndex(0),
            hint_term: Term(0),
        };
        self.send(to, self.term, body);
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: LogIndex,
        hint_index: LogIndex,
        hint_term: Term,
    ) {
        if success {
            let pr = self.progress.get_mut(&from).expect("checked by caller");
            if index > self.log.last_index() {
                return; // not a log we sent: ignore rather than trust
            }
            if pr.maybe_update(index) {
                if pr.state != ProgressState::Replicate {
                    pr.become_replicate();
                }
                if self.maybe_commit() {
                    self.on_commit_advanced();
                }
            }
            while self.send_append(from, false) {}
            self.maybe_send_timeout_now(from);
            return;
        }
        // Fast backtracking: skip every entry of a term the follower cannot
        // hold at the hinted position.
        let probe = if hint_term > Term(0) {
            self.log.find_conflict_by_term(hint_index, hint_term).0
        } else {
            hint_index
        };
        let pr = self.progress.get_mut(&from).expect("checked by caller");
        if pr.maybe_decrease_to(index, probe) {
            self.send_append(from, true);
        }
    }

    /// Sends the next append to `to` if flow control allows; returns whether
    /// one went out.
    pub(super) fn send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let (msgs_max, bytes_max) = (self.cfg.inflight_msgs_max, self.cfg.inflight_bytes_max);
        let pr = self.progress.get(&to).expect("progress of a peer");
        if pr.is_paused(msgs_max, bytes_max) {
            return false;
        }
        let prev_index = pr.next_index.prev();
        let Some(prev_term) = self.log.term(prev_index) else {
            // Compacted away: the follower needs a snapshot (§7).
            self.need_snapshot(to);
            return false;
        };
        let entries = self.log.entries_from(pr.next_index, self.cfg.msg_bytes_max);
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let bytes = entries.iter().map(|e| e.size_bytes()).sum();
        let last = entries.last().map_or(prev_index, |e| e.index);
        self.progress
            .get_mut(&to)
            .expect("progress of a peer")
            .sent(last, bytes);
        let body = Body::Append {
            prev_index,
            prev_term,
            entries,
            commit: self.log.committed(),
        };
        self.send(to, self.term, body);
        true
    }

    /// The leader's replication targets: the keys of its progress map, which
    /// are exactly the other members (an invariant).
    fn progress_targets(&self) -> Vec<NodeId> {
        self.progress.keys().copied().collect()
    }

    pub(super) fn broadcast_append(&mut self, send_if_empty: bool) {
        for to in self.progress_targets() {
            self.send_append(to, send_if_empty);
        }
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        let read_ctx = self.reads.newest_seq();
        for to in self.progress_targets() {
            let pr = &self.progress[&to];
            let commit = self.log.committed().min(pr.match_index);
            let body = Body::Heartbeat {
                commit,
                read_ctx,
                sent_tick: self.ticks,
            };
            self.send(to, self.term, body);
        }
    }

    /// §5.3/§5.4.2: the highest index stored on a quorum (the leader counts
    /// its own entries once durable, if it votes; a majority of each half
    /// while joint, §6) is committed if its entry is of the current term.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let me = self.cfg.id;
        let quorum_index = self.voting().quorum_value(|v| {
            if v == me {
                self.log.persisted()
            } else {
                self.progress[&v].match_index
            }
        });
        if quorum_index <= self.log.committed() {
            return false;
        }
        let current = self.log.term(quorum_index) == Some(self.term);
        if !current && !self.planted(PlantedBug::CommitPreviousTermByCount) {
            return false;
        }
        self.log.commit_to(quorum_index)
    }

    pub(super) fn on_commit_advanced(&mut self) {
        self.broadcast_append(true);
        self.on_commit_for_reads();
    }
}
