//! Membership changes in the fault mix: every so often a group's leader is
//! asked to change the group's configuration — add or remove a learner,
//! promote a learner or demote a voter, add or remove a voter (the leader
//! itself among them), or replace the voters wholesale — drawn from every
//! node of the run (spares start outside the group). A proposal refused
//! because a change is in flight (or the leader is new) is counted and
//! dropped; the next one comes later.

use super::event::Event;
use super::run::{Sim, group_id, node_id};
use crate::raft::Membership;
use crate::types::NodeId;

/// Largest voter set a wholesale replacement draws.
const VOTERS_DRAWN_MAX: usize = 5;

impl Sim {
    pub(super) fn on_membership(&mut self) -> Result<(), String> {
        if self.heal_at.is_some() {
            return Ok(());
        }
        let group = group_id(self.rng.below(self.plan.groups as u64) as usize);
        if let Some(i) = self.leader_of(group) {
            let current = self.nodes[i].groups[&group].raft.membership().leave_joint();
            let (voters, learners) = self.draw_change(&current, node_id(i));
            let gn = self.nodes[i].groups.get_mut(&group).expect("found above");
            match gn.raft.propose_conf_change(voters.clone(), learners) {
                Ok(_) => {
                    self.stats.conf_changes += 1;
                    if !voters.contains(&node_id(i)) {
                        self.stats.leader_removals += 1;
                    }
                }
                Err(_) => self.stats.conf_changes_refused += 1,
            }
            self.process(i, group)?;
        }
        let next = self.around(self.plan.membership_every_us);
        self.schedule(next, Event::Membership);
        Ok(())
    }

    /// A new (voters, learners) drawn from `current` and the node pool: one
    /// step (a learner or voter added, removed, promoted or demoted, or the
    /// leader removed) or, when the step drawn does not apply, a wholesale
    /// new voter set with random learners.
    fn draw_change(&mut self, current: &Membership, leader: NodeId) -> (Vec<NodeId>, Vec<NodeId>) {
        let (mut voters, mut learners) = (current.voters.clone(), current.learners.clone());
        let outside: Vec<NodeId> = (0..self.plan.nodes)
            .map(node_id)
            .filter(|&n| !current.is_member(n))
            .collect();
        let several = voters.len() > 1;
        let step = match self.rng.below(8) {
            0 => self.pick(&outside).map(|n| learners.push(n)),
            1 => self
                .pick(&current.learners)
                .map(|n| learners.retain(|&l| l != n)),
            2 => self.pick(&current.learners).map(|n| {
                learners.retain(|&l| l != n);
                voters.push(n);
            }),
            3 if several => self.pick(&current.voters).map(|n| {
                voters.retain(|&v| v != n);
                learners.push(n);
            }),
            4 => self.pick(&outside).map(|n| voters.push(n)),
            5 if several => self
                .pick(&current.voters)
                .map(|n| voters.retain(|&v| v != n)),
            6 if several => {
                voters.retain(|&v| v != leader);
                Some(())
            }
            _ => None,
        };
        if step.is_some() {
            return (voters, learners);
        }
        let mut pool: Vec<NodeId> = (0..self.plan.nodes).map(node_id).collect();
        let count = 1 + self.rng.below(pool.len().min(VOTERS_DRAWN_MAX) as u64) as usize;
        let mut voters = Vec::with_capacity(count);
        for _ in 0..count {
            voters.push(pool.swap_remove(self.rng.below(pool.len() as u64) as usize));
        }
        let learners = pool.into_iter().filter(|_| self.rng.chance(0.3)).collect();
        (voters, learners)
    }

    /// A random node of `from`, if any.
    fn pick(&mut self, from: &[NodeId]) -> Option<NodeId> {
        (!from.is_empty()).then(|| from[self.rng.below(from.len() as u64) as usize])
    }
}
