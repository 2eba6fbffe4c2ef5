//! The in-memory write buffer of one shard. Single-threaded: one core owns it.

use crate::types::{Kind, RangeTombstone, Version};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Internal key of the memtable: user key ascending, version descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemKey {
    pub key: Vec<u8>,
    pub version: Version,
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        crate::types::cmp_internal(&self.key, self.version, &other.key, other.version)
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone)]
pub struct MemValue {
    pub kind: Kind,
    pub value: Vec<u8>,
}

/// Bytes of bookkeeping charged per entry on top of key and value.
const ENTRY_OVERHEAD_BYTES: usize = 64;

#[derive(Debug, Default)]
pub struct Memtable {
    entries: BTreeMap<MemKey, MemValue>,
    tombstones: Vec<RangeTombstone>,
    bytes: usize,
    /// Highest WAL LSN applied into this memtable (0 = none).
    pub last_lsn: u64,
    /// Highest external log index applied (external log mode).
    pub applied_index: u64,
    pub max_version: Version,
}

impl Memtable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, key: Vec<u8>, version: Version, kind: Kind, value: Vec<u8>) {
        self.bytes += key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        self.max_version = self.max_version.max(version);
        self.entries
            .insert(MemKey { key, version }, MemValue { kind, value });
    }

    pub fn insert_range_tombstone(&mut self, t: RangeTombstone) {
        self.bytes += t.start.len() + t.end.len() + ENTRY_OVERHEAD_BYTES;
        self.max_version = self.max_version.max(t.version);
        self.tombstones.push(t);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.tombstones.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn tombstones(&self) -> &[RangeTombstone] {
        &self.tombstones
    }

    /// Newest entry of `key` with version <= `version`.
    pub fn get(&self, key: &[u8], version: Version) -> Option<(Version, &MemValue)> {
        let probe = MemKey {
            key: key.to_vec(),
            version,
        };
        let (k, v) = self.entries.range(probe..).next()?;
        (k.key == key).then_some((k.version, v))
    }

    /// The first entry (or, if `reverse`, the last) within the bounds.
    pub fn step(
        &self,
        lower: Bound<&MemKey>,
        upper: Bound<&MemKey>,
        reverse: bool,
    ) -> Option<(&MemKey, &MemValue)> {
        let mut range = self.entries.range((lower, upper));
        if reverse {
            range.next_back()
        } else {
            range.next()
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&MemKey, &MemValue)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_returns_newest_visible_version() {
        let mut m = Memtable::new();
        m.insert(b"k".to_vec(), 1, Kind::Put, b"one".to_vec());
        m.insert(b"k".to_vec(), 5, Kind::Put, b"five".to_vec());
        m.insert(b"k".to_vec(), 9, Kind::Delete, vec![]);
        assert!(m.get(b"k", 0).is_none());
        assert_eq!(
            m.get(b"k", 4).map(|(v, e)| (v, e.value.clone())),
            Some((1, b"one".to_vec()))
        );
        assert_eq!(m.get(b"k", 8).map(|(v, _)| v), Some(5));
        assert_eq!(m.get(b"k", 100).map(|(_, e)| e.kind), Some(Kind::Delete));
        assert!(m.get(b"j", 100).is_none());
        assert!(m.get(b"l", 100).is_none());
    }
}
