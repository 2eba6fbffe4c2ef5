//! Records of the per-core raft log. Each is the payload of one
//! `ferrisdb_io::log` record, which frames and crc32c-checks it; this module
//! only lays out the fields (little-endian, fixed width).
//!
//! ```text
//! Ready (kind 1): one group's entries and/or commit index
//!   0  u8   kind = 1
//!   1  u8   flags: bit 0 = a commit index follows
//!                  bit 1 = entries carry their kind
//!   2  u16  zero
//!   4  u32  entry count n
//!   8  u64  group
//!  16  u64  index of the first entry (0 when n = 0); an index at or below
//!           the group's last replaces the suffix from there
//!  24  u64  commit (present when flags bit 0)
//!   …  n × { u64 term, u32 len, len bytes }                 (flags bit 1 clear)
//!      n × { u64 term, u32 len, u8 kind, 3 × zero, len bytes } (flags bit 1 set)
//!
//! Entry kinds: 0 = normal (a command, or the empty no-op), 1 = a
//! configuration (`raft::Membership` payload). Bit 1 is set only in records
//! holding an entry other than normal, so a record of normal entries is
//! byte for byte what the format was before kinds existed (old logs read
//! back unchanged), and a reader that predates kinds refuses a record with
//! a configuration as "unknown flags" instead of misreading it.
//!
//! Vote (kind 2): a group's term and vote (written to the vote log)
//!   0  u8   kind = 2, 1..8 zero
//!   8  u64  group
//!  16  u64  term
//!  24  u64  vote (node id; 0 = none)
//!
//! Compacted (kind 3): the group no longer needs entries up to index
//!   0  u8   kind = 3, 1..8 zero
//!   8  u64  group
//!  16  u64  index
//!  24  u64  term of the entry at index
//! ```

use crate::types::{Entry, EntryKind, GroupId, LogIndex, NodeId, Term};

const KIND_READY: u8 = 1;
const KIND_VOTE: u8 = 2;
const KIND_COMPACTED: u8 = 3;
const FLAG_COMMIT: u8 = 1;
const FLAG_KINDS: u8 = 2;
const READY_HEADER_BYTES: usize = 24;
/// Bytes of a Ready record besides its entries: the header and a commit.
pub const READY_FIXED_BYTES: usize = READY_HEADER_BYTES + 8;
const FIXED_BYTES: usize = 32;
const ENTRY_HEADER_BYTES: usize = 12;
/// An entry header with its kind (flags bit 1).
const KINDED_ENTRY_HEADER_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Ready {
        group: GroupId,
        entries: Vec<Entry>,
        commit: Option<LogIndex>,
    },
    Vote {
        group: GroupId,
        term: Term,
        vote: Option<NodeId>,
    },
    Compacted {
        group: GroupId,
        index: LogIndex,
        term: Term,
    },
}

/// Why a record's bytes could not be decoded (they passed the log's crc, so
/// this is a format or version mismatch, or a bug).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad raft log record at byte {at}: {why}")]
pub struct DecodeError {
    pub at: usize,
    pub why: &'static str,
}

/// Bytes of each entry's header in a Ready record, with or without kinds.
pub fn entry_header_bytes(kinds: bool) -> usize {
    if kinds {
        KINDED_ENTRY_HEADER_BYTES
    } else {
        ENTRY_HEADER_BYTES
    }
}

/// Bytes `entries` take in one Ready record.
pub fn ready_entries_bytes(entries: &[Entry]) -> usize {
    let header = entry_header_bytes(needs_kinds(entries));
    entries.iter().map(|e| header + e.data.len()).sum()
}

