//! Reads one SSTable: footer, index, filter and properties stay in memory;
//! data blocks go through the block cache.

use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::format::blocks::Properties;
use crate::format::footer::{FOOTER_BYTES, Footer};
use crate::format::{Block, BlockKind, bloom, decode_block};
use crate::types::{Kind, Version};
use ferrisdb_io::{Disk, DiskFile, OpenMode};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub struct Table<D: Disk> {
    file: D::File,
    path: PathBuf,
    pub number: u64,
    cache_id: u64,
    index: Block,
    filter: Block,
    pub props: Properties,
    pub size: u64,
}

/// A point lookup's answer from one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub version: Version,
    pub kind: Kind,
    pub value: Vec<u8>,
}

impl<D: Disk> Table<D> {
    /// Opens a table; `cache_id` keys its blocks in the block cache (see
    /// [`crate::cache::table_cache_id`]).
    pub async fn open(disk: &D, path: &Path, number: u64, cache_id: u64) -> Result<Self> {
        let file = disk.open(path, OpenMode::Read).await?;
        let size = file.size().await?;
        if size < FOOTER_BYTES as u64 {
            return Err(Error::corrupt(
                "table",
                path,
                0,
                format!("{size} bytes is too short for a table"),
            ));
        }
        let footer_at = size - FOOTER_BYTES as u64;
        let raw = file.read_at(footer_at, FOOTER_BYTES).await?;
        let footer =
            Footer::decode(&raw).map_err(|e| Error::corrupt("table footer", path, footer_at, e))?;
        let in_bounds = |off: u64, len: u32| {
            off.checked_add(len as u64)
                .is_some_and(|end| end <= footer_at)
        };
        let handles = [
            (footer.filter_offset.get(), footer.filter_len.get()),
            (footer.index_offset.get(), footer.index_len.get()),
            (footer.props_offset.get(), footer.props_len.get()),
        ];
        if let Some(&(off, _)) = handles.iter().find(|(o, l)| !in_bounds(*o, *l)) {
            return Err(Error::corrupt(
                "table footer",
                path,
                footer_at,
                format!("block handle at {off} points outside the table"),
            ));
        }
        let read = |off: u64, len: u32, kind: BlockKind| {
            let file = &file;
            async move {
                let bytes = file.read_at(off, len as usize).await?;
                decode_block(&bytes, kind, path, off)
            }
        };
        let filter = read(handles[0].0, handles[0].1, BlockKind::Filter).await?;
        let index = read(handles[1].0, handles[1].1, BlockKind::Index).await?;
        let props = read(handles[2].0, handles[2].1, BlockKind::Properties)
            .await?
            .properties();
        if props.entries != footer.entries.get() {
            return Err(Error::corrupt(
                "table properties",
                path,
                handles[2].0,
                "entry count disagrees with the footer",
            ));
        }
        for (i, e) in index.index().entries.iter().enumerate() {
            if !in_bounds(e.offset.to_native(), e.len.to_native()) {
                return Err(Error::corrupt(
                    "index block",
                    path,
                    handles[1].0,
                    format!("entry {i} points outside the table"),
                ));
            }
        }
        Ok(Table {
            file,
            path: path.to_path_buf(),
            number,
            cache_id,
            index,
            filter,
            props,
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn block_count(&self) -> usize {
        self.index.index().entries.len()
    }

    pub fn index(&self) -> &crate::format::blocks::ArchivedIndexBlock {
        self.index.index()
    }

    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.filter.filter().may_contain(bloom::key_hash(key))
    }

    /// Data block `i`, from the cache or the disk (verified, then cached).
    pub async fn data_block(&self, i: usize, cache: &BlockCache) -> Result<Rc<Block>> {
        let entry = &self.index.index().entries[i];
        let (offset, len) = (entry.offset.to_native(), entry.len.to_native());
        if let Some(block) = cache.get(self.cache_id, offset) {
            return Ok(block);
        }
        let bytes = self.file.read_at(offset, len as usize).await?;
        if bytes.len() != len as usize {
            return Err(Error::corrupt(
                "data block",
                &self.path,
                offset,
                "table is truncated",
            ));
        }
        let block = Rc::new(decode_block(&bytes, BlockKind::Data, &self.path, offset)?);
        cache.insert(self.cache_id, offset, block.clone());
        Ok(block)
    }

    /// Newest entry of `key` with version <= `version`.
    pub async fn get(
        &self,
        key: &[u8],
        version: Version,
        cache: &BlockCache,
    ) -> Result<Option<Found>> {
        if !self.may_contain(key) {
            return Ok(None);
        }
        let i = self.index.index().seek(key, version);
        if i >= self.block_count() {
            return Ok(None);
        }
        let block = self.data_block(i, cache).await?;
        let data = block.data();
        let j = data.seek(key, version);
        let Some(e) = data.entries.get(j) else {
            return Ok(None);
        };
        if e.key.as_slice() != key {
            return Ok(None);
        }
        let kind = Kind::from_u8(e.kind).ok_or_else(|| {
            Error::corrupt(
                "data block",
                &self.path,
                0,
                format!("unknown entry kind {}", e.kind),
            )
        })?;
        Ok(Some(Found {
            version: e.version.to_native(),
            kind,
            value: e.value.to_vec(),
        }))
    }

    pub fn cache_id(&self) -> u64 {
        self.cache_id
    }

    /// Reads and verifies every block; the first failure names its offset.
    pub async fn verify(&self) -> Result<u64> {
        let mut entries = 0;
        for e in self.index.index().entries.iter() {
            let (offset, len) = (e.offset.to_native(), e.len.to_native());
            let bytes = self.file.read_at(offset, len as usize).await?;
            let block = decode_block(&bytes, BlockKind::Data, &self.path, offset)?;
            entries += block.data().entries.len() as u64;
        }
        if entries != self.props.entries {
            return Err(Error::corrupt(
                "table",
                &self.path,
                0,
                format!(
                    "{entries} entries in blocks, properties say {}",
                    self.props.entries
                ),
            ));
        }
        Ok(entries)
    }
}
