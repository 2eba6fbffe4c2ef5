//! rkyv block types and the checksummed block frame.

use crate::error::{Error, Result};
use rkyv::util::AlignedVec;
use rkyv::{Archive, Serialize};
use std::path::Path;

/// Bytes after each block's archive: crc32c u32 | kind u32.
pub const TRAILER_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BlockKind {
    Data = 1,
    Filter = 2,
    Index = 3,
    Properties = 4,
}

impl BlockKind {
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Data => "data block",
            BlockKind::Filter => "filter block",
            BlockKind::Index => "index block",
            BlockKind::Properties => "properties block",
        }
    }
}

/// One entry of a data block, in internal-key order.
#[derive(Archive, Serialize, Debug, Clone)]
pub struct BlockEntry {
    pub key: Vec<u8>,
    pub version: u64,
    /// [`crate::types::Kind`] as u8.
    pub kind: u8,
    pub value: Vec<u8>,
}

#[derive(Archive, Serialize, Debug, Clone, Default)]
pub struct DataBlock {
    pub entries: Vec<BlockEntry>,
}

/// Index entry: the last internal key of a data block and where the block is.
#[derive(Archive, Serialize, Debug, Clone)]
pub struct IndexEntry {
    pub last_key: Vec<u8>,
    pub last_version: u64,
    pub offset: u64,
    /// Archive plus trailer.
    pub len: u32,
}

#[derive(Archive, Serialize, Debug, Clone, Default)]
pub struct IndexBlock {
    pub entries: Vec<IndexEntry>,
}

#[derive(Archive, Serialize, Debug, Clone, Default)]
pub struct FilterBlock {
    pub hash_count: u32,
    pub bits: Vec<u8>,
}

/// What a table holds, for the manifest, compaction and `inspect`.
#[derive(Archive, Serialize, rkyv::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub entries: u64,
    pub data_blocks: u64,
    pub deletes: u64,
    pub smallest_key: Vec<u8>,
    pub smallest_version: u64,
    pub largest_key: Vec<u8>,
    pub largest_version: u64,
    pub min_version: u64,
    pub max_version: u64,
    pub raw_key_bytes: u64,
    pub raw_value_bytes: u64,
}

/// Serializes `value` and frames it with its trailer.
pub fn encode_block<T>(value: &T, kind: BlockKind) -> Vec<u8>
where
    T: for<'a> Serialize<
        rkyv::api::high::HighSerializer<
            AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rkyv::rancor::Error,
        >,
    >,
{
    let archive =
        rkyv::to_bytes::<rkyv::rancor::Error>(value).expect("serializing to memory cannot fail");
    let mut out = Vec::with_capacity(archive.len() + TRAILER_BYTES);
    out.extend_from_slice(&archive);
    out.extend_from_slice(&crc32c::crc32c(&archive).to_le_bytes());
    out.extend_from_slice(&(kind as u32).to_le_bytes());
    out
}

/// A block whose checksum and archive structure have been verified.
///
/// # Invariants
/// `bytes` holds an archive of the type its `kind` names that passed rkyv's
/// validation (bytecheck) when the block was built; it is never mutated.
#[derive(Debug)]
pub struct Block {
    bytes: AlignedVec<16>,
    kind: BlockKind,
}

/// Verifies a framed block read from `path` at `offset` and copies its archive
/// into aligned memory.
pub fn decode_block(framed: &[u8], kind: BlockKind, path: &Path, offset: u64) -> Result<Block> {
    if framed.len() < TRAILER_BYTES {
        return Err(Error::corrupt(
            kind.name(),
            path,
            offset,
            format!("{} bytes is shorter than a block trailer", framed.len()),
        ));
    }
    let (archive, trailer) = framed.split_at(framed.len() - TRAILER_BYTES);
    let stored = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let got = crc32c::crc32c(archive);
    if stored != got {
        return Err(Error::ChecksumMismatch {
            what: kind.name(),
            path: path.to_path_buf(),
            offset,
            expected: stored,
            got,
        });
    }
    let stored_kind = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    if stored_kind != kind as u32 {
        return Err(Error::corrupt(
            kind.name(),
            path,
            offset,
            format!("block kind {stored_kind}, expected {}", kind as u32),
        ));
    }
    let mut bytes = AlignedVec::<16>::with_capacity(archive.len());
    bytes.extend_from_slice(archive);
    let valid = match kind {
        BlockKind::Data => {
            rkyv::access::<ArchivedDataBlock, rkyv::rancor::Error>(&bytes).map(|_| ())
        }
        BlockKind::Index => {
            rkyv::access::<ArchivedIndexBlock, rkyv::rancor::Error>(&bytes).map(|_| ())
        }
        BlockKind::Filter => {
            rkyv::access::<ArchivedFilterBlock, rkyv::rancor::Error>(&bytes).map(|_| ())
        }
        BlockKind::Properties => {
            rkyv::access::<ArchivedProperties, rkyv::rancor::Error>(&bytes).map(|_| ())
        }
    };
    if let Err(e) = valid {
        return Err(Error::corrupt(
            kind.name(),
            path,
            offset,
            format!("invalid archive: {e}"),
        ));
    }
    Ok(Block { bytes, kind })
}