fn needs_kinds(entries: &[Entry]) -> bool {
    entries.iter().any(|e| e.kind != EntryKind::Normal)
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::Ready {
                group,
                entries,
                commit,
            } => {
                let kinds = needs_kinds(entries);
                let mut b = Vec::with_capacity(READY_FIXED_BYTES + ready_entries_bytes(entries));
                b.push(KIND_READY);
                let mut flags = if commit.is_some() { FLAG_COMMIT } else { 0 };
                if kinds {
                    flags |= FLAG_KINDS;
                }
                b.push(flags);
                b.extend_from_slice(&[0, 0]);
                let n = u32::try_from(entries.len()).expect("a Ready holds < 2^32 entries");
                b.extend_from_slice(&n.to_le_bytes());
                b.extend_from_slice(&group.0.to_le_bytes());
                let first = entries.first().map_or(0, |e| e.index.0);
                b.extend_from_slice(&first.to_le_bytes());
                if let Some(c) = commit {
                    b.extend_from_slice(&c.0.to_le_bytes());
                }
                for (k, e) in entries.iter().enumerate() {
                    assert_eq!(
                        e.index.0,
                        first + k as u64,
                        "entries of a record are contiguous"
                    );
                    b.extend_from_slice(&e.term.0.to_le_bytes());
                    let len = u32::try_from(e.data.len()).expect("entry fits a record");
                    b.extend_from_slice(&len.to_le_bytes());
                    if kinds {
                        b.extend_from_slice(&[e.kind.code(), 0, 0, 0]);
                    }
                    b.extend_from_slice(&e.data);
                }
                b
            }
            Record::Vote { group, term, vote } => {
                fixed(KIND_VOTE, group.0, term.0, vote.map_or(0, |v| v.0))
            }
            Record::Compacted { group, index, term } => {
                fixed(KIND_COMPACTED, group.0, index.0, term.0)
            }
        }
    }

    pub fn decode(b: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader { b, at: 0 };
        let kind = r.u8()?;
        match kind {
            KIND_READY => {
                let flags = r.u8()?;
                r.skip(2)?;
                let n = r.u32()?;
                let group = GroupId(r.u64()?);
                let first = r.u64()?;
                let commit = if flags & FLAG_COMMIT != 0 {
                    Some(LogIndex(r.u64()?))
                } else {
                    None
                };
                if flags & !(FLAG_COMMIT | FLAG_KINDS) != 0 {
                    return Err(r.error("unknown flags"));
                }
                let kinds = flags & FLAG_KINDS != 0;
                if n > 0 && first == 0 {
                    return Err(r.error("entries at index 0"));
                }
                // Each entry takes at least its header: bounds the allocation.
                if n as usize > r.remaining() / ENTRY_HEADER_BYTES {
                    return Err(r.error("entry count exceeds the record"));
                }
                let mut entries = Vec::with_capacity(n as usize);
                for k in 0..u64::from(n) {
                    let term = Term(r.u64()?);
                    let len = r.u32()? as usize;
                    let kind = if kinds {
                        let code = r.u8()?;
                        r.skip(3)?;
                        EntryKind::from_code(code).ok_or_else(|| r.error("unknown entry kind"))?
                    } else {
                        EntryKind::Normal
                    };
                    let data = r.bytes(len)?;
                    entries.push(Entry {
                        term,
                        index: LogIndex(first + k),
                        kind,
                        data: data.into(),
                    });
                }
                if r.remaining() != 0 {
                    return Err(r.error("trailing bytes"));
                }
                Ok(Record::Ready {
                    group,
                    entries,
                    commit,
                })
            }
            KIND_VOTE | KIND_COMPACTED => {
                r.skip(7)?;
                let group = GroupId(r.u64()?);
                let (x, y) = (r.u64()?, r.u64()?);
                if r.remaining() != 0 {
                    return Err(r.error("trailing bytes"));
                }
                Ok(if kind == KIND_VOTE {
                    Record::Vote {
                        group,
                        term: Term(x),
                        vote: (y != 0).then_some(NodeId(y)),
                    }
                } else {
                    Record::Compacted {
                        group,
                        index: LogIndex(x),
                        term: Term(y),
                    }
                })
            }
            _ => Err(r.error("unknown record kind")),
        }
    }
}

