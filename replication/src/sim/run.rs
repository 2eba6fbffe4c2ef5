//! The event loop of one simulated run.

use super::checker::election_safety::ElectionSafety;
use super::checker::leader_completeness::LeaderCompleteness;
use super::checker::linearizability::{self, Report};
use super::checker::log_matching::LogMatching;
use super::checker::state_machine_safety::StateMachineSafety;
use super::network::{Network, NetworkFaults};
use super::node::{GroupNode, SimNode};
use super::plan::Plan;
use super::replay_command;
use super::workload::{
    Client, HistoryKind, HistoryOp, InFlight, OpKind, Outcome, Reply, Request, decode_write,
    encode_write,
};
use crate::raft::message::Message;
use crate::raft::{Config, RaftError, Ready, Role};
use crate::rng::{Rng, mix};
use crate::types::{Entry, GroupId, LogIndex, NodeId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Search steps the linearizability checker may spend per register.
const LINEARIZABILITY_BUDGET: u64 = 2_000_000;
/// Clients keep working this long into the heal phase.
const HEAL_CLIENT_US: u64 = 500_000;
const CONVERGE_CHECK_US: u64 = 50_000;

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Length of the fault phase; drawn from the seed if `None`.
    pub fault_us: Option<u64>,
    /// The heal phase fails the run if the cluster has not converged by then.
    pub heal_us_max: u64,
    pub events_max: u64,
    /// Use [`Plan::churn`] instead of the general mix.
    pub churn: bool,
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

#[derive(Debug)]
enum Event {
    Tick { node: usize, epoch: u64 },
    Deliver { msg: Message },
    Request { node: usize, req: Request },
    Reply { reply: Reply },
    Synced { node: usize, epoch: u64, seq: u64 },
    ClientNext { client: usize },
    ClientTimeout { client: usize, op: u64 },
    Crash,
    Restart { node: usize, epoch: u64 },
    Nemesis,
    Link { from: NodeId, to: NodeId, cut: bool },
    Heal,
    Converged,
}

#[derive(Debug)]
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Checkers {
    election: ElectionSafety,
    log_matching: LogMatching,
    completeness: LeaderCompleteness,
    state_machine: StateMachineSafety,
}

struct Sim {
    seed: u64,
    opts: SimOptions,
    plan: Plan,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    rng: Rng,
    disk_rng: Rng,
    net: Network,
    nodes: Vec<SimNode>,
    clients: Vec<Client>,
    history: Vec<HistoryOp>,
    checkers: Checkers,
    heal_at: Option<u64>,
    stats: Stats,
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
    fn new(seed: u64, opts: SimOptions) -> Self {
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

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at: self.now + delay,
            seq: self.seq,
            event,
        });
    }

    fn run(&mut self) -> Result<(), String> {
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
    fn handle(&mut self, event: Event) -> Result<bool, String> {
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

    fn config(&self, node: usize, group: GroupId) -> Config {
        let voter_count = self.plan.nodes - self.plan.learners;
        let voters = (0..voter_count).map(node_id).collect();
        let mut cfg = Config::new(node_id(node), group, voters);
        cfg.learners = (voter_count..self.plan.nodes).map(node_id).collect();
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

    fn start_node(&mut self, i: usize) -> Result<(), String> {
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

    fn on_tick(&mut self, i: usize, epoch: u64) -> Result<(), String> {
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

    fn on_deliver(&mut self, msg: Message) -> Result<(), String> {
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

    fn send_raft(&mut self, msg: Message) {
        for delay in self.net.route(msg.from, msg.to) {
            self.schedule(delay, Event::Deliver { msg: msg.clone() });
        }
    }

    fn send_reply(&mut self, reply: Reply) {
        if let Some(delay) = self.net.route_client() {
            self.schedule(delay, Event::Reply { reply });
        }
    }

    /// Handles every Ready of one group on one node, then checks safety.
    fn process(&mut self, i: usize, group: GroupId) -> Result<(), String> {
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

    fn observe_role(&mut self, i: usize, group: GroupId) -> Result<(), String> {
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
    fn start_sync(&mut self, i: usize) {
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

    fn sync_latency(&mut self) -> u64 {
        let p = &self.plan;
        let slow = self.heal_at.is_none() && self.disk_rng.chance(p.slow_sync_chance);
        let (lo, hi) = if slow { p.slow_sync_us } else { p.sync_us };
        self.disk_rng.range(lo, hi)
    }

    fn on_synced(&mut self, i: usize, epoch: u64, seq: u64) -> Result<(), String> {
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

    fn on_request(&mut self, i: usize, req: Request) -> Result<(), String> {
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

    fn on_client_next(&mut self, c: usize) {
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

    fn on_reply(&mut self, r: Reply) {
        self.end_op(r.client as usize, r.op, r.outcome);
    }

    /// Ends client `c`'s operation `op` if it is still the one in flight (a
    /// late reply or timeout of an earlier one is ignored).
    fn end_op(&mut self, c: usize, op: u64, outcome: Outcome) {
        if self.clients[c].current.is_some_and(|f| f.request.op == op) {
            self.finish_op(c, outcome);
        }
    }

    fn finish_op(&mut self, c: usize, outcome: Outcome) {
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

    fn on_crash(&mut self) {
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

    fn on_nemesis(&mut self) -> Result<(), String> {
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
    fn around(&mut self, every: u64) -> u64 {
        self.rng.range(every / 2, every * 3 / 2)
    }

    /// Clogs links one by one, then unclogs them one by one.
    fn clog_links(&mut self, nodes: &[NodeId]) {
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

    fn schedule_link(&mut self, at: u64, (from, to): (NodeId, NodeId), cut: bool) {
        self.schedule(at, Event::Link { from, to, cut });
    }

    /// Asks the leader of a random group to hand over to a random voter.
    fn transfer_leadership(&mut self) -> Result<(), String> {
        let group = group_id(self.rng.below(self.plan.groups as u64) as usize);
        let target = node_id(self.rng.below(self.plan.nodes as u64) as usize);
        let leader = (0..self.nodes.len()).find(|&i| {
            self.nodes[i]
                .groups
                .get(&group)
                .is_some_and(|g| g.raft.role() == Role::Leader)
        });
        let Some(i) = leader else {
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

    fn on_heal(&mut self) -> Result<(), String> {
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
    fn check_converged(&mut self) -> Result<bool, String> {
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

    fn converged(&self) -> Result<(), String> {
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

    fn finish(&mut self) -> Result<(), String> {
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

fn node_id(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

fn group_id(g: usize) -> GroupId {
    GroupId(g as u64 + 1)
}

pub(super) fn reply(req: Request, outcome: Outcome) -> Reply {
    Reply {
        client: req.client,
        op: req.op,
        outcome,
    }
}

/// Applies committed entries to the register state machine and answers the
/// proposals they settle.
fn apply(
    gn: &mut GroupNode,
    node: NodeId,
    group: GroupId,
    entries: &[Entry],
    checker: &mut StateMachineSafety,
    replies: &mut Vec<Reply>,
) -> Result<(), String> {
    for e in entries {
        checker.observe_apply(node, group, e)?;
        if let Some((client, op, key, value)) = decode_write(&e.data) {
            let last = gn.sessions.entry(client).or_insert(0);
            if op > *last {
                *last = op;
                gn.kv.insert(key, value);
            }
        }
        if let Some((term, req)) = gn.proposals.remove(&e.index) {
            // Another entry in our slot means ours can never commit.
            let outcome = if term == e.term {
                Outcome::Ok(None)
            } else {
                Outcome::Failed { leader: None }
            };
            replies.push(reply(req, outcome));
        }
    }
    Ok(())
}

/// Queues confirmed reads, answers those the applied index reached, and
/// fails reads and proposals the core gave up on.
fn answer_reads(gn: &mut GroupNode, rd: &Ready, replies: &mut Vec<Reply>) {
    for rs in &rd.read_states {
        if let Some(req) = gn.reads.remove(&rs.ctx) {
            gn.ready_reads.push((rs.index, req));
        }
    }
    let applied = gn.raft.log().applied();
    let kv = &gn.kv;
    gn.ready_reads.retain(|(index, req)| {
        if *index > applied {
            return true;
        }
        replies.push(reply(*req, Outcome::Ok(kv.get(&req.key).copied())));
        false
    });
    for ctx in &rd.failed_reads {
        if let Some(req) = gn.reads.remove(ctx) {
            replies.push(reply(req, Outcome::Failed { leader: None }));
        }
    }
    if rd.leadership_lost.is_some() {
        // Fail in-flight proposals at once (retryable, outcome unknown)
        // rather than leave them to the client's timeout.
        for (_, (_, req)) in std::mem::take(&mut gn.proposals) {
            replies.push(reply(req, Outcome::Unknown));
        }
    }
}
