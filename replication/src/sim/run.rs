//! The event loop of one simulated run.

use super::checker::election_safety::ElectionSafety;
use super::checker::leader_completeness::LeaderCompleteness;
use super::checker::linearizability::Report;
use super::checker::log_matching::LogMatching;
use super::checker::state_machine_safety::StateMachineSafety;
use super::event::{Event, Scheduled};
use super::network::Network;
use super::node::{SimNode, answer_reads, apply};
use super::plan::Plan;
use super::replay_command;
use super::workload::{Client, HistoryOp, OpKind, Outcome, Reply, Request, encode_write, reply};
use crate::raft::message::Message;
use crate::raft::{Config, RaftError, Role};
use crate::rng::{Rng, mix};
use crate::types::{GroupId, NodeId};
use std::collections::BinaryHeap;

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Length of the fault phase; drawn from the seed if `None`.
    pub fault_us: Option<u64>,
    /// The heal phase fails the run if the cluster has not converged by then.
    pub heal_us_max: u64,
    pub events_max: u64,
    /// Use [`Plan::churn`] instead of the general mix.
    pub churn: bool,
    /// Search steps the linearizability checker may spend per register
    /// before calling it inconclusive. Searches for a planted bug that
    /// another checker catches may lower it: a register that exhausts it
    /// costs seconds.
    pub linearizability_budget: u64,
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<crate::raft::PlantedBug>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            fault_us: None,
            heal_us_max: 30_000_000,
            events_max: 50_000_000,
            churn: false,
            linearizability_budget: 2_000_000,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub seed: u64,
    pub virtual_us: u64,
    pub events: u64,
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub ops_unknown: u64,
    pub elections: u64,
    pub crashes: u64,
    pub compactions: u64,
    pub snapshots_installed: u64,
    /// Leadership transfers the leader accepted.
    pub transfers: u64,
    /// Membership changes a leader accepted (each a joint entry, then C_new).
    pub conf_changes: u64,
    /// Of those, changes that left the proposing leader out of the voters.
    pub leader_removals: u64,
    /// Proposals refused (one already in flight, a new leader, unchanged).
    pub conf_changes_refused: u64,
    pub entries_applied: usize,
    pub linearizability: Report,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub at_us: u64,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at {} us (virtual): {}\n  replay: {}",
            self.seed,
            self.at_us,
            self.what,
            replay_command(self.seed)
        )
    }
}

pub(super) struct Checkers {
    pub(super) election: ElectionSafety,
    pub(super) log_matching: LogMatching,
    pub(super) completeness: LeaderCompleteness,
    pub(super) state_machine: StateMachineSafety,
}

/// One run in progress; its behaviour is split over `run` (event loop,
/// nodes, storage), `clients`, `nemesis`, `membership` and `heal`.
pub(super) struct Sim {
    pub(super) seed: u64,
    pub(super) opts: SimOptions,
    pub(super) plan: Plan,
    pub(super) now: u64,
    pub(super) seq: u64,
    pub(super) queue: BinaryHeap<Scheduled>,
    pub(super) rng: Rng,
    pub(super) disk_rng: Rng,
    pub(super) net: Network,
    pub(super) nodes: Vec<SimNode>,
    pub(super) clients: Vec<Client>,
    pub(super) history: Vec<HistoryOp>,
    pub(super) checkers: Checkers,
    pub(super) heal_at: Option<u64>,
    pub(super) stats: Stats,
}

/// Runs one seed; a panic inside (a broken invariant) propagates.
pub fn run(seed: u64, opts: &SimOptions) -> Result<Stats, Failure> {
    let mut sim = Sim::new(seed, opts.clone());
    match sim.run() {
        Ok(()) => Ok(sim.stats),
        Err(what) => Err(Failure {
            seed,
            at_us: sim.now,
            what,
        }),
    }
}

/// Runs one seed, turning a panic into a failure of that seed.
pub fn run_catching(seed: u64, opts: &SimOptions) -> Result<Stats, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed, opts))) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Err(Failure {
                seed,
                at_us: 0,
                what: format!("panic: {msg}"),
            })
        }
    }
}

