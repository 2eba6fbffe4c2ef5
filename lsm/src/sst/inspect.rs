//! Offline inspection of one SSTable held in memory (`ferrisdb inspect sst`,
//! `ferrisdb inspect verify-dir`).
//!
//! [`super::Table::open`] trusts a data block until a read needs it; this
//! checks the whole image up front: the footer, the layout (data blocks
//! contiguous from offset 0, then filter, index and properties, then a zero
//! pad up to the footer), every block's checksum and archive, the order of
//! entries across blocks, the filter against every key, and the properties
//! against what the blocks hold. Every offset is checked against the image
//! length before it is sliced, so garbage gives an error naming the file and
//! offset, never a panic.

use crate::error::{Error, Result};
use crate::format::blocks::Properties;
use crate::format::footer::{FOOTER_BYTES, Footer};
use crate::format::{Block, BlockKind, bloom, decode_block};
use crate::types::{Kind, cmp_internal};
use std::path::Path;

/// Where a block lies: archive plus trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHandle {
    pub offset: u64,
    pub len: u32,
}

impl BlockHandle {
    /// First byte after the block (saturating: handles are untrusted).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

#[derive(Debug, Clone)]
pub struct FooterReport {
    /// Offset of the footer: the last [`FOOTER_BYTES`] of the file.
    pub offset: u64,
    pub format_version: u32,
    pub filter: BlockHandle,
    pub index: BlockHandle,
    pub props: BlockHandle,
    pub entries: u64,
}

/// One index entry: the last internal key of a data block and the block.
#[derive(Debug, Clone)]
pub struct IndexReport {
    pub last_key: Vec<u8>,
    pub last_version: u64,
    pub block: BlockHandle,
}

#[derive(Debug, Clone)]
pub struct FilterReport {
    pub bits: u64,
    pub hash_count: u32,
}

/// Everything `parse_table` verified about a table.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub file_bytes: u64,
    pub footer: FooterReport,
    pub props: Properties,
    pub index: Vec<IndexReport>,
    pub filter: FilterReport,
    /// Zero bytes between the properties block and the footer.
    pub pad_bytes: u64,
}

/// One entry of a data block, borrowed from the decoded block.
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    /// Index of the data block that holds it.
    pub block: usize,
    pub key: &'a [u8],
    pub version: u64,
    pub kind: Kind,
    pub value: &'a [u8],
}

/// What the data blocks hold, recomputed to check the properties.
struct Tally {
    entries: u64,
    deletes: u64,
    min_version: u64,
    max_version: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    smallest: Option<(Vec<u8>, u64)>,
    largest: Option<(Vec<u8>, u64)>,
}

