//! The simulated network: per-message drop, delay (which reorders) and
//! duplication, and link cuts: partitions, asymmetric (one-way) cuts, and
//! links clogged and unclogged one at a time.

use crate::rng::Rng;
use crate::types::NodeId;
use std::collections::BTreeSet;

/// Fault rates of one run, drawn from its seed.
#[derive(Debug, Clone)]
pub struct NetworkFaults {
    pub drop_chance: f64,
    pub duplicate_chance: f64,
    /// Usual one-way delay range, microseconds.
    pub delay_us: (u64, u64),
    /// Chance of a long delay (which reorders messages), and its range.
    pub long_delay_chance: f64,
    pub long_delay_us: (u64, u64),
}

impl NetworkFaults {
    pub fn draw(rng: &mut Rng) -> Self {
        NetworkFaults {
            drop_chance: [0.0, 0.01, 0.05, 0.15][rng.below(4) as usize],
            duplicate_chance: [0.0, 0.01, 0.05][rng.below(3) as usize],
            delay_us: (50, rng.range(200, 5_000)),
            long_delay_chance: [0.0, 0.01, 0.05][rng.below(3) as usize],
            long_delay_us: (10_000, rng.range(20_000, 400_000)),
        }
    }

    /// The network of the heal phase: no loss, short delays.
    pub fn calm() -> Self {
        NetworkFaults {
            drop_chance: 0.0,
            duplicate_chance: 0.0,
            delay_us: (50, 1_000),
            long_delay_chance: 0.0,
            long_delay_us: (0, 0),
        }
    }
}

#[derive(Debug)]
pub struct Network {
    pub faults: NetworkFaults,
    /// Directed links that deliver nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    rng: Rng,
}

impl Network {
    pub fn new(faults: NetworkFaults, rng: Rng) -> Self {
        Network {
            faults,
            cut: BTreeSet::new(),
            rng,
        }
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Delivery delays for one message sent now: none if it is lost, two if
    /// it is duplicated.
    pub fn route(&mut self, from: NodeId, to: NodeId) -> Vec<u64> {
        if self.is_cut(from, to) || self.rng.chance(self.faults.drop_chance) {
            return Vec::new();
        }
        let copies = if self.rng.chance(self.faults.duplicate_chance) {
            2
        } else {
            1
        };
        (0..copies).map(|_| self.delay()).collect()
    }

    /// Client traffic: lost or delayed but never duplicated (a client
    /// request travels on a stream; a duplicate would make "definitely
    /// failed" unsound without request ids on the server).
    pub fn route_client(&mut self) -> Option<u64> {
        if self.rng.chance(self.faults.drop_chance) {
            return None;
        }
        Some(self.delay())
    }

    fn delay(&mut self) -> u64 {
        let f = &self.faults;
        let (lo, hi) = if self.rng.chance(f.long_delay_chance) {
            f.long_delay_us
        } else {
            f.delay_us
        };
        self.rng.range(lo, hi.max(lo))
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn cut_link(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    pub fn restore_link(&mut self, from: NodeId, to: NodeId) {
        self.cut.remove(&(from, to));
    }

    /// Splits `nodes` in two random sides (symmetric partition).
    pub fn partition(&mut self, nodes: &[NodeId]) {
        self.heal();
        let side: Vec<bool> = nodes.iter().map(|_| self.rng.chance(0.5)).collect();
        for (i, &a) in nodes.iter().enumerate() {
            for (j, &b) in nodes.iter().enumerate() {
                if side[i] != side[j] {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    /// Cuts every link from `node` (it still hears everyone): asymmetric.
    pub fn mute(&mut self, node: NodeId, nodes: &[NodeId]) {
        for &b in nodes {
            if b != node {
                self.cut.insert((node, b));
            }
        }
    }

    /// Cuts every link into `node` (it still speaks): asymmetric.
    pub fn deafen(&mut self, node: NodeId, nodes: &[NodeId]) {
        for &b in nodes {
            if b != node {
                self.cut.insert((b, node));
            }
        }
    }

    pub fn isolate(&mut self, node: NodeId, nodes: &[NodeId]) {
        self.mute(node, nodes);
        self.deafen(node, nodes);
    }
}