impl Block {
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn data(&self) -> &ArchivedDataBlock {
        assert_eq!(self.kind, BlockKind::Data);
        // SAFETY: decode_block validated this archive as a DataBlock (kind checked above) and the bytes are immutable.
        unsafe { rkyv::access_unchecked::<ArchivedDataBlock>(&self.bytes) }
    }

    pub fn index(&self) -> &ArchivedIndexBlock {
        assert_eq!(self.kind, BlockKind::Index);
        // SAFETY: decode_block validated this archive as an IndexBlock and the bytes are immutable.
        unsafe { rkyv::access_unchecked::<ArchivedIndexBlock>(&self.bytes) }
    }

    pub fn filter(&self) -> &ArchivedFilterBlock {
        assert_eq!(self.kind, BlockKind::Filter);
        // SAFETY: decode_block validated this archive as a FilterBlock and the bytes are immutable.
        unsafe { rkyv::access_unchecked::<ArchivedFilterBlock>(&self.bytes) }
    }

    pub fn properties(&self) -> Properties {
        assert_eq!(self.kind, BlockKind::Properties);
        // SAFETY: decode_block validated this archive as Properties and the bytes are immutable.
        let archived = unsafe { rkyv::access_unchecked::<ArchivedProperties>(&self.bytes) };
        rkyv::deserialize::<Properties, rkyv::rancor::Error>(archived)
            .expect("validated archive deserializes")
    }
}

impl ArchivedDataBlock {
    /// Index of the first entry at or after internal key `(key, version)`.
    pub fn seek(&self, key: &[u8], version: u64) -> usize {
        self.entries.partition_point(|e| {
            crate::types::cmp_internal(&e.key, e.version.to_native(), key, version).is_lt()
        })
    }
}

impl ArchivedIndexBlock {
    /// Index of the first block whose last internal key is at or after `(key, version)`.
    pub fn seek(&self, key: &[u8], version: u64) -> usize {
        self.entries.partition_point(|e| {
            crate::types::cmp_internal(&e.last_key, e.last_version.to_native(), key, version)
                .is_lt()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataBlock {
        DataBlock {
            entries: vec![
                BlockEntry {
                    key: b"a".to_vec(),
                    version: 3,
                    kind: 1,
                    value: b"a3".to_vec(),
                },
                BlockEntry {
                    key: b"a".to_vec(),
                    version: 1,
                    kind: 1,
                    value: b"a1".to_vec(),
                },
                BlockEntry {
                    key: b"c".to_vec(),
                    version: 2,
                    kind: 2,
                    value: vec![],
                },
            ],
        }
    }

    #[test]
    fn data_block_round_trips_and_seeks() {
        let framed = encode_block(&sample(), BlockKind::Data);
        let block = decode_block(&framed, BlockKind::Data, Path::new("t.sst"), 0).expect("valid");
        let data = block.data();
        assert_eq!(data.entries.len(), 3);
        assert_eq!(data.seek(b"a", 2), 1);
        assert_eq!(data.seek(b"a", 99), 0);
        assert_eq!(data.seek(b"b", 99), 2);
        assert_eq!(data.seek(b"d", 99), 3);
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let framed = encode_block(&sample(), BlockKind::Data);
        for byte in 0..framed.len() {
            let mut bad = framed.clone();
            bad[byte] ^= 0x10;
            assert!(
                decode_block(&bad, BlockKind::Data, Path::new("t.sst"), 0).is_err(),
                "byte {byte}"
            );
        }
    }

    #[test]
    fn wrong_kind_is_caught() {
        let framed = encode_block(&sample(), BlockKind::Data);
        assert!(decode_block(&framed, BlockKind::Index, Path::new("t.sst"), 0).is_err());
    }
}