/// Decodes and verifies every byte of the table image `bytes` read from `path`.
pub fn parse_table(bytes: &[u8], path: &Path) -> Result<TableReport> {
    let file_bytes = bytes.len() as u64;
    if bytes.len() < FOOTER_BYTES {
        let why = format!(
            "{file_bytes} bytes is too short for a table (the footer takes {FOOTER_BYTES})"
        );
        return Err(Error::corrupt("table", path, 0, why));
    }
    let footer_at = bytes.len() - FOOTER_BYTES;
    let footer = Footer::decode(&bytes[footer_at..])
        .map_err(|e| Error::corrupt("table footer", path, footer_at as u64, e))?;
    let footer = FooterReport {
        offset: footer_at as u64,
        format_version: footer.format_version.get(),
        filter: BlockHandle {
            offset: footer.filter_offset.get(),
            len: footer.filter_len.get(),
        },
        index: BlockHandle {
            offset: footer.index_offset.get(),
            len: footer.index_len.get(),
        },
        props: BlockHandle {
            offset: footer.props_offset.get(),
            len: footer.props_len.get(),
        },
        entries: footer.entries.get(),
    };
    check_layout(&footer, path)?;
    let pad_bytes = check_pad(bytes, footer.props.end(), footer.offset, path)?;

    let filter_block = block_at(bytes, path, footer.filter, BlockKind::Filter)?;
    let index_block = block_at(bytes, path, footer.index, BlockKind::Index)?;
    let props = block_at(bytes, path, footer.props, BlockKind::Properties)?.properties();
    if props.entries != footer.entries {
        let why = format!(
            "properties say {} entries, the footer {}",
            props.entries, footer.entries
        );
        return Err(Error::corrupt(
            "properties block",
            path,
            footer.props.offset,
            why,
        ));
    }
    let index = index_entries(&index_block, &footer, &props, path)?;
    let filter = filter_report(&filter_block, footer.filter, path)?;

    let mut tally = Tally {
        entries: 0,
        deletes: 0,
        min_version: u64::MAX,
        max_version: 0,
        raw_key_bytes: 0,
        raw_value_bytes: 0,
        smallest: None,
        largest: None,
    };
    let archived_filter = filter_block.filter();
    walk_data(bytes, path, &index, |e| {
        let first_of_key = tally
            .largest
            .as_ref()
            .is_none_or(|(k, _)| k.as_slice() != e.key);
        if first_of_key && !archived_filter.may_contain(bloom::key_hash(e.key)) {
            let why = format!(
                "key \"{}\" is missing from the filter",
                e.key.escape_ascii()
            );
            return Err(Error::corrupt(
                "filter block",
                path,
                footer.filter.offset,
                why,
            ));
        }
        tally.entries += 1;
        tally.deletes += u64::from(e.kind == Kind::Delete);
        tally.min_version = tally.min_version.min(e.version);
        tally.max_version = tally.max_version.max(e.version);
        tally.raw_key_bytes += e.key.len() as u64;
        tally.raw_value_bytes += e.value.len() as u64;
        if tally.smallest.is_none() {
            tally.smallest = Some((e.key.to_vec(), e.version));
        }
        tally.largest = Some((e.key.to_vec(), e.version));
        Ok(())
    })?;
    check_props(&props, &tally, footer.props.offset, path)?;

    let report = TableReport {
        file_bytes,
        footer,
        props,
        index,
        filter,
        pad_bytes,
    };
    assert!(report.footer.props.end() + report.pad_bytes == report.footer.offset);
    Ok(report)
}

