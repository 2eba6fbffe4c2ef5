//! Atomic write batches and their WAL encoding.
//!
//! ```text
//! payload : version u64 | op_count u32 | op*
//! op      : tag u8 (1 put, 2 delete, 3 delete_range) | a_len u32 | a | b_len u32 | b
//!           put: a = key, b = value; delete: a = key, b empty; delete_range: a = start, b = end
//! ```
//! All integers little-endian. Every op of a batch gets the batch's version.

use crate::error::{Error, Result};
use crate::types::Version;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    DeleteRange { start: Vec<u8>, end: Vec<u8> },
}

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_DELETE_RANGE: u8 = 3;

/// Operations applied atomically under one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    bytes: usize,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        self.bytes += 9 + key.len() + value.len();
        self.ops.push(Op::Put { key, value });
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        let key = key.into();
        self.bytes += 9 + key.len();
        self.ops.push(Op::Delete { key });
        self
    }

    /// Deletes every key in `[start, end)`.
    pub fn delete_range(
        &mut self,
        start: impl Into<Vec<u8>>,
        end: impl Into<Vec<u8>>,
    ) -> &mut Self {
        let (start, end) = (start.into(), end.into());
        self.bytes += 9 + start.len() + end.len();
        self.ops.push(Op::DeleteRange { start, end });
        self
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Approximate encoded size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes + 12
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub(crate) fn encode(&self, version: Version) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(self.ops.len() as u32).to_le_bytes());
        let field = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        for op in &self.ops {
            let (tag, a, b): (u8, &[u8], &[u8]) = match op {
                Op::Put { key, value } => (TAG_PUT, key, value),
                Op::Delete { key } => (TAG_DELETE, key, &[]),
                Op::DeleteRange { start, end } => (TAG_DELETE_RANGE, start, end),
            };
            out.push(tag);
            field(&mut out, a);
            field(&mut out, b);
        }
        out
    }

    /// Decodes a WAL payload; `path` and `lsn` only label errors.
    pub fn decode(bytes: &[u8], path: &Path, lsn: u64) -> Result<(Version, WriteBatch)> {
        let mut r = Reader { bytes, pos: 0 };
        let bad =
            |why: &str| Error::corrupt("WAL batch", path, lsn, format!("record LSN {lsn}: {why}"));
        let version = r.u64().ok_or_else(|| bad("truncated header"))?;
        let count = r.u32().ok_or_else(|| bad("truncated header"))?;
        let mut batch = WriteBatch::new();
        for _ in 0..count {
            let tag = r.u8().ok_or_else(|| bad("truncated op"))?;
            let a = r.field().ok_or_else(|| bad("truncated op"))?.to_vec();
            let b = r.field().ok_or_else(|| bad("truncated op"))?.to_vec();
            match tag {
                TAG_PUT => batch.put(a, b),
                TAG_DELETE => batch.delete(a),
                TAG_DELETE_RANGE => batch.delete_range(a, b),
                other => return Err(bad(&format!("unknown op tag {other}"))),
            };
        }
        if r.pos != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok((version, batch))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips() {
        let mut b = WriteBatch::new();
        b.put("k1", "v1")
            .delete("k2")
            .delete_range("a", "z")
            .put("", "");
        let bytes = b.encode(42);
        let (v, back) = WriteBatch::decode(&bytes, Path::new("wal"), 1).expect("decodes");
        assert_eq!(v, 42);
        assert_eq!(back.ops, b.ops);
    }

    #[test]
    fn truncated_or_garbage_payloads_are_errors_not_panics() {
        let mut b = WriteBatch::new();
        b.put("key", "value").delete_range("a", "b");
        let bytes = b.encode(7);
        for cut in 0..bytes.len() {
            assert!(WriteBatch::decode(&bytes[..cut], Path::new("wal"), 1).is_err());
        }
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(WriteBatch::decode(&huge, Path::new("wal"), 1).is_err());
    }
}
