//! Keys and records as YCSB builds them, stored in one FerrisDB value.
//!
//! A key is `user` followed by the key number (FNV-hashed unless
//! `insertorder=ordered`) in decimal, zero-padded to `zeropadding` digits:
//! `user6284781860667377211`. A record's fields `field0..fieldN-1` are
//! stored positionally in one value (the names are implied by position):
//!
//! ```text
//! 0xF5 | varint field_count | (varint length | bytes) * field_count
//! ```
//!
//! With `dataintegrity=true` a field's bytes are a function of the key and
//! the field number (YCSB's `buildDeterministicValue`), and reads check
//! them.

use super::generator::fnv_hash64;
use super::store::{Failure, Status};
use super::workload::{CoreWorkload, InsertOrder, LengthChooser};
use crate::workload::{Rng, ValueGen};
use std::fmt;
use std::io::Write as _;

/// First byte of every record, so that a value written by something else
/// is told apart from a record.
const RECORD_MAGIC: u8 = 0xF5;
/// Prefix of every key, as in YCSB.
pub const KEY_PREFIX: &[u8] = b"user";
/// Bytes of a varint holding any u64.
const VARINT_BYTES_MAX: u64 = 10;

/// Builds key names from key numbers.
#[derive(Debug, Clone, Copy)]
pub struct KeyNamer {
    pub order: InsertOrder,
    pub zero_padding: usize,
}

impl KeyNamer {
    /// YCSB's `buildKeyName(keynum)` into `out`.
    pub fn write(&self, keynum: u64, out: &mut Vec<u8>) {
        let n = match self.order {
            InsertOrder::Hashed => fnv_hash64(keynum),
            InsertOrder::Ordered => keynum,
        };
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let len = digits.len() - at;
        out.clear();
        out.extend_from_slice(KEY_PREFIX);
        out.resize(
            KEY_PREFIX.len() + self.zero_padding.saturating_sub(len),
            b'0',
        );
        out.extend_from_slice(&digits[at..]);
    }

    pub fn name(&self, keynum: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(keynum, &mut out);
        out
    }
}

/// Largest encoded record of `field_count` fields of at most `field_bytes` each.
pub fn bytes_max(field_count: u64, field_bytes: u64) -> u64 {
    let per_field = varint_len(field_bytes).saturating_add(field_bytes);
    1u64.saturating_add(varint_len(field_count))
        .saturating_add(field_count.saturating_mul(per_field))
}

fn varint_len(v: u64) -> u64 {
    u64::from((64 - v.leading_zeros()).div_ceil(7).max(1)).min(VARINT_BYTES_MAX)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Writes a record of `fields` into `out`.
#[cfg(test)]
pub fn encode<'a>(fields: impl ExactSizeIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    start(out, fields.len() as u64);
    for f in fields {
        push_field(out, f);
    }
}

/// Starts a record of `field_count` fields in `out`; [`push_field`] each
/// of them next, in order.
pub fn start(out: &mut Vec<u8>, field_count: u64) {
    out.clear();
    out.push(RECORD_MAGIC);
    put_varint(out, field_count);
}

pub fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    put_varint(out, field.len() as u64);
    out.extend_from_slice(field);
}

/// A value that is not a record this benchmark wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub reason: &'static str,
    pub at: usize,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a YCSB record: {} at byte {}", self.reason, self.at)
    }
}

/// The fields of an encoded record, in order. Made by [`decode`], which
/// has checked the whole record, so iterating cannot fail.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    left: u64,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let len = take_varint(&mut self.rest).expect("decode checked every field length");
        let (field, tail) = self.rest.split_at(len as usize);
        self.rest = tail;
        Some(field)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// Checks that `value` is an encoded record and returns its fields
/// (without collecting them: this runs on every read).
pub fn decode(value: &[u8]) -> Result<Fields<'_>, BadRecord> {
    let total = value.len();
    let bad = |reason, rest: &[u8]| BadRecord {
        reason,
        at: total - rest.len(),
    };
    let Some((&RECORD_MAGIC, mut rest)) = value.split_first() else {
        return Err(bad("wrong first byte", value));
    };
    let count = take_varint(&mut rest).ok_or_else(|| bad("truncated field count", rest))?;
    // Every field takes at least one byte: a count above the bytes left is a lie.
    if count > rest.len() as u64 {
        return Err(bad("field count beyond the value", rest));
    }
    let fields = Fields { rest, left: count };
    for _ in 0..count {
        let len = take_varint(&mut rest).ok_or_else(|| bad("truncated field length", rest))?;
        if len > rest.len() as u64 {
            return Err(bad("field beyond the value", rest));
        }
        rest = &rest[len as usize..];
    }
    if !rest.is_empty() {
        return Err(bad("bytes after the last field", rest));
    }
    Ok(fields)
}

