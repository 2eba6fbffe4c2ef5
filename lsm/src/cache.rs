//! Per-core block cache, bounded in bytes, least-recently-used eviction.
//!
//! Blocks enter the cache only after their checksum and archive structure
//! were verified, so lookups read them in place with no further checks.

use crate::format::Block;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Key: (table cache id, block offset).
type CacheKey = (u64, u64);

/// Bookkeeping charged per cached block on top of its bytes.
const BLOCK_OVERHEAD_BYTES: usize = 96;

pub struct BlockCache {
    map: RefCell<lru::LruCache<CacheKey, Rc<Block>>>,
    bytes: Cell<usize>,
    capacity_bytes: usize,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

thread_local! {
    static NEXT_NAMESPACE: Cell<u64> = const { Cell::new(1) };
}

/// Bits of a table cache id that hold the table number.
const TABLE_NUMBER_BITS: u32 = 40;

/// A namespace unique among engines opened on this thread (core), so engines
/// sharing the core's cache never collide.
pub fn next_namespace() -> u64 {
    NEXT_NAMESPACE.with(|c| {
        let id = c.get();
        c.set(id + 1);
        id
    })
}

/// Cache id of table `number` of the engine with namespace `namespace`.
pub fn table_cache_id(namespace: u64, number: u64) -> u64 {
    assert!(
        number < 1 << TABLE_NUMBER_BITS,
        "table numbers stay below 2^40"
    );
    (namespace << TABLE_NUMBER_BITS) | number
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> Rc<Self> {
        Rc::new(BlockCache {
            map: RefCell::new(lru::LruCache::unbounded()),
            bytes: Cell::new(0),
            capacity_bytes,
            hits: Cell::new(0),
            misses: Cell::new(0),
        })
    }

    pub fn get(&self, table: u64, offset: u64) -> Option<Rc<Block>> {
        let found = self.map.borrow_mut().get(&(table, offset)).cloned();
        match found {
            Some(_) => self.hits.set(self.hits.get() + 1),
            None => self.misses.set(self.misses.get() + 1),
        }
        found
    }

    pub fn insert(&self, table: u64, offset: u64, block: Rc<Block>) {
        let charge = block.bytes() + BLOCK_OVERHEAD_BYTES;
        if charge > self.capacity_bytes {
            return;
        }
        let mut map = self.map.borrow_mut();
        if let Some(old) = map.put((table, offset), block) {
            self.bytes
                .set(self.bytes.get() - old.bytes() - BLOCK_OVERHEAD_BYTES);
        }
        self.bytes.set(self.bytes.get() + charge);
        while self.bytes.get() > self.capacity_bytes {
            let Some((_, evicted)) = map.pop_lru() else {
                break;
            };
            self.bytes
                .set(self.bytes.get() - evicted.bytes() - BLOCK_OVERHEAD_BYTES);
        }
    }

    /// Drops every block of a table (after the table is deleted).
    pub fn forget_table(&self, table: u64) {
        let mut map = self.map.borrow_mut();
        let doomed: Vec<CacheKey> = map
            .iter()
            .filter(|(k, _)| k.0 == table)
            .map(|(k, _)| *k)
            .collect();
        for key in doomed {
            if let Some(block) = map.pop(&key) {
                self.bytes
                    .set(self.bytes.get() - block.bytes() - BLOCK_OVERHEAD_BYTES);
            }
        }
    }

    pub fn used_bytes(&self) -> usize {
        self.bytes.get()
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// (hits, misses) since creation.
    pub fn hit_counts(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blocks::{BlockEntry, DataBlock};
    use crate::format::{BlockKind, decode_block, encode_block};
    use std::path::Path;

    fn block(n: usize) -> Rc<Block> {
        let data = DataBlock {
            entries: vec![BlockEntry {
                key: vec![1; n],
                version: 1,
                kind: 1,
                value: vec![],
            }],
        };
        Rc::new(
            decode_block(
                &encode_block(&data, BlockKind::Data),
                BlockKind::Data,
                Path::new("t"),
                0,
            )
            .expect("valid"),
        )
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let cache = BlockCache::new(10_000);
        for i in 0..100 {
            cache.insert(1, i, block(1000));
            assert!(cache.used_bytes() <= 10_000);
        }
        assert!(cache.get(1, 99).is_some(), "most recent block stays");
        assert!(cache.get(1, 0).is_none(), "oldest block was evicted");
        cache.forget_table(1);
        assert_eq!(cache.used_bytes(), 0);
    }
}
