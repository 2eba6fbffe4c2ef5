//! What the leader knows about one follower's log, and flow control towards it.

use crate::types::LogIndex;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the follower's log matches is unknown: one append at a time, each
    /// answered before the next (after a rejection, or a new leader).
    Probe,
    /// The follower matched: appends are pipelined up to the in-flight limits.
    Replicate,
    /// The follower needs entries the leader compacted: a snapshot is sent,
    /// one chunk in flight at a time.
    Snapshot,
}

#[derive(Debug, Clone)]
pub struct Progress {
    /// Highest index known replicated on the follower (§5.3 `matchIndex`).
    pub match_index: LogIndex,
    /// Next index to send (§5.3 `nextIndex`).
    pub next_index: LogIndex,
    pub state: ProgressState,
    /// In probe state: an append is out and unanswered.
    pub probe_sent: bool,
    /// Appends sent and not yet acknowledged: (last index, bytes).
    inflight: VecDeque<(LogIndex, usize)>,
    inflight_bytes: usize,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// Newest leader tick echoed by this follower's heartbeat responses.
    pub ack_tick: u64,
    /// The match advanced since the last heartbeat response.
    progressed: bool,
    /// Snapshot state: the image being sent (set by the host), how many of
    /// its bytes the follower acknowledged, and whether a chunk is out.
    pub snapshot: Option<crate::types::Snapshot>,
    pub snapshot_acked: u64,
    pub snapshot_chunk_out: bool,
}

impl Progress {
    pub fn new(next_index: LogIndex) -> Self {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            recent_active: false,
            ack_tick: 0,
            progressed: false,
            snapshot: None,
            snapshot_acked: 0,
            snapshot_chunk_out: false,
        }
    }

    pub fn is_paused(&self, msgs_max: usize, bytes_max: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => {
                self.inflight.len() >= msgs_max || self.inflight_bytes >= bytes_max
            }
            ProgressState::Snapshot => true,
        }
    }

    pub fn inflight_count(&self) -> usize {
        self.inflight.len()
    }

    pub fn become_snapshot(&mut self) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.snapshot = None;
        self.snapshot_acked = 0;
        self.snapshot_chunk_out = false;
    }

    pub fn become_probe(&mut self) {
        self.resume_from_match(ProgressState::Probe);
    }

    pub fn become_replicate(&mut self) {
        self.resume_from_match(ProgressState::Replicate);
    }

    /// Enters `state` with nothing in flight, sending from after the match.
    fn resume_from_match(&mut self, state: ProgressState) {
        self.snapshot = None;
        self.state = state;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// An append covering up to `last` with `bytes` of entries went out.
    pub fn sent(&mut self, last: LogIndex, bytes: usize) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate => {
                if last >= self.next_index {
                    self.next_index = last.next();
                    self.inflight.push_back((last, bytes));
                    self.inflight_bytes += bytes;
                }
            }
            ProgressState::Snapshot => {}
        }
    }

    /// The follower acknowledged up to `index`. Returns whether it was news.
    pub fn maybe_update(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
            self.progressed = true;
        }
        self.next_index = self.next_index.max(index.next());
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > index {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
        updated
    }

    /// Whether the match advanced since the last call.
    pub fn take_progressed(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    /// The follower rejected an append whose previous index was `rejected`;
    /// `hint` is where the leader's and follower's logs may match. Returns
    /// false if the rejection is stale.
    pub fn maybe_decrease_to(&mut self, rejected: LogIndex, hint: LogIndex) -> bool {
        if self.state == ProgressState::Snapshot {
            return false;
        }
        if self.state == ProgressState::Replicate {
            // Anything at or below the match is an old, reordered rejection.
            if rejected <= self.match_index {
                return false;
            }
            self.become_probe();
            self.next_index = hint.next().min(rejected).max(self.match_index.next());
            return true;
        }
        // In probe, only the answer to the probe we sent counts.
        if self.next_index.prev() != rejected {
            return false;
        }
        self.next_index = hint.next().min(rejected).max(self.match_index.next());
        self.probe_sent = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_stops_at_the_inflight_limits_and_resumes_on_acks() {
        let mut p = Progress::new(LogIndex(1));
        p.become_replicate();
        for i in 1..=4 {
            assert!(!p.is_paused(4, 1 << 20));
            p.sent(LogIndex(i), 100);
        }
        assert!(p.is_paused(4, 1 << 20), "4 messages in flight");
        assert!(p.maybe_update(LogIndex(2)));
        assert_eq!(p.inflight_count(), 2);
        assert!(!p.is_paused(4, 1 << 20));
        assert!(p.is_paused(4, 200), "200 bytes in flight");
        assert_eq!(p.next_index, LogIndex(5));
    }

    #[test]
    fn probe_decreases_only_for_the_probe_outstanding() {
        let mut p = Progress::new(LogIndex(10));
        p.sent(LogIndex(12), 10);
        assert!(p.probe_sent);
        assert!(
            !p.maybe_decrease_to(LogIndex(5), LogIndex(3)),
            "stale rejection"
        );
        assert!(p.maybe_decrease_to(LogIndex(9), LogIndex(3)));
        assert_eq!(p.next_index, LogIndex(4));
        assert!(!p.probe_sent);
    }
}