/// YCSB's `buildDeterministicValue(key, "field" + field)`: the key, the
/// field name, then `:` and a decimal hash of everything so far, repeated,
/// cut to `len` bytes. (YCSB hashes with Java's `String.hashCode`; this
/// hashes with FNV-1a, incrementally, so long fields cost linear time.)
pub fn deterministic_field(key: &[u8], field: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(key);
    write!(out, ":field{field}").expect("writing to a Vec cannot fail");
    let mut hash: u32 = 0x811C_9DC5;
    let mut hashed = 0;
    while out.len() < len {
        for &b in &out[hashed..] {
            hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        hashed = out.len();
        write!(out, ":{hash}").expect("writing to a Vec cannot fail");
    }
    out.truncate(len);
}

/// The bytes of field `i` of `key`: random printable bytes of a drawn
/// length, or with `dataintegrity` the deterministic field.
pub fn field_bytes(
    w: &CoreWorkload,
    key: &[u8],
    i: u64,
    lengths: &mut LengthChooser,
    rng: &mut Rng,
    values: &mut ValueGen,
    out: &mut Vec<u8>,
) {
    if w.data_integrity {
        deterministic_field(key, i, w.field_lengths.max as usize, out);
    } else {
        let len = lengths.next(rng) as usize;
        out.clear();
        out.extend_from_slice(values.next(len));
    }
}

pub fn bad_record(key: &[u8], e: BadRecord) -> Failure {
    Failure::new(
        Status::UnexpectedState,
        "BAD_RECORD",
        format!("{}: {e}", String::from_utf8_lossy(key)),
    )
}

/// Checks a record read back: that it decodes, has the field asked for,
/// and with `dataintegrity` that the fields are the ones written (built
/// in `scratch` to compare).
pub fn verify(
    w: &CoreWorkload,
    key: &[u8],
    value: &[u8],
    field: Option<u64>,
    scratch: &mut Vec<u8>,
) -> Result<(), Failure> {
    let fields = decode(value).map_err(|e| bad_record(key, e))?;
    let name = || String::from_utf8_lossy(key).into_owned();
    let count = fields.len() as u64;
    if let Some(f) = field
        && f >= count
    {
        return Err(Failure::new(
            Status::UnexpectedState,
            "MISSING_FIELD",
            format!("{} has no field{f}", name()),
        ));
    }
    if !w.data_integrity {
        return Ok(());
    }
    if count != w.field_count {
        return Err(Failure::new(
            Status::UnexpectedState,
            "FIELD_COUNT",
            format!(
                "{} has {count} fields, not fieldcount={}",
                name(),
                w.field_count
            ),
        ));
    }
    for (i, got) in (0..count).zip(fields) {
        if field.is_some_and(|f| f != i) {
            continue;
        }
        deterministic_field(key, i, w.field_lengths.max as usize, scratch);
        if got != scratch.as_slice() {
            return Err(Failure::new(
                Status::UnexpectedState,
                "INTEGRITY",
                format!("{} field{i} is not what was written", name()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_ycsbs() {
        let hashed = KeyNamer {
            order: InsertOrder::Hashed,
            zero_padding: 1,
        };
        assert_eq!(hashed.name(0), b"user6284781860667377211");
        let ordered = KeyNamer {
            order: InsertOrder::Ordered,
            zero_padding: 8,
        };
        assert_eq!(ordered.name(42), b"user00000042");
        assert_eq!(ordered.name(123_456_789), b"user123456789");
        assert!(ordered.name(9) < ordered.name(10));
        assert_eq!(ordered.name(0), b"user00000000");
    }

    #[test]
    fn records_round_trip() {
        let fields: Vec<&[u8]> = vec![b"", b"x", &[7u8; 300], b"last"];
        let mut out = Vec::new();
        encode(fields.iter().copied(), &mut out);
        assert_eq!(decode(&out).expect("decodes").collect::<Vec<_>>(), fields);
        assert!(out.len() as u64 <= bytes_max(4, 300));
        encode(std::iter::empty(), &mut out);
        assert_eq!(decode(&out).expect("decodes").len(), 0);
    }

    #[test]
    fn the_size_bound_is_exact_for_full_fields() {
        for (count, len) in [(1u64, 0u64), (10, 100), (3, 127), (3, 128), (200, 16_384)] {
            let field = vec![b'a'; len as usize];
            let mut out = Vec::new();
            encode(
                (0..count)
                    .map(|_| field.as_slice())
                    .collect::<Vec<_>>()
                    .into_iter(),
                &mut out,
            );
            assert_eq!(out.len() as u64, bytes_max(count, len), "{count} x {len}");
        }
        assert_eq!(bytes_max(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn every_truncation_and_garbage_is_refused_without_panic() {
        let mut out = Vec::new();
        encode([&b"abc"[..], b"defgh"].into_iter(), &mut out);
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = out.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer).expect_err("tail").reason,
            "bytes after the last field"
        );
        assert_eq!(
            decode(b"plain value").expect_err("magic").reason,
            "wrong first byte"
        );
        let huge = [
            RECORD_MAGIC,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x01,
        ];
        assert!(decode(&huge).is_err());
        let mut rng = crate::workload::Rng::new(11);
        for _ in 0..2000 {
            let len = rng.below(40) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if !v.is_empty() {
                v[0] = RECORD_MAGIC;
            }
            // What decode accepts, iteration walks without panicking.
            if let Ok(fields) = decode(&v) {
                assert_eq!(fields.clone().count(), fields.len());
            }
        }
    }

    #[test]
    fn deterministic_fields_depend_on_key_and_field() {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        deterministic_field(b"user1", 0, 100, &mut a);
        deterministic_field(b"user1", 1, 100, &mut b);
        deterministic_field(b"user1", 0, 100, &mut c);
        assert_eq!(a.len(), 100);
        assert!(a.starts_with(b"user1:field0:"));
        assert_ne!(a, b);
        assert_eq!(a, c);
        deterministic_field(b"user1", 0, 4, &mut c);
        assert_eq!(c, b"user");
        deterministic_field(b"user1", 0, 50_000, &mut c);
        assert_eq!(c.len(), 50_000);
    }
}
