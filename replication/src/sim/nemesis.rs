//! The nemesis: crashes, partitions, clogged links and leadership
//! transfers during the fault phase.

use super::event::Event;
use super::run::{Sim, group_id, node_id};
use crate::types::NodeId;

impl Sim {
    pub(super) fn on_crash(&mut self) {
        if self.heal_at.is_some() {
            return;
        }
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        if !up.is_empty() {
            let i = up[self.rng.below(up.len() as u64) as usize];
            let tear = self.plan.tear;
            let node = &mut self.nodes[i];
            node.storage.crash(&mut self.disk_rng, tear);
            node.crash();
            let epoch = node.epoch;
            self.stats.crashes += 1;
            let (lo, hi) = self.plan.down_us;
            let down = self.rng.range(lo, hi);
            self.schedule(down, Event::Restart { node: i, epoch });
        }
        let next = self.around(self.plan.crash_every_us);
        self.schedule(next, Event::Crash);
    }

    pub(super) fn on_nemesis(&mut self) -> Result<(), String> {
        if self.heal_at.is_some() {
            return Ok(());
        }
        let nodes: Vec<NodeId> = (0..self.plan.nodes).map(node_id).collect();
        let victim = nodes[self.rng.below(nodes.len() as u64) as usize];
        match self.rng.below(7) {
            6 => self.transfer_leadership()?,
            0 => self.net.heal(),
            1 => self.net.partition(&nodes),
            2 => self.net.isolate(victim, &nodes),
            3 => self.net.mute(victim, &nodes),
            4 => self.net.deafen(victim, &nodes),
            _ => self.clog_links(&nodes),
        }
        let next = self.around(self.plan.nemesis_every_us);
        self.schedule(next, Event::Nemesis);
        Ok(())
    }

    /// A delay drawn from `every / 2 ..= every * 3 / 2`.
    pub(super) fn around(&mut self, every: u64) -> u64 {
        self.rng.range(every / 2, every * 3 / 2)
    }

    /// Clogs links one by one, then unclogs them one by one.
    pub(super) fn clog_links(&mut self, nodes: &[NodeId]) {
        let mut links: Vec<(NodeId, NodeId)> = nodes
            .iter()
            .flat_map(|&a| nodes.iter().filter(move |&&b| b != a).map(move |&b| (a, b)))
            .collect();
        let k = 1 + self.rng.below(links.len() as u64) as usize;
        let mut at = 0;
        let mut chosen = Vec::with_capacity(k);
        for _ in 0..k {
            let link = links.swap_remove(self.rng.below(links.len() as u64) as usize);
            at += self.rng.range(5_000, 80_000);
            self.schedule_link(at, link, true);
            chosen.push(link);
        }
        for link in chosen {
            at += self.rng.range(5_000, 80_000);
            self.schedule_link(at, link, false);
        }
    }

    pub(super) fn schedule_link(&mut self, at: u64, (from, to): (NodeId, NodeId), cut: bool) {
        self.schedule(at, Event::Link { from, to, cut });
    }

    /// Asks the leader of a random group to hand over to a random voter.
    pub(super) fn transfer_leadership(&mut self) -> Result<(), String> {
        let group = group_id(self.rng.below(self.plan.groups as u64) as usize);
        let target = node_id(self.rng.below(self.plan.nodes as u64) as usize);
        let Some(i) = self.leader_of(group) else {
            return Ok(());
        };
        if let Some(gn) = self.nodes[i].groups.get_mut(&group) {
            // Refused when the target is the leader itself or a learner.
            if gn.raft.transfer_leader(target).is_ok() {
                self.stats.transfers += 1;
            }
        }
        self.process(i, group)
    }
}
