//! Keys, versions and entry kinds shared by every part of the engine.

use std::cmp::Ordering;

/// MVCC version of an entry. Larger is newer. Version 0 is never written.
pub type Version = u64;

/// Largest version a read can ask for ("latest").
pub const VERSION_MAX: Version = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Put = 1,
    Delete = 2,
}

impl Kind {
    pub fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Put),
            2 => Some(Kind::Delete),
            _ => None,
        }
    }
}

/// Internal order: user key ascending, then version descending, so the first
/// entry at or after `(key, v)` is the newest version of `key` visible at `v`.
pub fn cmp_internal(
    a_key: &[u8],
    a_version: Version,
    b_key: &[u8],
    b_version: Version,
) -> Ordering {
    a_key.cmp(b_key).then(b_version.cmp(&a_version))
}

/// A range deletion: every version older than `version` of every key in
/// `[start, end)` is deleted for readers at `version` or later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub version: Version,
}

impl RangeTombstone {
    pub fn covers(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }

    /// Does it hide an entry of `key` at `entry_version` from a reader at `read_version`?
    pub fn hides(&self, key: &[u8], entry_version: Version, read_version: Version) -> bool {
        self.version <= read_version && entry_version < self.version && self.covers(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first_within_a_key() {
        assert_eq!(cmp_internal(b"a", 5, b"a", 3), Ordering::Less);
        assert_eq!(cmp_internal(b"a", 1, b"b", 9), Ordering::Less);
        assert_eq!(cmp_internal(b"b", 1, b"a", 9), Ordering::Greater);
    }

    #[test]
    fn tombstone_hides_only_older_versions_inside_its_range() {
        let t = RangeTombstone {
            start: b"b".to_vec(),
            end: b"d".to_vec(),
            version: 10,
        };
        assert!(t.hides(b"b", 9, 10));
        assert!(
            !t.hides(b"b", 10, 10),
            "same version is the tombstone's own batch"
        );
        assert!(
            !t.hides(b"b", 9, 9),
            "readers before the tombstone still see the value"
        );
        assert!(!t.hides(b"d", 1, 20), "end is exclusive");
    }
}
