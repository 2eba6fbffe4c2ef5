//! Writes one SSTable with direct I/O, streaming whole pages as it goes.

use crate::cache::BlockCache;
use crate::error::Result;
use crate::format::blocks::{BlockEntry, DataBlock, IndexBlock, IndexEntry, Properties};
use crate::format::footer::{FOOTER_BYTES, Footer, SST_FORMAT_VERSION, SST_MAGIC};
use crate::format::{BlockKind, bloom, decode_block, encode_block};
use crate::types::{Kind, cmp_internal};
use ferrisdb_io::{Disk, DiskFile, IoBuf, OpenMode, PAGE_BYTES};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use zerocopy::IntoBytes;

/// Bytes buffered before whole pages are written out.
const WRITE_CHUNK_BYTES: usize = 1 << 20;
/// Estimated archive bytes per entry on top of key and value.
const ENTRY_ARCHIVE_OVERHEAD: usize = 24;

pub struct TableBuilder<D: Disk> {
    disk: D,
    file: D::File,
    path: PathBuf,
    block_bytes: usize,
    bloom_bits_per_key: u32,
    /// Bytes not yet written; `buf[0]` is at file offset `flushed`.
    buf: Vec<u8>,
    flushed: u64,
    block: DataBlock,
    block_estimate: usize,
    index: IndexBlock,
    hashes: Vec<u64>,
    props: Properties,
    last: Option<(Vec<u8>, u64)>,
    /// Where finished data blocks are also put (cache on write), with the table's cache id.
    cache: Option<(Rc<BlockCache>, u64)>,
}

impl<D: Disk> TableBuilder<D> {
    /// Creates the table file. With `cache`, every data block is also put
    /// into the block cache as it is written, so new tables start warm.
    pub async fn create(
        disk: D,
        path: &Path,
        block_bytes: usize,
        bloom_bits_per_key: u32,
        cache: Option<(Rc<BlockCache>, u64)>,
    ) -> Result<Self> {
        let file = disk.open(path, OpenMode::CreateNew).await?;
        Ok(TableBuilder {
            disk,
            file,
            path: path.to_path_buf(),
            block_bytes,
            bloom_bits_per_key,
            buf: Vec::with_capacity(WRITE_CHUNK_BYTES + 64 * 1024),
            flushed: 0,
            block: DataBlock::default(),
            block_estimate: 0,
            index: IndexBlock::default(),
            hashes: Vec::new(),
            props: Properties {
                min_version: u64::MAX,
                ..Default::default()
            },
            last: None,
            cache,
        })
    }

    fn offset(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Bytes the table will take so far (approximate until finished).
    pub fn estimated_bytes(&self) -> u64 {
        self.offset() + self.block_estimate as u64
    }

    pub fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Adds an entry; entries must come in strictly increasing internal order.
    ///
    /// # Panics
    /// On out-of-order entries: a caller bug that would make an unreadable table.
    pub async fn add(&mut self, key: &[u8], version: u64, kind: Kind, value: &[u8]) -> Result<()> {
        if let Some((last_key, last_version)) = &self.last {
            assert!(
                cmp_internal(last_key, *last_version, key, version).is_lt(),
                "table entries out of order"
            );
            if last_key.as_slice() != key {
                self.hashes.push(bloom::key_hash(key));
            }
        } else {
            self.hashes.push(bloom::key_hash(key));
            self.props.smallest_key = key.to_vec();
            self.props.smallest_version = version;
        }
        let p = &mut self.props;
        p.entries += 1;
        p.deletes += u64::from(kind == Kind::Delete);
        p.min_version = p.min_version.min(version);
        p.max_version = p.max_version.max(version);
        p.raw_key_bytes += key.len() as u64;
        p.raw_value_bytes += value.len() as u64;
        self.block_estimate += key.len() + value.len() + ENTRY_ARCHIVE_OVERHEAD;
        self.block.entries.push(BlockEntry {
            key: key.to_vec(),
            version,
            kind: kind as u8,
            value: value.to_vec(),
        });
        self.last = Some((key.to_vec(), version));
        if self.block_estimate >= self.block_bytes {
            self.finish_block();
            if self.buf.len() >= WRITE_CHUNK_BYTES {
                self.write_pages(false).await?;
            }
        }
        Ok(())
    }

    fn finish_block(&mut self) {
        if self.block.entries.is_empty() {
            return;
        }
        let framed = encode_block(&self.block, BlockKind::Data);
        if let Some((cache, id)) = &self.cache {
            let block = decode_block(&framed, BlockKind::Data, &self.path, self.offset())
                .expect("a block we just encoded decodes");
            cache.insert(*id, self.offset(), Rc::new(block));
        }
        let last = self.block.entries.last().expect("non-empty block");
        self.index.entries.push(IndexEntry {
            last_key: last.key.clone(),
            last_version: last.version,
            offset: self.offset(),
            len: framed.len() as u32,
        });
        self.buf.extend_from_slice(&framed);
        self.block.entries.clear();
        self.block_estimate = 0;
        self.props.data_blocks += 1;
    }

    /// Writes the whole pages of `buf` (all of it if `all`, which must then be page aligned).
    async fn write_pages(&mut self, all: bool) -> Result<()> {
        let whole = if all {
            self.buf.len()
        } else {
            self.buf.len() / PAGE_BYTES * PAGE_BYTES
        };
        assert!(whole % PAGE_BYTES == 0, "only whole pages are written");
        if whole == 0 {
            return Ok(());
        }
        let mut out = self.disk.alloc_buf(whole);
        out.as_mut_slice().copy_from_slice(&self.buf[..whole]);
        self.file.write_at(out, self.flushed).await?;
        self.buf.drain(..whole);
        self.flushed += whole as u64;
        Ok(())
    }

    /// Writes the filter, index, properties and footer, syncs and closes the
    /// file. Returns the properties and the file size.
    pub async fn finish(mut self) -> Result<(Properties, u64)> {
        self.finish_block();
        if let Some((key, version)) = self.last.take() {
            self.props.largest_key = key;
            self.props.largest_version = version;
        }
        if self.props.entries == 0 {
            self.props.min_version = 0;
        }
        let filter = bloom::build(&self.hashes, self.bloom_bits_per_key.max(1));
        let filter_offset = self.offset();
        let framed = encode_block(&filter, BlockKind::Filter);
        let filter_len = framed.len();
        self.buf.extend_from_slice(&framed);
        let index_offset = self.offset();
        let framed = encode_block(&self.index, BlockKind::Index);
        let index_len = framed.len();
        self.buf.extend_from_slice(&framed);
        let props_offset = self.offset();
        let framed = encode_block(&self.props, BlockKind::Properties);
        let props_len = framed.len();
        self.buf.extend_from_slice(&framed);
        let end = (self.offset() as usize + FOOTER_BYTES).next_multiple_of(PAGE_BYTES);
        let pad = end - FOOTER_BYTES - self.offset() as usize;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        let footer = Footer {
            magic: SST_MAGIC,
            format_version: SST_FORMAT_VERSION.into(),
            crc: 0.into(),
            filter_offset: filter_offset.into(),
            index_offset: index_offset.into(),
            props_offset: props_offset.into(),
            filter_len: (filter_len as u32).into(),
            index_len: (index_len as u32).into(),
            props_len: (props_len as u32).into(),
            reserved: 0.into(),
            entries: self.props.entries.into(),
        }
        .seal();
        self.buf.extend_from_slice(footer.as_bytes());
        self.write_pages(true).await?;
        self.file.sync().await?;
        let size = self.flushed;
        self.file.close().await?;
        Ok((self.props, size))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