fn fixed(kind: u8, a: u64, b: u64, c: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(FIXED_BYTES);
    v.push(kind);
    v.extend_from_slice(&[0; 7]);
    v.extend_from_slice(&a.to_le_bytes());
    v.extend_from_slice(&b.to_le_bytes());
    v.extend_from_slice(&c.to_le_bytes());
    v
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, why: &'static str) -> DecodeError {
        DecodeError { at: self.at, why }
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error("record ends early"));
        }
        let out = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        let zeros = self.bytes(n)?;
        if zeros.iter().any(|&z| z != 0) {
            return Err(self.error("reserved bytes not zero"));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let e = |i, t, d: &[u8]| Entry::normal(LogIndex(i), Term(t), d.into());
        let conf = |i, t| {
            let m =
                crate::raft::Membership::new(&[NodeId(1), NodeId(2)], &[NodeId(3)]).expect("valid");
            Entry {
                term: Term(t),
                index: LogIndex(i),
                kind: EntryKind::ConfChange,
                data: m.encode(),
            }
        };
        vec![
            Record::Ready {
                group: GroupId(7),
                entries: vec![e(5, 2, b"abc"), e(6, 3, b"")],
                commit: Some(LogIndex(4)),
            },
            Record::Ready {
                group: GroupId(1),
                entries: vec![],
                commit: Some(LogIndex(9)),
            },
            Record::Ready {
                group: GroupId(1),
                entries: vec![e(1, 1, b"x")],
                commit: None,
            },
            Record::Ready {
                group: GroupId(2),
                entries: vec![e(4, 2, b"y"), conf(5, 2), e(6, 2, b"")],
                commit: Some(LogIndex(3)),
            },
            Record::Vote {
                group: GroupId(3),
                term: Term(8),
                vote: Some(NodeId(2)),
            },
            Record::Vote {
                group: GroupId(3),
                term: Term(9),
                vote: None,
            },
            Record::Compacted {
                group: GroupId(3),
                index: LogIndex(100),
                term: Term(4),
            },
        ]
    }

    #[test]
    fn records_round_trip() {
        for r in samples() {
            assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        for r in samples() {
            let b = r.encode();
            for cut in 0..b.len() {
                assert!(Record::decode(&b[..cut]).is_err(), "{r:?} cut at {cut}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(Record::decode(&longer).is_err());
        }
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = Record::decode(&junk);
        }
        // A huge entry count is refused before allocating.
        let mut b = Record::Ready {
            group: GroupId(1),
            entries: vec![],
            commit: None,
        }
        .encode();
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Record::decode(&b).is_err());
    }

    /// A record of normal entries is laid out exactly as before entry kinds
    /// existed (no kind bytes, flags bit 1 clear), so logs written then read
    /// back unchanged; a record holding a configuration sets bit 1.
    #[test]
    fn kinds_are_written_only_when_a_record_needs_them() {
        let plain = Record::Ready {
            group: GroupId(1),
            entries: vec![Entry::normal(LogIndex(1), Term(1), b"ab".as_slice().into())],
            commit: None,
        };
        let mut expected = vec![KIND_READY, 0, 0, 0, 1, 0, 0, 0];
        expected.extend_from_slice(&1u64.to_le_bytes()); // group
        expected.extend_from_slice(&1u64.to_le_bytes()); // first index
        expected.extend_from_slice(&1u64.to_le_bytes()); // term
        expected.extend_from_slice(&2u32.to_le_bytes()); // len
        expected.extend_from_slice(b"ab");
        assert_eq!(plain.encode(), expected);
        let with_conf = &samples()[3];
        let b = with_conf.encode();
        assert_eq!(b[1], FLAG_COMMIT | FLAG_KINDS);
        // An unknown kind code is an error, not a guess.
        let mut bad = b.clone();
        let at = READY_FIXED_BYTES + 8 + 4; // first entry's kind byte
        bad[at] = 9;
        assert!(Record::decode(&bad).is_err());
    }
}