/// Calls `visit` with every entry of a table that [`parse_table`] accepted,
/// in order; blocks are verified again as they are decoded.
pub fn visit_entries(
    bytes: &[u8],
    path: &Path,
    report: &TableReport,
    mut visit: impl FnMut(EntryView<'_>),
) -> Result<()> {
    walk_data(bytes, path, &report.index, |e| {
        visit(e);
        Ok(())
    })
}

/// Blocks must tile the file: filter, index and properties follow each other,
/// and all of them lie before the footer.
fn check_layout(footer: &FooterReport, path: &Path) -> Result<()> {
    let bad = |why: String| Err(Error::corrupt("table footer", path, footer.offset, why));
    let handles = [
        ("filter", footer.filter),
        ("index", footer.index),
        ("properties", footer.props),
    ];
    for (name, h) in handles {
        if h.offset
            .checked_add(u64::from(h.len))
            .is_none_or(|end| end > footer.offset)
        {
            return bad(format!(
                "{name} block at {} ({} bytes) runs past the footer at {}",
                h.offset, h.len, footer.offset
            ));
        }
    }
    if footer.filter.end() != footer.index.offset || footer.index.end() != footer.props.offset {
        return bad(format!(
            "filter, index and properties blocks are not contiguous (filter {}+{}, index {}+{}, properties {}+{})",
            footer.filter.offset,
            footer.filter.len,
            footer.index.offset,
            footer.index.len,
            footer.props.offset,
            footer.props.len
        ));
    }
    Ok(())
}

/// The bytes between the properties block and the footer must be zero.
fn check_pad(bytes: &[u8], from: u64, to: u64, path: &Path) -> Result<u64> {
    assert!(
        from <= to && to <= bytes.len() as u64,
        "layout checked first"
    );
    let pad = &bytes[from as usize..to as usize];
    if let Some(i) = pad.iter().position(|&b| b != 0) {
        let at = from + i as u64;
        let why = format!(
            "non-zero byte {:#04x} in the padding before the footer",
            pad[i]
        );
        return Err(Error::corrupt("table", path, at, why));
    }
    Ok(to - from)
}

/// Slices and verifies the block at `h`.
fn block_at(bytes: &[u8], path: &Path, h: BlockHandle, kind: BlockKind) -> Result<Block> {
    let framed = usize::try_from(h.offset)
        .ok()
        .and_then(|start| bytes.get(start..start.checked_add(h.len as usize)?));
    let Some(framed) = framed else {
        let why = format!(
            "block of {} bytes runs past the end of the {}-byte file",
            h.len,
            bytes.len()
        );
        return Err(Error::corrupt(kind.name(), path, h.offset, why));
    };
    decode_block(framed, kind, path, h.offset)
}

/// Index entries, checked to be in order and to tile `[0, filter offset)`.
fn index_entries(
    index: &Block,
    footer: &FooterReport,
    props: &Properties,
    path: &Path,
) -> Result<Vec<IndexReport>> {
    let at = footer.index.offset;
    let bad = |why: String| Err(Error::corrupt("index block", path, at, why));
    let archived = index.index();
    if archived.entries.len() as u64 != props.data_blocks {
        return bad(format!(
            "{} index entries, properties say {} data blocks",
            archived.entries.len(),
            props.data_blocks
        ));
    }
    let mut out: Vec<IndexReport> = Vec::with_capacity(archived.entries.len());
    let mut expected_offset = 0u64;
    for (i, e) in archived.entries.iter().enumerate() {
        let entry = IndexReport {
            last_key: e.last_key.to_vec(),
            last_version: e.last_version.to_native(),
            block: BlockHandle {
                offset: e.offset.to_native(),
                len: e.len.to_native(),
            },
        };
        if entry.block.offset != expected_offset {
            return bad(format!(
                "entry {i} puts its block at {}, expected {expected_offset} (blocks are contiguous from 0)",
                entry.block.offset
            ));
        }
        if let Some(prev) = out.last() {
            let order = cmp_internal(
                &prev.last_key,
                prev.last_version,
                &entry.last_key,
                entry.last_version,
            );
            if !order.is_lt() {
                return bad(format!("entry {i} is not after entry {}", i - 1));
            }
        }
        expected_offset = entry.block.end();
        out.push(entry);
    }
    if expected_offset != footer.filter.offset {
        return bad(format!(
            "data blocks end at {expected_offset}, the filter block starts at {}",
            footer.filter.offset
        ));
    }
    Ok(out)
}

fn filter_report(filter: &Block, h: BlockHandle, path: &Path) -> Result<FilterReport> {
    let archived = filter.filter();
    let report = FilterReport {
        bits: archived.bits.len() as u64 * 8,
        hash_count: archived.hash_count.to_native(),
    };
    if report.bits == 0 || report.hash_count == 0 {
        let why = format!(
            "empty filter: {} bits, {} hash functions",
            report.bits, report.hash_count
        );
        return Err(Error::corrupt("filter block", path, h.offset, why));
    }
    Ok(report)
}

/// Decodes every data block in index order and checks entry kinds, strict
/// internal-key order (across blocks too) and each block's last key against
/// its index entry; errors name the block's offset.
fn walk_data(
    bytes: &[u8],
    path: &Path,
    index: &[IndexReport],
    mut visit: impl FnMut(EntryView<'_>) -> Result<()>,
) -> Result<()> {
    let mut prev: Option<(Vec<u8>, u64)> = None;
    for (b, ie) in index.iter().enumerate() {
        let at = ie.block.offset;
        let bad = |why: String| Err(Error::corrupt("data block", path, at, why));
        let block = block_at(bytes, path, ie.block, BlockKind::Data)?;
        let entries = &block.data().entries;
        if entries.is_empty() {
            return bad(format!("data block {b} is empty"));
        }
        for (i, e) in entries.iter().enumerate() {
            let (key, version) = (e.key.as_slice(), e.version.to_native());
            let Some(kind) = Kind::from_u8(e.kind) else {
                return bad(format!("entry {i} has unknown kind {}", e.kind));
            };
            if let Some((pk, pv)) = &prev
                && !cmp_internal(pk, *pv, key, version).is_lt()
            {
                return bad(format!(
                    "entry {i} (\"{}\" @{version}) is not after the previous entry",
                    key.escape_ascii()
                ));
            }
            visit(EntryView {
                block: b,
                key,
                version,
                kind,
                value: e.value.as_slice(),
            })?;
            let slot = prev.get_or_insert_with(Default::default);
            slot.0.clear();
            slot.0.extend_from_slice(key);
            slot.1 = version;
        }
        let last = prev.as_ref().expect("the block had entries");
        if last.0 != ie.last_key || last.1 != ie.last_version {
            return bad(format!(
                "last entry \"{}\" @{} differs from its index entry \"{}\" @{}",
                last.0.escape_ascii(),
                last.1,
                ie.last_key.escape_ascii(),
                ie.last_version
            ));
        }
    }
    Ok(())
}

/// The properties block must describe exactly what the data blocks hold.
fn check_props(props: &Properties, tally: &Tally, at: u64, path: &Path) -> Result<()> {
    let none = (Vec::new(), 0);
    let (smallest, largest) = (
        tally.smallest.as_ref().unwrap_or(&none),
        tally.largest.as_ref().unwrap_or(&none),
    );
    let min_version = if tally.entries == 0 {
        0
    } else {
        tally.min_version
    };
    let counters = [
        ("entries", props.entries, tally.entries),
        ("deletes", props.deletes, tally.deletes),
        ("min_version", props.min_version, min_version),
        ("max_version", props.max_version, tally.max_version),
        ("raw_key_bytes", props.raw_key_bytes, tally.raw_key_bytes),
        (
            "raw_value_bytes",
            props.raw_value_bytes,
            tally.raw_value_bytes,
        ),
        ("smallest_version", props.smallest_version, smallest.1),
        ("largest_version", props.largest_version, largest.1),
    ];
    for (name, stored, counted) in counters {
        if stored != counted {
            let why = format!("properties say {name} {stored}, the data blocks hold {counted}");
            return Err(Error::corrupt("properties block", path, at, why));
        }
    }
    let keys = [
        ("smallest_key", &props.smallest_key, &smallest.0),
        ("largest_key", &props.largest_key, &largest.0),
    ];
    for (name, stored, counted) in keys {
        if stored != counted {
            let why = format!(
                "properties say {name} \"{}\", the data blocks hold \"{}\"",
                stored.escape_ascii(),
                counted.escape_ascii()
            );
            return Err(Error::corrupt("properties block", path, at, why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blocks::{BlockEntry, DataBlock, IndexBlock, IndexEntry};
    use crate::format::encode_block;
    use crate::format::footer::{SST_FORMAT_VERSION, SST_MAGIC};
    use zerocopy::{FromBytes, IntoBytes};

    const PAGE: usize = 4096;

    /// Lays out a table the way `TableBuilder` does, without a disk.
    fn image(keys: u32, per_block: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut index = IndexBlock::default();
        let mut props = Properties {
            min_version: u64::MAX,
            ..Default::default()
        };
        let mut hashes = Vec::new();
        let mut block = DataBlock::default();
        for i in 0..keys {
            let key = format!("key{i:04}").into_bytes();
            let (version, kind) = (u64::from(i) + 1, if i % 5 == 0 { 2 } else { 1 });
            let value = if kind == 2 {
                vec![]
            } else {
                vec![b'v'; i as usize % 7]
            };
            hashes.push(bloom::key_hash(&key));
            if i == 0 {
                props.smallest_key = key.clone();
                props.smallest_version = version;
            }
            props.largest_key = key.clone();
            props.largest_version = version;
            props.entries += 1;
            props.deletes += u64::from(kind == 2);
            props.min_version = props.min_version.min(version);
            props.max_version = props.max_version.max(version);
            props.raw_key_bytes += key.len() as u64;
            props.raw_value_bytes += value.len() as u64;
            block.entries.push(BlockEntry {
                key,
                version,
                kind,
                value,
            });
            if block.entries.len() as u32 == per_block || i + 1 == keys {
                let framed = encode_block(&block, BlockKind::Data);
                let last = block.entries.last().expect("non-empty");
                index.entries.push(IndexEntry {
                    last_key: last.key.clone(),
                    last_version: last.version,
                    offset: out.len() as u64,
                    len: framed.len() as u32,
                });
                out.extend_from_slice(&framed);
                block.entries.clear();
                props.data_blocks += 1;
            }
        }
        let mut handles = Vec::new();
        for framed in [
            encode_block(&bloom::build(&hashes, 10), BlockKind::Filter),
            encode_block(&index, BlockKind::Index),
            encode_block(&props, BlockKind::Properties),
        ] {
            handles.push((out.len() as u64, framed.len() as u32));
            out.extend_from_slice(&framed);
        }
        let end = (out.len() + FOOTER_BYTES).next_multiple_of(PAGE);
        out.resize(end - FOOTER_BYTES, 0);
        let footer = Footer {
            magic: SST_MAGIC,
            format_version: SST_FORMAT_VERSION.into(),
            crc: 0.into(),
            filter_offset: handles[0].0.into(),
            index_offset: handles[1].0.into(),
            props_offset: handles[2].0.into(),
            filter_len: handles[0].1.into(),
            index_len: handles[1].1.into(),
            props_len: handles[2].1.into(),
            reserved: 0.into(),
            entries: props.entries.into(),
        }
        .seal();
        out.extend_from_slice(footer.as_bytes());
        out
    }

    #[test]
    fn a_well_formed_table_parses_and_visits_every_entry() {
        let bytes = image(50, 8);
        let path = Path::new("t.sst");
        let report = parse_table(&bytes, path).expect("valid table");
        assert_eq!(report.props.entries, 50);
        assert_eq!(report.props.deletes, 10);
        assert_eq!(report.index.len(), 7);
        assert_eq!(report.file_bytes % PAGE as u64, 0);
        let mut seen = Vec::new();
        visit_entries(&bytes, path, &report, |e| {
            seen.push((e.key.to_vec(), e.kind))
        })
        .expect("visits");
        assert_eq!(seen.len(), 50);
        assert_eq!(seen[5], (b"key0005".to_vec(), Kind::Delete));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = image(20, 4);
        for cut in 0..bytes.len() {
            assert!(
                parse_table(&bytes[..cut], Path::new("t.sst")).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_in_a_data_block_names_that_block() {
        let bytes = image(40, 8);
        let path = Path::new("t.sst");
        let report = parse_table(&bytes, path).expect("valid table");
        let blocks: Vec<BlockHandle> = report.index.iter().map(|e| e.block).collect();
        for h in blocks {
            for at in h.offset..h.end() {
                let mut bad = bytes.clone();
                bad[at as usize] ^= 0x40;
                let err = parse_table(&bad, path).expect_err("corruption is detected");
                assert_eq!(
                    err.location().map(|(_, o)| o),
                    Some(h.offset),
                    "flip at {at}"
                );
            }
        }
    }

    #[test]
    fn every_flipped_byte_outside_the_data_is_detected() {
        let bytes = image(30, 8);
        let path = Path::new("t.sst");
        let report = parse_table(&bytes, path).expect("valid table");
        for at in report.footer.filter.offset as usize..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(parse_table(&bad, path).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in [0usize, 1, 63, 64, 65, 4096, 8192] {
            let mut bytes = vec![0u8; len];
            for b in bytes.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            assert!(
                parse_table(&bytes, Path::new("g.sst")).is_err(),
                "{len} bytes"
            );
        }
        // A valid footer whose handles point anywhere must not slice out of bounds.
        let mut bytes = image(10, 4);
        let at = bytes.len() - FOOTER_BYTES;
        let mut footer = Footer::read_from_bytes(&bytes[at..]).expect("64 bytes");
        footer.index_offset = u64::MAX.into();
        footer.index_len = u32::MAX.into();
        bytes[at..].copy_from_slice(footer.seal().as_bytes());
        assert!(parse_table(&bytes, Path::new("h.sst")).is_err());
    }
}
