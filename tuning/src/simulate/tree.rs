//! The simulated tree: the engine's real level structure
//! (`ferrisdb_lsm::version::Levels` of `FileMeta`) and its real planner
//! (`ferrisdb_lsm::compaction::planner::plan`), with each table's contents
//! kept as the sorted ids of its keys instead of bytes on disk. Flushes and
//! compactions are done on those id lists, so amplification is counted
//! exactly (duplicates really merge away) without any I/O.

use super::Policy;
use ferrisdb_lsm::compaction::planner::{self, PlannerOptions, Task};
use ferrisdb_lsm::version::{FileMeta, Levels};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

/// The table key of id `k`: 4 bytes big-endian, so byte order is id order.
pub fn key_bytes(k: u32) -> Vec<u8> {
    k.to_be_bytes().to_vec()
}

#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub flush_bytes: u64,
    pub compaction_bytes: u64,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub l0_max: usize,
}

pub struct Tree {
    policy: Policy,
    planner: PlannerOptions,
    entry_bytes: u64,
    entries_per_table: u64,
    memtable_entries: u64,
    memtable: BTreeSet<u32>,
    levels: Levels,
    contents: HashMap<u64, Rc<Vec<u32>>>,
    cursors: Vec<Vec<u8>>,
    next_number: u64,
    pub counters: Counters,
}

impl Tree {
    pub fn new(policy: &Policy, entry_bytes: u64) -> Tree {
        assert!(entry_bytes > 0 && policy.levels >= 2);
        Tree {
            policy: policy.clone(),
            planner: PlannerOptions {
                l0_trigger: policy.l0_trigger,
                level1_bytes: policy.level1_bytes,
                multiplier: policy.multiplier,
            },
            entry_bytes,
            entries_per_table: (policy.sst_bytes / entry_bytes).max(1),
            memtable_entries: (policy.memtable_bytes / entry_bytes).max(1),
            memtable: BTreeSet::new(),
            levels: Levels::new(policy.levels),
            contents: HashMap::new(),
            cursors: vec![Vec::new(); policy.levels],
            next_number: 1,
            counters: Counters::default(),
        }
    }

    /// Writes key `k`; true if that filled the memtable and it was flushed
    /// (and compactions ran until the planner had nothing to do).
    pub fn put(&mut self, k: u32) -> bool {
        self.memtable.insert(k);
        if (self.memtable.len() as u64) < self.memtable_entries {
            return false;
        }
        self.flush();
        true
    }

    /// Flushes the memtable (if not empty) as an L0 table, then compacts
    /// until no level needs it.
    pub fn flush(&mut self) {
        if self.memtable.is_empty() {
            return;
        }
        let keys: Vec<u32> = std::mem::take(&mut self.memtable).into_iter().collect();
        let meta = self.table(keys);
        self.counters.flush_bytes += meta.size;
        self.levels.add(0, meta);
        self.counters.l0_max = self.counters.l0_max.max(self.levels.levels[0].len());
        while let Some(task) = planner::plan(&self.levels, &self.planner, &self.cursors) {
            self.run(task);
        }
    }

    /// A new table holding `keys` (sorted, distinct).
    fn table(&mut self, keys: Vec<u32>) -> Rc<FileMeta> {
        assert!(!keys.is_empty() && keys.windows(2).all(|w| w[0] < w[1]));
        let number = self.next_number;
        self.next_number += 1;
        let meta = Rc::new(FileMeta {
            number,
            size: keys.len() as u64 * self.entry_bytes,
            smallest: key_bytes(keys[0]),
            largest: key_bytes(*keys.last().expect("not empty")),
            min_version: number,
            max_version: number,
            entries: keys.len() as u64,
            deletes: 0,
        });
        self.contents.insert(number, Rc::new(keys));
        meta
    }

