//! The set of live tables per level. Immutable once built: an edit makes a
//! new `Levels`, so readers keep a consistent view across awaits.

use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub number: u64,
    pub size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub min_version: u64,
    pub max_version: u64,
    pub entries: u64,
    pub deletes: u64,
}

impl FileMeta {
    /// The manifest's view of a table just written.
    pub fn from_properties(
        number: u64,
        size: u64,
        props: crate::format::blocks::Properties,
    ) -> Self {
        FileMeta {
            number,
            size,
            smallest: props.smallest_key,
            largest: props.largest_key,
            min_version: props.min_version,
            max_version: props.max_version,
            entries: props.entries,
            deletes: props.deletes,
        }
    }

    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest.as_slice() <= hi && lo <= self.largest.as_slice()
    }
}

/// # Invariants
/// L0 is ordered newest first (by file number, descending); every deeper
/// level is sorted by smallest key and its files' key ranges do not overlap.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    pub levels: Vec<Vec<Rc<FileMeta>>>,
}

impl Levels {
    pub fn new(count: usize) -> Self {
        Levels {
            levels: vec![Vec::new(); count],
        }
    }

    pub fn add(&mut self, level: usize, file: Rc<FileMeta>) {
        let files = &mut self.levels[level];
        if level == 0 {
            let at = files.partition_point(|f| f.number > file.number);
            files.insert(at, file);
        } else {
            let at = files.partition_point(|f| f.smallest < file.smallest);
            files.insert(at, file);
        }
    }

    pub fn remove(&mut self, level: usize, number: u64) -> bool {
        let files = &mut self.levels[level];
        let before = files.len();
        files.retain(|f| f.number != number);
        files.len() != before
    }

    /// Files of `level` whose key range meets `[lo, hi]`.
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Rc<FileMeta>> {
        self.levels[level]
            .iter()
            .filter(|f| f.overlaps(lo, hi))
            .cloned()
            .collect()
    }

    /// In a sorted level, the file whose range may contain `key`.
    pub fn find(&self, level: usize, key: &[u8]) -> Option<&Rc<FileMeta>> {
        debug_assert!(level > 0);
        let files = &self.levels[level];
        let i = files.partition_point(|f| f.largest.as_slice() < key);
        files.get(i).filter(|f| f.smallest.as_slice() <= key)
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.size).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        (0..self.levels.len()).map(|l| self.level_bytes(l)).sum()
    }

    pub fn file_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    pub fn all_files(&self) -> impl Iterator<Item = (usize, &Rc<FileMeta>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(l, fs)| fs.iter().map(move |f| (l, f)))
    }

    /// Checks the ordering invariants; a violation is a bug in the engine.
    pub fn check_invariants(&self) {
        for w in self.levels[0].windows(2) {
            assert!(w[0].number > w[1].number, "L0 must be newest first");
        }
        for (level, files) in self.levels.iter().enumerate().skip(1) {
            for w in files.windows(2) {
                assert!(
                    w[0].largest < w[1].smallest,
                    "L{level} files overlap: {} and {}",
                    w[0].number,
                    w[1].number
                );
            }
        }
    }
}
