//! Byte layout of a log segment (see docs/format.md, "Log segment").
//!
//! ```text
//! page 0        : SegmentHeader (32 bytes) + zero padding to 4096
//! page-aligned  : Chunk = ChunkHeader (32 bytes) + records + zero padding to a page
//! record        : len u32 | crc32c(len_le ++ payload) u32 | payload
//! ```
//! A chunk is what one group write puts on disk. It always starts on a fresh
//! page, so a write never rewrites bytes an earlier (possibly synced) write put
//! there. Each chunk header carries `durable_lsn`: the highest LSN that was
//! durable when the chunk was written; recovery uses it to tell a torn tail
//! (cut it) from corruption of acknowledged data (an error).

use crate::disk::PAGE_BYTES;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const SEGMENT_MAGIC: [u8; 8] = *b"FDBLOGS1";
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
pub const CHUNK_MAGIC: u32 = u32::from_le_bytes(*b"CHNK");
pub const CHUNK_HEADER_BYTES: usize = 32;
pub const RECORD_HEADER_BYTES: usize = 8;
/// Offset of the first chunk in a segment.
pub const FIRST_CHUNK_OFFSET: u64 = PAGE_BYTES as u64;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct SegmentHeader {
    pub magic: [u8; 8],
    pub format_version: U32,
    /// crc32c of the 32 header bytes with this field zeroed.
    pub crc: U32,
    pub sequence: U64,
    pub first_lsn: U64,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct ChunkHeader {
    pub magic: U32,
    /// crc32c of the 32 header bytes with this field zeroed.
    pub crc: U32,
    pub body_len: U32,
    pub record_count: U32,
    pub first_lsn: U64,
    pub durable_lsn: U64,
}

const _: () = assert!(size_of::<SegmentHeader>() == 32);
const _: () = assert!(size_of::<ChunkHeader>() == CHUNK_HEADER_BYTES);

impl SegmentHeader {
    pub fn new(sequence: u64, first_lsn: u64) -> Self {
        let mut h = SegmentHeader {
            magic: SEGMENT_MAGIC,
            format_version: SEGMENT_FORMAT_VERSION.into(),
            crc: 0.into(),
            sequence: sequence.into(),
            first_lsn: first_lsn.into(),
        };
        h.crc = crc32c::crc32c(h.as_bytes()).into();
        h
    }

    /// Decodes and verifies a segment header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let Ok((h, _)) = SegmentHeader::read_from_prefix(bytes) else {
            return Err(format!(
                "segment shorter than its {}-byte header",
                size_of::<Self>()
            ));
        };
        if h.magic != SEGMENT_MAGIC {
            return Err(format!("bad segment magic {:02x?}", h.magic));
        }
        let mut zeroed = h;
        zeroed.crc = 0.into();
        let expected = crc32c::crc32c(zeroed.as_bytes());
        if expected != h.crc.get() {
            return Err(format!(
                "segment header checksum mismatch: stored {:#010x}, computed {expected:#010x}",
                h.crc.get()
            ));
        }
        if h.format_version.get() != SEGMENT_FORMAT_VERSION {
            return Err(format!(
                "unsupported segment format version {}",
                h.format_version.get()
            ));
        }
        Ok(h)
    }
}

pub fn record_crc(payload: &[u8]) -> u32 {
    let len = (payload.len() as u32).to_le_bytes();
    crc32c::crc32c_append(crc32c::crc32c(&len), payload)
}

/// Appends one framed record to `out`.
pub fn frame_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("record size is bounded by the log limit");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Writes a chunk header for `body` into `dst[..32]`.
pub fn encode_chunk_header(
    dst: &mut [u8],
    body_len: usize,
    records: u32,
    first_lsn: u64,
    durable_lsn: u64,
) {
    let mut h = ChunkHeader {
        magic: CHUNK_MAGIC.into(),
        crc: 0.into(),
        body_len: u32::try_from(body_len)
            .expect("chunk size is bounded")
            .into(),
        record_count: records.into(),
        first_lsn: first_lsn.into(),
        durable_lsn: durable_lsn.into(),
    };
    h.crc = crc32c::crc32c(h.as_bytes()).into();
    dst[..CHUNK_HEADER_BYTES].copy_from_slice(h.as_bytes());
}

/// A chunk that passed every check.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub offset: u64,
    pub header: ChunkHeader,
    /// (offset in segment, length) of each record payload.
    pub records: Vec<(u64, u32)>,
}

impl Chunk {
    /// Bytes the chunk occupies on disk, padding included.
    pub fn span(&self) -> u64 {
        crate::disk::align_up(CHUNK_HEADER_BYTES + self.header.body_len.get() as usize) as u64
    }
}

/// Why a chunk at some offset could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProblem {
    /// Zero bytes where a header would be: the clean end of written data.
    End,
    /// Anything else, with the offset of the first bad byte range and why.
    Bad { offset: u64, reason: String },
}

