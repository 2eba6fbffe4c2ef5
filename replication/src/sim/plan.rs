//! Everything about one run that its seed decides: cluster shape, protocol
//! options, and the fault mix (FoundationDB's BUGGIFY in spirit: each run
//! draws its own hostile settings).

use super::network::NetworkFaults;
use crate::rng::Rng;

/// A tick of the core is 10 ms of virtual time (before per-node skew).
pub const TICK_US: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct Plan {
    /// Nodes in all: the bootstrap voters, then `learners` bootstrap
    /// learners, then `spares` nodes outside the bootstrap configuration
    /// (membership changes may add them).
    pub nodes: usize,
    pub learners: usize,
    pub spares: usize,
    pub groups: usize,
    pub clients: usize,
    pub keys: u32,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub lease_reads: bool,
    pub net: NetworkFaults,
    /// Per node: tick period in microseconds (clock skew up to ±2%).
    pub tick_us: Vec<u64>,
    /// Mean time between crashes (0 = no crashes).
    pub crash_every_us: u64,
    pub down_us: (u64, u64),
    pub tear: bool,
    /// Mean time between partition changes (0 = none).
    pub nemesis_every_us: u64,
    /// Normal sync latency range and the chance and range of a slow sync
    /// (the fdatasync tail).
    pub sync_us: (u64, u64),
    pub slow_sync_chance: f64,
    pub slow_sync_us: (u64, u64),
    /// Length of the fault phase.
    pub fault_us: u64,
    pub client_timeout_us: u64,
    /// Flow control knobs of the cores, from hostile (one entry per message,
    /// one message in flight) to roomy.
    pub msg_bytes_max: usize,
    pub inflight_msgs_max: usize,
    pub inflight_bytes_max: usize,
    /// Compact a group's log (snapshot its state machine) once this many
    /// entries were applied past the last snapshot; 0 = never.
    pub compact_every: u64,
    /// Mean time between membership changes proposed to a group's leader
    /// (0 = none).
    pub membership_every_us: u64,
}

impl Plan {
    pub fn draw(rng: &mut Rng, fault_us: Option<u64>) -> Self {
        let voters = [3, 3, 5][rng.below(3) as usize];
        let learners = if rng.chance(0.25) { 1 } else { 0 };
        let nodes = voters + learners;
        let check_quorum = rng.chance(0.75);
        let tick_us = (0..nodes).map(|_| tick_period(rng)).collect();
        let mut plan = Plan {
            nodes,
            learners,
            spares: 0,
            groups: 1 + rng.below(2) as usize,
            clients: 2 + rng.below(4) as usize,
            keys: 1 + rng.below(3) as u32,
            pre_vote: rng.chance(0.75),
            check_quorum,
            lease_reads: check_quorum && rng.chance(0.5),
            net: NetworkFaults::draw(rng),
            tick_us,
            crash_every_us: [0, 300_000, 1_000_000, 3_000_000][rng.below(4) as usize],
            down_us: (10_000, rng.range(50_000, 1_500_000)),
            tear: rng.chance(0.5),
            nemesis_every_us: [0, 200_000, 700_000, 2_000_000][rng.below(4) as usize],
            sync_us: (20, rng.range(100, 2_000)),
            slow_sync_chance: [0.0, 0.002, 0.02][rng.below(3) as usize],
            slow_sync_us: (20_000, rng.range(50_000, 2_000_000)),
            fault_us: fault_us.unwrap_or_else(|| rng.range(1_000_000, 4_000_000)),
            client_timeout_us: rng.range(300_000, 2_000_000),
            msg_bytes_max: [1, 100, 512, 64 << 10][rng.below(4) as usize],
            inflight_msgs_max: [1, 2, 4, 64][rng.below(4) as usize],
            inflight_bytes_max: [64, 4096, 1 << 20][rng.below(3) as usize],
            compact_every: [0, 5, 30, 200][rng.below(4) as usize],
            membership_every_us: 0,
        };
        // Drawn last, so the draws above do not shift.
        plan.membership_every_us = [0, 150_000, 500_000, 1_500_000][rng.below(4) as usize];
        if plan.membership_every_us > 0 {
            plan.spares = rng.below(3) as usize;
            plan.nodes += plan.spares;
            plan.tick_us
                .extend((0..plan.spares).map(|_| tick_period(rng)));
        }
        plan
    }

    /// Bootstrap voters: the first nodes.
    pub fn voters(&self) -> usize {
        self.nodes - self.learners - self.spares
    }
}

/// A node's tick period: `TICK_US` skewed by up to ±2 %.
fn tick_period(rng: &mut Rng) -> u64 {
    TICK_US * 98 / 100 + rng.below(TICK_US * 4 / 100 + 1)
}

impl Plan {
    /// A harsher mix aimed at leadership churn with unreplicated tails (the
    /// Figure 8 sequence of §5.4.2): three voters, one entry per message and
    /// one message in flight, frequent crashes and partition changes, lossy
    /// and slow links; no membership changes.
    pub fn churn(mut self) -> Self {
        self.nodes = 3;
        self.learners = 0;
        self.spares = 0;
        self.membership_every_us = 0;
        self.tick_us.truncate(3);
        self.msg_bytes_max = 1;
        self.inflight_msgs_max = 1;
        self.net.drop_chance = 0.1;
        self.net.long_delay_chance = 0.1;
        self.crash_every_us = 150_000;
        self.down_us = (10_000, 300_000);
        self.nemesis_every_us = 100_000;
        self
    }
}
