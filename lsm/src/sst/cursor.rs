//! A positioned cursor over one table, forward or reverse, loading blocks
//! through the cache as it crosses them.

use crate::cache::BlockCache;
use crate::error::Result;
use crate::format::Block;
use crate::sst::Table;
use ferrisdb_io::Disk;
use std::rc::Rc;

pub struct TableCursor<D: Disk> {
    table: Rc<Table<D>>,
    cache: Rc<BlockCache>,
    reverse: bool,
    block_index: usize,
    block: Option<Rc<Block>>,
    entry: usize,
}

/// Borrowed view of the entry under a cursor.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub key: &'a [u8],
    pub version: u64,
    pub kind: u8,
    pub value: &'a [u8],
}

impl<D: Disk> TableCursor<D> {
    pub fn new(table: Rc<Table<D>>, cache: Rc<BlockCache>, reverse: bool) -> Self {
        TableCursor {
            table,
            cache,
            reverse,
            block_index: 0,
            block: None,
            entry: 0,
        }
    }

    pub fn is_reverse(&self) -> bool {
        self.reverse
    }

    pub fn current(&self) -> Option<EntryRef<'_>> {
        let block = self.block.as_ref()?;
        let e = block.data().entries.get(self.entry)?;
        Some(EntryRef {
            key: &e.key,
            version: e.version.to_native(),
            kind: e.kind,
            value: &e.value,
        })
    }

    /// Forward: the first entry at or after `key` (all versions).
    /// Reverse: the last entry strictly before `key`, or the last entry if `key` is None.
    pub async fn seek(&mut self, key: Option<&[u8]>) -> Result<()> {
        let blocks = self.table.block_count();
        self.block = None;
        if blocks == 0 {
            return Ok(());
        }
        if !self.reverse {
            let key = key.unwrap_or(&[]);
            let i = self.table.index().seek(key, u64::MAX);
            if i >= blocks {
                return Ok(());
            }
            self.load(i).await?;
            let data = self.block.as_ref().expect("loaded").data();
            self.entry = data.seek(key, u64::MAX);
            if self.entry >= data.entries.len() {
                return self.next_block().await;
            }
            return Ok(());
        }
        let Some(key) = key else {
            self.load(blocks - 1).await?;
            return self.last_in_block().await;
        };
        // The first block whose last key is >= (key, MAX) holds the first
        // entry >= key; the entry before that is the answer.
        let i = self.table.index().seek(key, u64::MAX).min(blocks - 1);
        self.load(i).await?;
        let data = self.block.as_ref().expect("loaded").data();
        let j = data.seek(key, u64::MAX);
        if j == 0 {
            return self.prev_block().await;
        }
        self.entry = j - 1;
        Ok(())
    }

    pub async fn advance(&mut self) -> Result<()> {
        let Some(block) = &self.block else {
            return Ok(());
        };
        if !self.reverse {
            self.entry += 1;
            if self.entry >= block.data().entries.len() {
                return self.next_block().await;
            }
        } else if self.entry == 0 {
            return self.prev_block().await;
        } else {
            self.entry -= 1;
        }
        Ok(())
    }

    async fn load(&mut self, i: usize) -> Result<()> {
        self.block = Some(self.table.data_block(i, &self.cache).await?);
        self.block_index = i;
        self.entry = 0;
        Ok(())
    }

    async fn next_block(&mut self) -> Result<()> {
        let next = self.block_index + 1;
        if next >= self.table.block_count() {
            self.block = None;
            return Ok(());
        }
        self.load(next).await
    }

    async fn prev_block(&mut self) -> Result<()> {
        if self.block_index == 0 {
            self.block = None;
            return Ok(());
        }
        self.load(self.block_index - 1).await?;
        self.last_in_block().await
    }

    async fn last_in_block(&mut self) -> Result<()> {
        let len = self.block.as_ref().expect("loaded").data().entries.len();
        if len == 0 {
            return Box::pin(self.prev_block()).await;
        }
        self.entry = len - 1;
        Ok(())
    }
}
