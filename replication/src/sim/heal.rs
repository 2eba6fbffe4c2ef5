//! The heal phase: faults stop, every node comes back, and the cluster must
//! converge; then whole logs and the client history are checked.

use super::checker::linearizability;
use super::clients::HEAL_CLIENT_US;
use super::event::Event;
use super::network::NetworkFaults;
use super::node::GroupNode;
use super::run::{Sim, group_id};
use crate::types::{Entry, GroupId, LogIndex};

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

    /// The heal phase ends when every group has one leader followed by
    /// every member of its final configuration (not joint, committed, the
    /// same on every member), every entry is committed and applied on every
    /// member with equal state, and every client operation has completed or
    /// definitively failed. Nodes outside the final configuration are not
    /// waited for (a removed node may never learn of its removal), but they
    /// must not keep the members from converging.
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
            if self.nodes.iter().any(|n| !n.groups.contains_key(&group)) {
                return Err("a node is down".into());
            }
            let (leader, members) = self.final_members(group)?;
            let log = leader.raft.log();
            let conf = leader.raft.membership();
            if conf.is_joint() || log.committed() != log.last_index() {
                return Err(format!(
                    "group {group}: leader has uncommitted entries or a joint configuration"
                ));
            }
            for m in members {
                let l = m.raft.log();
                let same = m.raft.term() == leader.raft.term()
                    && m.raft.leader() == leader.raft.leader()
                    && l.last_index() == log.last_index()
                    && l.applied() == log.last_index()
                    && m.kv == leader.kv
                    && m.raft.membership() == conf;
                if !same {
                    return Err(format!(
                        "group {group}: node {} (term {}, leader {:?}, last {}, applied {}, \
                         {:?}) differs from leader {} (term {}, last {}, committed {}, {:?}, \
                         progress {:?}) or its state",
                        m.raft.id(),
                        m.raft.term(),
                        m.raft.leader(),
                        l.last_index(),
                        l.applied(),
                        m.raft.membership(),
                        leader.raft.id(),
                        leader.raft.term(),
                        log.last_index(),
                        log.committed(),
                        conf,
                        leader.raft.progress(m.raft.id())
                    ));
                }
            }
        }
        Ok(())
    }

    /// A group's leader (of the highest term, if a stale one remains) and
    /// the replicas that are members of its configuration.
    fn final_members(&self, group: GroupId) -> Result<(&GroupNode, Vec<&GroupNode>), String> {
        let replicas: Vec<&GroupNode> = self
            .nodes
            .iter()
            .filter_map(|n| n.groups.get(&group))
            .collect();
        let leader = self
            .leader_of(group)
            .map(|i| &self.nodes[i].groups[&group])
            .ok_or_else(|| {
                let states: Vec<String> = replicas
                    .iter()
                    .map(|m| {
                        let (r, l) = (&m.raft, m.raft.log());
                        format!(
                            "node {} {:?} term {} last {}/{} committed {} voters {:?} \
                             learners {:?} outgoing {:?}",
                            r.id(),
                            r.role(),
                            r.term(),
                            l.last_index(),
                            l.last_term(),
                            l.committed(),
                            r.membership().voters,
                            r.membership().learners,
                            r.membership().outgoing
                        )
                    })
                    .collect();
                format!("group {group} has no leader; {}", states.join("; "))
            })?;
        let conf = leader.raft.membership();
        let members = replicas
            .iter()
            .copied()
            .filter(|m| conf.is_member(m.raft.id()))
            .collect();
        Ok((leader, members))
    }

    pub(super) fn finish(&mut self) -> Result<(), String> {
        // Logs of the converged members must be identical (log matching over
        // whole logs, not just what the incremental checker saw).
        for g in 0..self.plan.groups {
            let group = group_id(g);
            let (_, members) = self.final_members(group)?;
            // From the highest compaction point on, every log holds entries.
            let from = members
                .iter()
                .map(|m| m.raft.log().first_index())
                .max()
                .unwrap_or(LogIndex(1));
            let logs: Vec<Vec<Entry>> = members
                .iter()
                .map(|m| m.raft.log().entries_from(from, usize::MAX))
                .collect();
            if logs.windows(2).any(|w| w[0] != w[1]) {
                return Err(format!("group {group}: logs differ after convergence"));
            }
        }
        self.stats.linearizability =
            linearizability::check(&self.history, self.opts.linearizability_budget)?;
        self.stats.virtual_us = self.now;
        Ok(())
    }
}
