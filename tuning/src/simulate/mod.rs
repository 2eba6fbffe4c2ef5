//! `ferrisdb tune compaction`: runs the engine's real compaction planner
//! over a synthetic write stream, by metadata only (`tree`), and reports
//! write, read and space amplification per setting of the policy.
//!
//! Model, and what it leaves out:
//! - a load of `keys` distinct keys in random order, then updates (their
//!   share of all writes is `update_ratio`) to keys drawn uniformly or from
//!   a Zipf distribution whose hot keys are spread over the key space;
//! - every entry takes `entry_bytes`; tables hold exactly their entries
//!   (no block, index or filter overhead, no compression);
//! - after every flush, compactions run until the planner has nothing to do
//!   (compaction keeps up; write stalls are not modelled), one at a time as
//!   in the engine;
//! - sizes are divided by `scale` (memtable, L1 target, table target), so a
//!   small run keeps the proportions of a large one; the tables print the
//!   unscaled sizes.
//!
//! Read amplification is sampled after every flush (once compactions are
//! done) over [`READ_SAMPLES`] present keys: the tables a point read consults
//! until it finds the key, without and with bloom filters.

mod keys;
mod tree;

pub use keys::{Rng, Zipf, permutation};
pub use tree::Tree;

use ferrisdb_lsm::Options;
use std::time::{Duration, Instant};

/// Present keys whose reads are counted after each flush.
pub const READ_SAMPLES: u32 = 64;
/// Most keys a run may load (the simulator keeps every table's key ids).
pub const KEYS_MAX: u64 = 50_000_000;

/// The settings of the engine's leveled policy that shape its amplification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub memtable_bytes: u64,
    pub l0_trigger: usize,
    pub level1_bytes: u64,
    pub multiplier: u64,
    pub sst_bytes: u64,
    pub levels: usize,
}

impl Policy {
    /// The engine's own settings.
    pub fn from_options(o: &Options) -> Policy {
        let p = o.planner_options();
        Policy {
            memtable_bytes: o.memtable_bytes_max as u64,
            l0_trigger: p.l0_trigger,
            level1_bytes: p.level1_bytes,
            multiplier: p.multiplier,
            sst_bytes: o.sst_bytes_target,
            levels: o.levels,
        }
    }

    /// Sizes divided by `scale` (at least 1 byte each).
    pub fn scaled(&self, scale: u64) -> Policy {
        let s = |n: u64| (n / scale.max(1)).max(1);
        Policy {
            memtable_bytes: s(self.memtable_bytes),
            level1_bytes: s(self.level1_bytes),
            sst_bytes: s(self.sst_bytes),
            ..self.clone()
        }
    }
}

/// How keys of updates are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    Uniform,
    /// Zipf with this exponent (YCSB uses 0.99).
    Zipf(f64),
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distribution::Uniform => f.write_str("uniform"),
            Distribution::Zipf(e) => write!(f, "zipf {e}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub keys: u64,
    /// Updates as a share of all writes, in [0, 1).
    pub update_ratio: f64,
    pub distribution: Distribution,
    pub entry_bytes: u64,
    pub seed: u64,
}

impl Workload {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=KEYS_MAX).contains(&self.keys) {
            return Err(format!("--keys must be between 1 and {KEYS_MAX}"));
        }
        if !(0.0..0.96).contains(&self.update_ratio) {
            return Err("--update-ratio must be at least 0 and below 0.96".into());
        }
        if !(1..=(1 << 20)).contains(&self.entry_bytes) {
            return Err("--entry-bytes must be between 1 and 1 MiB".into());
        }
        if let Distribution::Zipf(e) = self.distribution
            && !(e > 0.0 && e < 10.0)
        {
            return Err("the Zipf exponent must be above 0 and below 10".into());
        }
        Ok(())
    }

    /// Updates after the load: `keys * r / (1 - r)` so they are `r` of all writes.
    pub fn updates(&self) -> u64 {
        (self.keys as f64 * self.update_ratio / (1.0 - self.update_ratio)).round() as u64
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// (flush + compaction bytes written) / bytes written by users; the WAL
    /// (one more write of every byte, for every policy) is not counted.
    pub write_amp: f64,
    /// Mean tables a point read of a present key consults (index and
    /// filter probes; each is a data block read without filters).
    pub read_tables: f64,
    /// Mean data blocks read per point read with bloom filters of the
    /// engine's default bits per key.
    pub read_blocks: f64,
    /// Bytes in tables / bytes of live (distinct) entries, at the end and
    /// the largest seen after any flush.
    pub space_amp: f64,
    pub space_amp_max: f64,
    pub deepest_level: usize,
    pub l0_max: usize,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub elapsed: Duration,
}

/// False-positive rate of a bloom filter of `bits` per key with the best
/// number of hash functions: 0.6185^bits.
pub fn bloom_false_positive_rate(bits: u32) -> f64 {
    if bits == 0 {
        return 1.0;
    }
    0.6185f64.powi(bits as i32)
}