    /// Does what the engine's background worker does with a task: a
    /// trivial move re-files the table, anything else merges inputs and
    /// overlaps into tables of at most the target size.
    fn run(&mut self, task: Task) {
        let hi = task.key_range().1;
        self.counters.compactions += 1;
        for f in &task.inputs {
            assert!(self.levels.remove(task.level, f.number));
        }
        for f in &task.overlaps {
            assert!(self.levels.remove(task.output_level, f.number));
        }
        if task.trivial_move {
            self.counters.trivial_moves += 1;
            self.levels.add(task.output_level, task.inputs[0].clone());
        } else {
            let sources: Vec<Rc<Vec<u32>>> = task
                .inputs
                .iter()
                .chain(&task.overlaps)
                .map(|f| {
                    self.contents
                        .remove(&f.number)
                        .expect("every table has contents")
                })
                .collect();
            let merged = merge(&sources);
            for chunk in merged.chunks(self.entries_per_table as usize) {
                let meta = self.table(chunk.to_vec());
                self.counters.compaction_bytes += meta.size;
                self.levels.add(task.output_level, meta);
            }
        }
        self.cursors[task.level] = hi;
        self.levels.check_invariants();
    }

    /// Tables a point read of present key `k` consults, newest first, until
    /// the one holding it: each L0 table whose range covers `k`, then the
    /// one table per deeper level whose range covers it. The memtable counts
    /// as 0 (a hit there reads no table).
    pub fn tables_consulted(&self, k: u32) -> u32 {
        if self.memtable.contains(&k) {
            return 0;
        }
        let key = key_bytes(k);
        let mut consulted = 0;
        let holds = |f: &FileMeta| self.contents[&f.number].binary_search(&k).is_ok();
        for f in &self.levels.levels[0] {
            if f.overlaps(&key, &key) {
                consulted += 1;
                if holds(f) {
                    return consulted;
                }
            }
        }
        for level in 1..self.levels.levels.len() {
            if let Some(f) = self.levels.find(level, &key) {
                consulted += 1;
                if holds(f) {
                    return consulted;
                }
            }
        }
        panic!("key {k} was written but no table holds it");
    }

    pub fn disk_bytes(&self) -> u64 {
        self.levels.total_bytes()
    }

    /// Deepest level holding a table (0 if only L0 or nothing).
    pub fn deepest_level(&self) -> usize {
        (0..self.levels.levels.len())
            .rev()
            .find(|&l| !self.levels.levels[l].is_empty())
            .unwrap_or(0)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// The sorted union of sorted id lists (a key in several keeps one entry:
/// the newest version, all the simulation needs).
fn merge(sources: &[Rc<Vec<u32>>]) -> Vec<u32> {
    let total = sources.iter().map(|s| s.len()).sum();
    let mut out: Vec<u32> = Vec::with_capacity(total);
    for s in sources {
        out.extend_from_slice(s);
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            memtable_bytes: 10 * 100,
            l0_trigger: 2,
            level1_bytes: 4 * 1000,
            multiplier: 4,
            sst_bytes: 1000,
            levels: 4,
        }
    }

    #[test]
    fn a_flush_writes_one_table_and_l0_merges_at_its_trigger() {
        let mut t = Tree::new(&policy(), 100);
        for k in 0..9 {
            assert!(!t.put(k * 2));
        }
        assert!(t.put(100), "the 10th distinct key fills the memtable");
        assert_eq!(t.counters.flush_bytes, 1000);
        assert_eq!(t.levels.levels[0].len(), 1);
        for k in 0..10 {
            t.put(k * 2 + 1);
        }
        assert_eq!(
            t.levels.levels[0].len(),
            0,
            "2 L0 tables reached the trigger"
        );
        assert_eq!(t.levels.level_bytes(1), 2000);
        assert_eq!(
            t.counters.compaction_bytes, 2000,
            "20 distinct keys rewritten"
        );
        assert_eq!(t.tables_consulted(5), 1);
    }

    #[test]
    fn rewriting_keys_merges_them_away() {
        let mut t = Tree::new(&policy(), 100);
        for _ in 0..4 {
            for k in 0..10 {
                t.put(k);
            }
        }
        assert_eq!(t.counters.flush_bytes, 4000);
        assert_eq!(t.disk_bytes(), 1000, "one copy of each of 10 keys");
    }
}
