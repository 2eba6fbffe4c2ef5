//! The heal phase: faults stop, every node comes back, and the cluster must
//! converge; then whole logs and the client history are checked.

use super::checker::linearizability;
use super::clients::HEAL_CLIENT_US;
use super::event::Event;
use super::network::NetworkFaults;
use super::node::GroupNode;
use super::run::{Sim, group_id};
use crate::raft::Role;
use crate::types::{Entry, LogIndex};

/// Search steps the linearizability checker may spend per register.
const LINEARIZABILITY_BUDGET: u64 = 2_000_000;
const CONVERGE_CHECK_US: u64 = 50_000;

impl Sim {
    pub(super) fn on_heal(&mut self) -> Result<(), String> {
        self.heal_at = Some(self.now);
        self.net.heal();
        self.net.faults = NetworkFaults::calm();
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                self.start_node(i)?;
            }
        }
        self.schedule(CONVERGE_CHECK_US, Event::Converged);
        Ok(())
    }

    /// The heal phase ends when every group has one leader followed by all,
    /// every entry is committed and applied everywhere with equal state, and
    /// every client operation has completed or definitively failed.
    pub(super) fn check_converged(&mut self) -> Result<bool, String> {
        let heal_at = self.heal_at.expect("heal phase");
        match self.converged() {
            Ok(()) if self.now > heal_at + HEAL_CLIENT_US => return Ok(true),
            Ok(()) => {}
            Err(why) if self.now > heal_at + self.opts.heal_us_max => {
                return Err(format!(
                    "liveness: not converged {} us after healing: {why}",
                    self.opts.heal_us_max
                ));
            }
            Err(_) => {}
        }
        self.schedule(CONVERGE_CHECK_US, Event::Converged);
        Ok(false)
    }

    pub(super) fn converged(&self) -> Result<(), String> {
        if let Some(c) = self.clients.iter().find(|c| c.current.is_some()) {
            return Err(format!("client {} has an operation in flight", c.id));
        }
        for g in 0..self.plan.groups {
            let group = group_id(g);
            let members: Vec<&GroupNode> = self
                .nodes
                .iter()
                .filter_map(|n| n.groups.get(&group))
                .collect();
            if members.len() != self.nodes.len() {
                return Err("a node is down".into());
            }
            let Some(leader) = members.iter().find(|m| m.raft.role() == Role::Leader) else {
                return Err(format!("group {group} has no leader"));
            };
            let log = leader.raft.log();
            if log.committed() != log.last_index() {
                return Err(format!("group {group}: leader has uncommitted entries"));
            }
            for m in &members {
                let l = m.raft.log();
                let same = m.raft.term() == leader.raft.term()
                    && m.raft.leader() == leader.raft.leader()
                    && l.last_index() == log.last_index()
                    && l.applied() == log.last_index()
                    && m.kv == leader.kv;
                if !same {
                    return Err(format!(
                        "group {group}: node {} (term {}, leader {:?}, last {}, applied {}) \
                         differs from leader {} (term {}, last {}, committed {}, progress {:?}) \
                         or its state",
                        m.raft.id(),
                        m.raft.term(),
                        m.raft.leader(),
                        l.last_index(),
                        l.applied(),
                        leader.raft.id(),
                        leader.raft.term(),
                        log.last_index(),
                        log.committed(),
                        leader.raft.progress(m.raft.id())
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> Result<(), String> {
        // Logs of the converged cluster must be identical (log matching over
        // whole logs, not just what the incremental checker saw).
        for g in 0..self.plan.groups {
            let group = group_id(g);
            // From the highest compaction point on, every log holds entries.
            let from = self
                .nodes
                .iter()
                .map(|n| n.groups[&group].raft.log().first_index())
                .max()
                .unwrap_or(LogIndex(1));
            let logs: Vec<Vec<Entry>> = self
                .nodes
                .iter()
                .map(|n| n.groups[&group].raft.log().entries_from(from, usize::MAX))
                .collect();
            if logs.windows(2).any(|w| w[0] != w[1]) {
                return Err(format!("group {group}: logs differ after convergence"));
            }
        }
        self.stats.linearizability = linearizability::check(&self.history, LINEARIZABILITY_BUDGET)?;
        self.stats.virtual_us = self.now;
        Ok(())
    }
}