/// Runs `workload` against `policy` (already scaled).
///
/// # Panics
/// If the workload is out of bounds ([`Workload::validate`]).
pub fn simulate(workload: &Workload, policy: &Policy) -> Outcome {
    workload.validate().expect("callers validate the workload");
    let started = Instant::now();
    let mut rng = Rng::new(workload.seed);
    let order = permutation(workload.keys as u32, &mut rng);
    let mut tree = Tree::new(policy, workload.entry_bytes);
    let fpr = bloom_false_positive_rate(Options::default().bloom_bits_per_key);
    let mut reads = ReadSampler::default();
    let mut space_max: f64 = 0.0;
    let mut written = 0u64;
    let mut after_write = |tree: &mut Tree, k: u32, loaded: u64, rng: &mut Rng| {
        if tree.put(k) {
            reads.sample(tree, &order[..loaded as usize], rng, fpr);
            let live = loaded * workload.entry_bytes;
            space_max = space_max.max(tree.disk_bytes() as f64 / live as f64);
        }
    };
    for (i, &k) in order.iter().enumerate() {
        after_write(&mut tree, k, i as u64 + 1, &mut rng);
        written += 1;
    }
    let zipf = match workload.distribution {
        Distribution::Zipf(e) => Some(Zipf::new(workload.keys, e)),
        Distribution::Uniform => None,
    };
    for _ in 0..workload.updates() {
        let index = match &zipf {
            Some(z) => z.sample(&mut rng) - 1,
            None => rng.below(workload.keys),
        };
        after_write(&mut tree, order[index as usize], workload.keys, &mut rng);
        written += 1;
    }
    tree.flush();
    let live = workload.keys * workload.entry_bytes;
    let space_amp = tree.disk_bytes() as f64 / live as f64;
    let c = &tree.counters;
    Outcome {
        write_amp: (c.flush_bytes + c.compaction_bytes) as f64
            / (written * workload.entry_bytes) as f64,
        read_tables: reads.mean_tables(),
        read_blocks: reads.mean_blocks(),
        space_amp,
        space_amp_max: space_max.max(space_amp),
        deepest_level: tree.deepest_level(),
        l0_max: c.l0_max,
        compactions: c.compactions,
        trivial_moves: c.trivial_moves,
        elapsed: started.elapsed(),
    }
}

#[derive(Default)]
struct ReadSampler {
    reads: u64,
    tables: u64,
    blocks: f64,
}

impl ReadSampler {
    fn sample(&mut self, tree: &Tree, present: &[u32], rng: &mut Rng, fpr: f64) {
        for _ in 0..READ_SAMPLES {
            let k = present[rng.below(present.len() as u64) as usize];
            let consulted = tree.tables_consulted(k);
            self.reads += 1;
            self.tables += u64::from(consulted);
            // The table holding the key is read; each earlier one only when
            // its filter says "maybe".
            if consulted > 0 {
                self.blocks += 1.0 + fpr * f64::from(consulted - 1);
            }
        }
    }

    fn mean_tables(&self) -> f64 {
        self.tables as f64 / self.reads.max(1) as f64
    }

    fn mean_blocks(&self) -> f64 {
        self.blocks / self.reads.max(1) as f64
    }
}

/// One row of a comparison: a name for the setting and its policy (unscaled).
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub policy: Policy,
}

/// The engine's defaults, then each setting varied alone around them.
pub fn one_at_a_time(
    base: &Policy,
    multipliers: &[u64],
    l0_triggers: &[usize],
    sst_bytes: &[u64],
    memtable_bytes: &[u64],
) -> Vec<Variant> {
    let mut out = vec![Variant {
        name: "defaults".into(),
        policy: base.clone(),
    }];
    let mut push = |name: String, policy: Policy| {
        if policy != *base {
            out.push(Variant { name, policy });
        }
    };
    for &m in multipliers {
        push(
            format!("multiplier {m}"),
            Policy {
                multiplier: m,
                ..base.clone()
            },
        );
    }
    for &t in l0_triggers {
        push(
            format!("l0 trigger {t}"),
            Policy {
                l0_trigger: t,
                ..base.clone()
            },
        );
    }
    for &s in sst_bytes {
        push(
            format!("sst {}", crate::derive::show(s)),
            Policy {
                sst_bytes: s,
                ..base.clone()
            },
        );
    }
    for &b in memtable_bytes {
        push(
            format!("memtable {}", crate::derive::show(b)),
            Policy {
                memtable_bytes: b,
                ..base.clone()
            },
        );
    }
    out
}

/// Runs every variant on every workload (sizes divided by `scale`), in
/// order, stopping early once `budget` is spent; returns what finished.
pub fn compare(
    workloads: &[Workload],
    variants: &[Variant],
    scale: u64,
    budget: Duration,
    mut each: impl FnMut(&Workload, &Variant, &Outcome),
) -> Vec<(usize, usize, Outcome)> {
    let started = Instant::now();
    let mut done = Vec::new();
    for (w, workload) in workloads.iter().enumerate() {
        for (v, variant) in variants.iter().enumerate() {
            if started.elapsed() >= budget {
                return done;
            }
            let outcome = simulate(workload, &variant.policy.scaled(scale));
            each(workload, variant, &outcome);
            done.push((w, v, outcome));
        }
    }
    done
}

/// The header of the result table.
pub fn table_header() -> String {
    format!(
        "{:<18} {:>9} {:>11} {:>11} {:>10} {:>10} {:>6} {:>6} {:>11}",
        "setting",
        "write-amp",
        "read tables",
        "read blocks",
        "space-amp",
        "space max",
        "levels",
        "L0 max",
        "compactions"
    )
}

/// One row of the result table.
pub fn table_row(variant: &Variant, o: &Outcome) -> String {
    format!(
        "{:<18} {:>9.2} {:>11.2} {:>11.3} {:>10.2} {:>10.2} {:>6} {:>6} {:>11}",
        variant.name,
        o.write_amp,
        o.read_tables,
        o.read_blocks,
        o.space_amp,
        o.space_amp_max,
        o.deepest_level,
        o.l0_max,
        o.compactions
    )
}

#[cfg(test)]
mod tests;
