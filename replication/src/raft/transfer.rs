//! Leadership transfer (Ongaro's thesis §3.10): the leader brings the target
//! up to date, then tells it to campaign at once (`TimeoutNow`); the target's
//! vote requests are marked so voters set aside leader stickiness.

use super::message::Body;
use super::{Raft, RaftError, Role};
use crate::types::NodeId;

/// A transfer in progress at the leader.
#[derive(Debug, Clone, Copy)]
pub(super) struct Transfer {
    pub(super) to: NodeId,
    /// Leader ticks the transfer has been running; abandoned after an
    /// election timeout.
    pub(super) elapsed: u64,
}

impl Raft {
    /// Hands leadership to `to`, a voter of the configuration in force (an
    /// incoming voter while joint). While the transfer runs (at most an election
    /// timeout), proposals are refused with `TransferInProgress` so the
    /// target can catch up. Once `TimeoutNow` is sent this leader serves no
    /// more lease reads in its term: the target may win without waiting out
    /// the voters' election timers.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.cfg.id || !self.membership().voters.contains(&to) {
            return Err(RaftError::BadTransfer { to });
        }
        self.transfer = Some(Transfer { to, elapsed: 0 });
        self.maybe_send_timeout_now(to);
        if self.transfer.is_some() {
            self.send_append(to, true);
        }
        self.after_input();
        Ok(())
    }

    /// Sends `TimeoutNow` if `to` is the transfer target and fully caught up.
    pub(super) fn maybe_send_timeout_now(&mut self, to: NodeId) {
        let Some(t) = self.transfer else {
            return;
        };
        if t.to != to || self.progress[&to].match_index != self.log.last_index() {
            return;
        }
        self.lease_forfeited = true;
        self.send(to, self.term, Body::TimeoutNow);
    }

    pub(super) fn tick_transfer(&mut self) {
        if let Some(t) = &mut self.transfer {
            t.elapsed += 1;
            if t.elapsed >= self.cfg.election_ticks {
                self.transfer = None;
            }
        }
    }
}