impl Sim {
    pub(super) fn new(seed: u64, opts: SimOptions) -> Self {
        let mut root = Rng::new(seed);
        let mut plan_rng = root.fork();
        let mut plan = Plan::draw(&mut plan_rng, opts.fault_us);
        if opts.churn {
            plan = plan.churn();
        }
        let net = Network::new(plan.net.clone(), root.fork());
        let nodes = (0..plan.nodes).map(|i| SimNode::new(node_id(i))).collect();
        let clients = (0..plan.clients)
            .map(|c| Client::new(c as u32, plan.groups))
            .collect();
        Sim {
            seed,
            opts,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng: root.fork(),
            disk_rng: root.fork(),
            net,
            nodes,
            clients,
            history: Vec::new(),
            checkers: Checkers {
                election: ElectionSafety::default(),
                log_matching: LogMatching::default(),
                completeness: LeaderCompleteness::default(),
                state_machine: StateMachineSafety::default(),
            },
            heal_at: None,
            stats: Stats {
                seed,
                ..Stats::default()
            },
            plan,
        }
    }

    pub(super) fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: self.now + delay,
            seq: self.seq,
            event,
        });
    }

    pub(super) fn run(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            self.start_node(i)?;
        }
        for c in 0..self.clients.len() {
            let delay = self.rng.below(20_000);
            self.schedule(delay, Event::ClientNext { client: c });
        }
        if self.plan.crash_every_us > 0 {
            let d = self.rng.range(0, self.plan.crash_every_us);
            self.schedule(d, Event::Crash);
        }
        if self.plan.nemesis_every_us > 0 {
            let d = self.rng.range(0, self.plan.nemesis_every_us);
            self.schedule(d, Event::Nemesis);
        }
        if self.plan.membership_every_us > 0 {
            let d = self.rng.range(0, self.plan.membership_every_us);
            self.schedule(d, Event::Membership);
        }
        self.schedule(self.plan.fault_us, Event::Heal);
        while let Some(s) = self.queue.pop() {
            self.now = s.at;
            self.stats.events += 1;
            if self.stats.events > self.opts.events_max {
                return Err(format!(
                    "runaway: more than {} events",
                    self.opts.events_max
                ));
            }
            if self.handle(s.event)? {
                return self.finish();
            }
        }
        Err("event queue ran dry".into())
    }

    /// Returns true when the run is complete.
    pub(super) fn handle(&mut self, event: Event) -> Result<bool, String> {
        match event {
            Event::Tick { node, epoch } => self.on_tick(node, epoch)?,
            Event::Deliver { msg } => self.on_deliver(msg)?,
            Event::Request { node, req } => self.on_request(node, req)?,
            Event::Reply { reply } => self.on_reply(reply),
            Event::Synced { node, epoch, seq } => self.on_synced(node, epoch, seq)?,
            Event::ClientNext { client } => self.on_client_next(client),
            Event::ClientTimeout { client, op } => self.end_op(client, op, Outcome::Unknown),
            Event::Crash => self.on_crash(),
            Event::Restart { node, epoch } => {
                if !self.nodes[node].up && self.nodes[node].epoch == epoch {
                    self.start_node(node)?;
                }
            }
            Event::Nemesis => self.on_nemesis()?,
            Event::Membership => self.on_membership()?,
            Event::Link { from, to, cut } => {
                if self.heal_at.is_none() {
                    if cut {
                        self.net.cut_link(from, to);
                    } else {
                        self.net.restore_link(from, to);
                    }
                }
            }
            Event::Heal => self.on_heal()?,
            Event::Converged => return self.check_converged(),
        }
        Ok(false)
    }

    /// The node (index) leading `group` in the highest term any replica
    /// leads it in: an older leader may not have heard of the newer term
    /// yet. Two leaders of one term are the election-safety checker's
    /// business; here the higher index wins such a tie.
    pub(super) fn leader_of(&self, group: GroupId) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let gn = self.nodes[i].groups.get(&group)?;
                (gn.raft.role() == Role::Leader).then(|| (gn.raft.term(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    pub(super) fn config(&self, node: usize, group: GroupId) -> Config {
        // The bootstrap configuration, the same on every node (spares start
        // outside it).
        let voters = self.plan.voters();
        let mut cfg = Config::new(node_id(node), group, (0..voters).map(node_id).collect());
        cfg.learners = (voters..voters + self.plan.learners).map(node_id).collect();
        cfg.pre_vote = self.plan.pre_vote;
        cfg.check_quorum = self.plan.check_quorum;
        cfg.lease_reads = self.plan.lease_reads;
        cfg.drift_ticks = 2;
        // Small messages and windows so batching and flow control matter.
        cfg.msg_bytes_max = self.plan.msg_bytes_max;
        cfg.inflight_msgs_max = self.plan.inflight_msgs_max;
        cfg.inflight_bytes_max = self.plan.inflight_bytes_max;
        cfg.seed = mix(self.seed
            ^ mix(node as u64 + 1)
            ^ mix(group.0 << 20)
            ^ self.nodes[node].epoch << 40);
        cfg.check_invariants = true;
        #[cfg(feature = "planted-bugs")]
        {
            cfg.planted_bug = self.opts.planted_bug;
        }
        cfg
    }

    pub(super) fn start_node(&mut self, i: usize) -> Result<(), String> {
        let configs = (0..self.plan.groups)
            .map(|g| self.config(i, group_id(g)))
            .collect();
        let node = &mut self.nodes[i];
        node.start(configs)
            .map_err(|e| format!("node {} restart: {e}", node.id))?;
        for (g, disk) in &node.storage.durable {
            self.checkers
                .log_matching
                .reset(node.id, *g, disk.before(), &disk.entries)?;
        }
        let epoch = node.epoch;
        let first_tick = self.rng.below(self.plan.tick_us[i]);
        self.schedule(first_tick, Event::Tick { node: i, epoch });
        for g in 0..self.plan.groups {
            self.process(i, group_id(g))?;
        }
        Ok(())
    }

    pub(super) fn on_tick(&mut self, i: usize, epoch: u64) -> Result<(), String> {
        if !self.nodes[i].up || self.nodes[i].epoch != epoch {
            return Ok(());
        }
        for g in 0..self.plan.groups {
            let group = group_id(g);
            if let Some(gn) = self.nodes[i].groups.get_mut(&group) {
                gn.raft.tick();
            }
            self.process(i, group)?;
        }
        self.schedule(self.plan.tick_us[i], Event::Tick { node: i, epoch });
        Ok(())
    }

    pub(super) fn on_deliver(&mut self, msg: Message) -> Result<(), String> {
        let i = (msg.to.0 - 1) as usize;
        if !self.nodes[i].up || self.net.is_cut(msg.from, msg.to) {
            return Ok(());
        }
        let group = msg.group;
        let Some(gn) = self.nodes[i].groups.get_mut(&group) else {
            return Ok(());
        };
        gn.raft
            .step(msg)
            .map_err(|e| format!("a core rejected a message of another core: {e}"))?;
        self.process(i, group)
    }

    pub(super) fn send_raft(&mut self, msg: Message) {
        if msg.from == msg.to {
            // A candidate's own vote, back once durable: local, no network.
            self.schedule(0, Event::Deliver { msg });
            return;
        }
        for delay in self.net.route(msg.from, msg.to) {
            self.schedule(delay, Event::Deliver { msg: msg.clone() });
        }
    }

    pub(super) fn send_reply(&mut self, reply: Reply) {
        if let Some(delay) = self.net.route_client() {
            self.schedule(delay, Event::Reply { reply });
        }
    }

    /// Handles every Ready of one group on one node, then checks safety.
    pub(super) fn process(&mut self, i: usize, group: GroupId) -> Result<(), String> {
        loop {
            let node = &mut self.nodes[i];
            let id = node.id;
            let Some(gn) = node.groups.get_mut(&group) else {
                return Ok(());
            };
            if !gn.raft.has_ready() {
                break;
            }
            let mut rd = gn.raft.ready();
            let mut replies = Vec::new();
            if let Some(snap) = &rd.snapshot {
                gn.install_snapshot(snap, &mut replies);
                let kept = gn.raft.log().entries_from(snap.index.next(), usize::MAX);
                self.checkers
                    .log_matching
                    .reset(id, group, (snap.index, snap.term), &kept)?;
                self.stats.snapshots_installed += 1;
            } else {
                self.checkers
                    .log_matching
                    .observe_append(id, group, &rd.entries)?;
            }
            apply(
                gn,
                id,
                group,
                &rd.committed,
                &mut self.checkers.state_machine,
                &mut replies,
            )?;
            self.stats.entries_applied += rd.committed.len();
            answer_reads(gn, &rd, &mut replies);
            for &to in &rd.snapshot_needed {
                let image = gn.state_image();
                // Refused if the follower caught up meanwhile: fine.
                let _ = gn.raft.send_snapshot(to, image);
            }
            let compaction = self.plan.compact_every > 0 && {
                let log = gn.raft.log();
                log.applied().0 >= log.snapshot_index().0 + self.plan.compact_every
                    && log.applied() <= log.persisted()
            };
            let wrote = node.storage.write_ready(group, &mut rd);
            if compaction {
                gn.compact(&mut node.storage);
                self.stats.compactions += 1;
            }
            if (wrote || compaction) && !self.nodes[i].syncing {
                self.start_sync(i);
            }
            for m in rd.messages {
                self.send_raft(m);
            }
            for r in replies {
                self.send_reply(r);
            }
        }
        self.observe_role(i, group)
    }

    pub(super) fn observe_role(&mut self, i: usize, group: GroupId) -> Result<(), String> {
        let id = node_id(i);
        let Some(gn) = self.nodes[i].groups.get_mut(&group) else {
            return Ok(());
        };
        let (role, term) = (gn.raft.role(), gn.raft.term());
        if role == Role::Leader {
            self.checkers.election.observe(group, term, id)?;
            if gn.last_role != Role::Leader || gn.last_term != term {
                self.stats.elections += 1;
                self.checkers
                    .completeness
                    .observe_new_leader(group, id, term, gn.raft.log())?;
            }
            self.checkers
                .completeness
                .observe_commit(group, term, gn.raft.log());
        }
        gn.last_role = role;
        gn.last_term = term;
        Ok(())
    }

    /// Starts a sync covering every write queued so far.
    pub(super) fn start_sync(&mut self, i: usize) {
        let latency = self.sync_latency();
        let node = &mut self.nodes[i];
        node.syncing = true;
        let (epoch, seq) = (node.epoch, node.storage.last_seq());
        self.schedule(
            latency,
            Event::Synced {
                node: i,
                epoch,
                seq,
            },
        );
    }

    pub(super) fn sync_latency(&mut self) -> u64 {
        let p = &self.plan;
        let slow = self.heal_at.is_none() && self.disk_rng.chance(p.slow_sync_chance);
        let (lo, hi) = if slow { p.slow_sync_us } else { p.sync_us };
        self.disk_rng.range(lo, hi)
    }

    pub(super) fn on_synced(&mut self, i: usize, epoch: u64, seq: u64) -> Result<(), String> {
        if !self.nodes[i].up || self.nodes[i].epoch != epoch {
            return Ok(());
        }
        let writes = self.nodes[i].storage.synced(seq);
        self.nodes[i].syncing = false;
        if self.nodes[i].storage.has_unsynced() {
            self.start_sync(i);
        }
        let mut touched = Vec::new();
        for w in writes {
            for m in w.after {
                self.send_raft(m);
            }
            if let Some((index, term)) = w.last
                && let Some(gn) = self.nodes[i].groups.get_mut(&w.group)
            {
                gn.raft.persisted(index, term);
            }
            if !touched.contains(&w.group) {
                touched.push(w.group);
            }
        }
        for g in touched {
            self.process(i, g)?;
        }
        Ok(())
    }

    pub(super) fn on_request(&mut self, i: usize, req: Request) -> Result<(), String> {
        if !self.nodes[i].up {
            return Ok(());
        }
        let Some(gn) = self.nodes[i].groups.get_mut(&req.group) else {
            return Ok(());
        };
        let result = match req.kind {
            OpKind::Write(value) => {
                let data = encode_write(req.client, req.op, req.key, value);
                gn.raft.propose(vec![data]).map(|p| {
                    gn.proposals.insert(p.first, (p.term, req));
                })
            }
            OpKind::Read => {
                let ctx = (u64::from(req.client) << 32) | req.op;
                gn.raft.read_index(ctx).map(|()| {
                    gn.reads.insert(ctx, req);
                })
            }
        };
        if let Err(e) = result {
            let leader = match e {
                RaftError::NotLeader { leader } => leader,
                _ => None,
            };
            self.send_reply(reply(req, Outcome::Failed { leader }));
        }
        self.process(i, req.group)
    }
}

pub(super) fn node_id(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

pub(super) fn group_id(g: usize) -> GroupId {
    GroupId(g as u64 + 1)
}