/// Decodes and verifies the chunk at `offset` of a segment's bytes.
pub fn decode_chunk(bytes: &[u8], offset: u64) -> Result<Chunk, ChunkProblem> {
    let at = offset as usize;
    let bad = |offset: u64, reason: String| Err(ChunkProblem::Bad { offset, reason });
    if at + CHUNK_HEADER_BYTES > bytes.len() {
        return Err(ChunkProblem::End);
    }
    let header_bytes = &bytes[at..at + CHUNK_HEADER_BYTES];
    if header_bytes.iter().all(|&b| b == 0) {
        return Err(ChunkProblem::End);
    }
    let (header, _) = ChunkHeader::read_from_prefix(header_bytes).expect("32 bytes present");
    if header.magic.get() != CHUNK_MAGIC {
        return bad(
            offset,
            format!("bad chunk magic {:#010x}", header.magic.get()),
        );
    }
    let mut zeroed = header;
    zeroed.crc = 0.into();
    let expected = crc32c::crc32c(zeroed.as_bytes());
    if expected != header.crc.get() {
        return bad(
            offset,
            format!(
                "chunk header checksum mismatch: stored {:#010x}, computed {expected:#010x}",
                header.crc.get()
            ),
        );
    }
    let body_start = at + CHUNK_HEADER_BYTES;
    let body_len = header.body_len.get() as usize;
    if body_start + body_len > bytes.len() {
        return bad(
            offset,
            format!("chunk body of {body_len} bytes runs past the end of the file"),
        );
    }
    let body = &bytes[body_start..body_start + body_len];
    let mut records = Vec::with_capacity(header.record_count.get() as usize);
    let mut pos = 0usize;
    while pos < body.len() {
        let record_offset = (body_start + pos) as u64;
        if pos + RECORD_HEADER_BYTES > body.len() {
            return bad(record_offset, "truncated record header".into());
        }
        let len = u32::from_le_bytes(body[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let stored = u32::from_le_bytes(body[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let start = pos + RECORD_HEADER_BYTES;
        if start + len > body.len() {
            return bad(
                record_offset,
                format!("record length {len} runs past its chunk"),
            );
        }
        let computed = record_crc(&body[start..start + len]);
        if computed != stored {
            return bad(
                record_offset,
                format!(
                    "record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                ),
            );
        }
        records.push(((body_start + start) as u64, len as u32));
        pos = start + len;
    }
    if records.len() != header.record_count.get() as usize {
        return bad(
            offset,
            format!(
                "chunk holds {} records, header says {}",
                records.len(),
                header.record_count.get()
            ),
        );
    }
    Ok(Chunk {
        offset,
        header,
        records,
    })
}

/// True if some valid chunk at a page boundary at or after `from` proves that
/// LSN `lsn` had been made durable (its `durable_lsn` is at least `lsn`).
pub fn durability_proven_after(bytes: &[u8], from: u64, lsn: u64) -> bool {
    let mut offset = from.next_multiple_of(PAGE_BYTES as u64);
    while (offset as usize) + CHUNK_HEADER_BYTES <= bytes.len() {
        if let Ok(chunk) = decode_chunk(bytes, offset)
            && chunk.header.durable_lsn.get() >= lsn
        {
            return true;
        }
        offset += PAGE_BYTES as u64;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_chunk(records: &[&[u8]], first_lsn: u64) -> Vec<u8> {
        let mut body = Vec::new();
        for r in records {
            frame_record(&mut body, r);
        }
        let mut page = vec![0u8; crate::disk::align_up(CHUNK_HEADER_BYTES + body.len())];
        encode_chunk_header(&mut page, body.len(), records.len() as u32, first_lsn, 0);
        page[CHUNK_HEADER_BYTES..CHUNK_HEADER_BYTES + body.len()].copy_from_slice(&body);
        page
    }

    #[test]
    fn chunk_round_trips() {
        let bytes = one_chunk(&[b"alpha", b"", b"gamma"], 7);
        let chunk = decode_chunk(&bytes, 0).expect("valid chunk");
        assert_eq!(chunk.header.first_lsn.get(), 7);
        let payloads: Vec<&[u8]> = chunk
            .records
            .iter()
            .map(|&(o, l)| &bytes[o as usize..o as usize + l as usize])
            .collect();
        assert_eq!(payloads, vec![&b"alpha"[..], b"", b"gamma"]);
        assert_eq!(chunk.span(), 4096);
    }

    #[test]
    fn every_flipped_bit_in_a_chunk_is_detected() {
        let clean = one_chunk(&[b"hello world", b"second"], 1);
        let used = CHUNK_HEADER_BYTES + 2 * RECORD_HEADER_BYTES + 11 + 6;
        for byte in 0..used {
            for bit in 0..8 {
                let mut bytes = clean.clone();
                bytes[byte] ^= 1 << bit;
                assert!(
                    decode_chunk(&bytes, 0).is_err(),
                    "flip at byte {byte} bit {bit} undetected"
                );
            }
        }
    }

    #[test]
    fn zero_page_is_the_end() {
        assert_eq!(
            decode_chunk(&[0u8; 4096], 0).unwrap_err(),
            ChunkProblem::End
        );
    }

    #[test]
    fn segment_header_checks() {
        let h = SegmentHeader::new(3, 99);
        let mut bytes = h.as_bytes().to_vec();
        assert_eq!(
            SegmentHeader::decode(&bytes)
                .expect("valid")
                .first_lsn
                .get(),
            99
        );
        bytes[20] ^= 1;
        assert!(
            SegmentHeader::decode(&bytes)
                .unwrap_err()
                .contains("checksum")
        );
    }
}
