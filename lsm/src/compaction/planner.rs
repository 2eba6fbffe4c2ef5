//! Compaction planning as a pure function of the level state, so it can be
//! tested, simulated (`ferrisdb tune compaction`) and reasoned about alone.
//!
//! Policy: L0 files overlap (each is one flushed memtable); when there are
//! `l0_trigger` of them, all of L0 merges into the overlapping part of L1.
//! Level i >= 1 has a byte target `level1_bytes * multiplier^(i-1)`; the level
//! whose size most exceeds its target (score = bytes / target >= 1) pushes one
//! file, chosen round-robin by key, into the next level.

use crate::version::{FileMeta, Levels};
use std::rc::Rc;

#[derive(Debug, Clone)]
pub struct PlannerOptions {
    pub l0_trigger: usize,
    pub level1_bytes: u64,
    pub multiplier: u64,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub level: usize,
    pub output_level: usize,
    /// Files of `level` being merged.
    pub inputs: Vec<Rc<FileMeta>>,
    /// Files of `output_level` overlapping the inputs.
    pub overlaps: Vec<Rc<FileMeta>>,
    /// No deeper level holds data in the task's key range: deletes may be dropped.
    pub bottommost: bool,
    /// One input, nothing to merge with: the file can move down without rewriting.
    pub trivial_move: bool,
    pub score: f64,
}

impl Task {
    pub fn key_range(&self) -> (Vec<u8>, Vec<u8>) {
        key_range(self.inputs.iter().chain(&self.overlaps))
    }

    pub fn input_bytes(&self) -> u64 {
        self.inputs
            .iter()
            .chain(&self.overlaps)
            .map(|f| f.size)
            .sum()
    }
}

fn key_range<'a>(files: impl Iterator<Item = &'a Rc<FileMeta>>) -> (Vec<u8>, Vec<u8>) {
    let mut lo: Option<&[u8]> = None;
    let mut hi: Option<&[u8]> = None;
    for f in files {
        lo = Some(lo.map_or(&f.smallest[..], |l| l.min(&f.smallest[..])));
        hi = Some(hi.map_or(&f.largest[..], |h| h.max(&f.largest[..])));
    }
    (
        lo.unwrap_or_default().to_vec(),
        hi.unwrap_or_default().to_vec(),
    )
}

pub fn level_target(opts: &PlannerOptions, level: usize) -> u64 {
    assert!(level >= 1);
    opts.level1_bytes
        .saturating_mul(opts.multiplier.saturating_pow(level as u32 - 1))
}

/// Score of each level (L0 by file count, deeper levels by bytes); the last
/// level never compacts further and scores 0.
pub fn scores(levels: &Levels, opts: &PlannerOptions) -> Vec<f64> {
    let last = levels.levels.len() - 1;
    (0..levels.levels.len())
        .map(|l| match l {
            _ if l == last => 0.0,
            0 => levels.levels[0].len() as f64 / opts.l0_trigger as f64,
            _ => levels.level_bytes(l) as f64 / level_target(opts, l) as f64,
        })
        .collect()
}

/// The most urgent compaction, if any level needs one. `cursors[l]` is the
/// largest key last compacted out of level l (round-robin file choice).
pub fn plan(levels: &Levels, opts: &PlannerOptions, cursors: &[Vec<u8>]) -> Option<Task> {
    let scores = scores(levels, opts);
    let (level, &score) = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| **s >= 1.0)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let inputs = if level == 0 {
        levels.levels[0].clone()
    } else {
        let files = &levels.levels[level];
        let cursor = cursors.get(level).map(Vec::as_slice).unwrap_or_default();
        let pick = files
            .iter()
            .find(|f| f.smallest.as_slice() > cursor)
            .unwrap_or(&files[0]);
        vec![pick.clone()]
    };
    Some(task_for(levels, level, inputs, score))
}

/// Builds the task that merges `inputs` of `level` into `level + 1`.
pub fn task_for(levels: &Levels, level: usize, inputs: Vec<Rc<FileMeta>>, score: f64) -> Task {
    assert!(
        level + 1 < levels.levels.len(),
        "the last level has nowhere to go"
    );
    let (lo, hi) = key_range(inputs.iter());
    let output_level = level + 1;
    let overlaps = levels.overlapping(output_level, &lo, &hi);
    let (lo, hi) = key_range(inputs.iter().chain(&overlaps));
    let bottommost =
        (output_level + 1..levels.levels.len()).all(|l| levels.overlapping(l, &lo, &hi).is_empty());
    let trivial_move = level > 0 && inputs.len() == 1 && overlaps.is_empty();
    Task {
        level,
        output_level,
        inputs,
        overlaps,
        bottommost,
        trivial_move,
        score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(number: u64, lo: &str, hi: &str, size: u64) -> Rc<FileMeta> {
        Rc::new(FileMeta {
            number,
            size,
            smallest: lo.as_bytes().to_vec(),
            largest: hi.as_bytes().to_vec(),
            min_version: 1,
            max_version: 1,
            entries: 1,
            deletes: 0,
        })
    }

    fn opts() -> PlannerOptions {
        PlannerOptions {
            l0_trigger: 4,
            level1_bytes: 1000,
            multiplier: 10,
        }
    }

    #[test]
    fn nothing_to_do_below_the_triggers() {
        let mut levels = Levels::new(4);
        for n in 1..=3 {
            levels.add(0, file(n, "a", "z", 10));
        }
        levels.add(1, file(10, "a", "m", 900));
        assert!(plan(&levels, &opts(), &[]).is_none());
    }

    #[test]
    fn l0_at_trigger_merges_all_l0_with_overlapping_l1() {
        let mut levels = Levels::new(4);
        for n in 1..=4 {
            levels.add(0, file(n, "c", "f", 10));
        }
        levels.add(1, file(10, "a", "b", 100));
        levels.add(1, file(11, "d", "e", 100));
        levels.add(1, file(12, "x", "y", 100));
        let task = plan(&levels, &opts(), &[]).expect("L0 is at its trigger");
        assert_eq!((task.level, task.output_level), (0, 1));
        assert_eq!(task.inputs.len(), 4);
        assert_eq!(
            task.overlaps.iter().map(|f| f.number).collect::<Vec<_>>(),
            vec![11]
        );
        assert!(task.bottommost);
    }

    #[test]
    fn oversized_level_pushes_one_file_round_robin() {
        let mut levels = Levels::new(4);
        levels.add(1, file(10, "a", "b", 800));
        levels.add(1, file(11, "c", "d", 800));
        levels.add(2, file(20, "c", "c", 10));
        levels.add(3, file(30, "a", "z", 10));
        let first = plan(&levels, &opts(), &[]).expect("L1 over target");
        assert_eq!(first.inputs[0].number, 10);
        assert!(first.trivial_move);
        let second = plan(&levels, &opts(), &[vec![], b"b".to_vec()]).expect("L1 over target");
        assert_eq!(second.inputs[0].number, 11);
        assert_eq!(second.overlaps[0].number, 20);
        assert!(!second.bottommost, "L3 holds data in range");
    }

    #[test]
    fn last_level_never_compacts() {
        let mut levels = Levels::new(2);
        levels.add(1, file(10, "a", "b", u64::MAX / 4));
        assert!(plan(&levels, &opts(), &[]).is_none());
    }
}
