//! The clients' side of the workload: issuing operations, taking replies
//! and timeouts, recording the history.

use super::event::Event;
use super::run::{Sim, group_id, node_id};
use super::workload::{HistoryKind, HistoryOp, InFlight, OpKind, Outcome, Reply, Request};

/// Clients keep working this long into the heal phase.
pub(super) const HEAL_CLIENT_US: u64 = 500_000;

impl Sim {
    pub(super) fn on_client_next(&mut self, c: usize) {
        if self.heal_at.is_some_and(|h| self.now > h + HEAL_CLIENT_US) {
            return;
        }
        let group = self.rng.below(self.plan.groups as u64) as usize;
        let key = self.rng.below(u64::from(self.plan.keys)) as u32;
        let client = &mut self.clients[c];
        let op = client.next_op;
        client.next_op += 1;
        let kind = if self.rng.chance(0.5) {
            OpKind::Write((u64::from(client.id) << 32) | op)
        } else {
            OpKind::Read
        };
        let target = match client.leader_hint[group] {
            Some(n) => (n.0 - 1) as usize,
            None => self.rng.below(self.plan.nodes as u64) as usize,
        };
        let request = Request {
            client: client.id,
            op,
            group: group_id(group),
            key,
            kind,
        };
        client.current = Some(InFlight {
            request,
            call: self.now,
            target: node_id(target),
        });
        if let Some(delay) = self.net.route_client() {
            self.schedule(
                delay,
                Event::Request {
                    node: target,
                    req: request,
                },
            );
        }
        let timeout = self.plan.client_timeout_us;
        self.schedule(timeout, Event::ClientTimeout { client: c, op });
    }

    pub(super) fn on_reply(&mut self, r: Reply) {
        self.end_op(r.client as usize, r.op, r.outcome);
    }

    /// Ends client `c`'s operation `op` if it is still the one in flight (a
    /// late reply or timeout of an earlier one is ignored).
    pub(super) fn end_op(&mut self, c: usize, op: u64, outcome: Outcome) {
        if self.clients[c].current.is_some_and(|f| f.request.op == op) {
            self.finish_op(c, outcome);
        }
    }

    pub(super) fn finish_op(&mut self, c: usize, outcome: Outcome) {
        let client = &mut self.clients[c];
        let f = client.current.take().expect("an op in flight");
        let g = (f.request.group.0 - 1) as usize;
        let record = |ret, kind| HistoryOp {
            client: f.request.client,
            group: f.request.group,
            key: f.request.key,
            call: f.call,
            ret,
            kind,
        };
        match (outcome, f.request.kind) {
            (Outcome::Ok(_), OpKind::Write(v)) => {
                self.history
                    .push(record(Some(self.now), HistoryKind::Write(v)));
                client.leader_hint[g] = Some(f.target);
                self.stats.ops_ok += 1;
            }
            (Outcome::Ok(seen), OpKind::Read) => {
                self.history
                    .push(record(Some(self.now), HistoryKind::Read(seen)));
                client.leader_hint[g] = Some(f.target);
                self.stats.ops_ok += 1;
            }
            (Outcome::Failed { leader }, _) => {
                client.leader_hint[g] = leader;
                self.stats.ops_failed += 1;
            }
            (Outcome::Unknown, kind) => {
                if let OpKind::Write(v) = kind {
                    self.history.push(record(None, HistoryKind::Write(v)));
                }
                client.leader_hint[g] = None;
                self.stats.ops_unknown += 1;
            }
        }
        let think = self.rng.below(5_000);
        self.schedule(think, Event::ClientNext { client: c });
    }
}
