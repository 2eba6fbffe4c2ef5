//! Engine options with their defaults. See docs/engine.md for the trade-offs.

use crate::compaction::PlannerOptions;
use crate::error::{Error, Result};

/// Where durability of writes comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    /// The engine keeps its own write-ahead log (embedded use).
    Internal,
    /// An external log (Raft) holds writes until they are flushed; the engine
    /// records the highest applied external index in the manifest at each flush.
    External,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub log_mode: LogMode,
    /// Memtable size at which it is frozen and flushed.
    pub memtable_bytes_max: usize,
    /// Frozen memtables waiting for flush before writers stall.
    pub immutable_memtables_max: usize,
    /// Target uncompressed size of a data block.
    pub block_bytes: usize,
    /// Bloom filter bits per key (0 disables filters).
    pub bloom_bits_per_key: u32,
    /// Block cache budget of this engine when it creates its own cache.
    pub block_cache_bytes: usize,
    /// Put the data blocks of new tables (flush and compaction output) into
    /// the block cache as they are written, so reads of fresh data do not
    /// go to the disk (direct I/O bypasses the page cache).
    pub cache_on_write: bool,
    /// L0 file count that triggers an L0 -> L1 compaction.
    pub l0_compaction_trigger: usize,
    /// L0 file count at which writes wait for compaction.
    pub l0_stop_writes: usize,
    /// Target size of L1; each deeper level is `level_size_multiplier` times larger.
    pub level1_bytes_max: u64,
    pub level_size_multiplier: u64,
    /// Number of levels, L0 included.
    pub levels: usize,
    /// Target size of an SST produced by compaction.
    pub sst_bytes_target: u64,
    /// Most bytes per second one compaction writes (0: no limit). Keeps a
    /// compaction from taking all of a slow device's bandwidth from the WAL
    /// and from reads; flushes are never paced (they unblock writers).
    pub compaction_bytes_per_sec: u64,
    /// WAL segment size.
    pub wal_segment_bytes: u64,
    /// Limits on what one write may carry.
    pub key_bytes_max: usize,
    pub value_bytes_max: usize,
    pub batch_ops_max: usize,
    /// WAL buffer size at which buffered (non-sync) writes are handed to the disk.
    pub wal_write_out_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_mode: LogMode::Internal,
            memtable_bytes_max: 64 << 20,
            immutable_memtables_max: 2,
            block_bytes: 4096,
            bloom_bits_per_key: 10,
            block_cache_bytes: 256 << 20,
            cache_on_write: true,
            l0_compaction_trigger: 4,
            l0_stop_writes: 20,
            level1_bytes_max: 256 << 20,
            level_size_multiplier: 10,
            levels: 7,
            sst_bytes_target: 64 << 20,
            compaction_bytes_per_sec: 0,
            wal_segment_bytes: 64 << 20,
            key_bytes_max: 10 * 1024,
            value_bytes_max: 1 << 20,
            batch_ops_max: 100_000,
            wal_write_out_bytes: 1 << 20,
        }
    }
}

impl Options {
    /// What the compaction planner sees of these options; the engine and
    /// the compaction simulator (`ferrisdb tune compaction`) both plan with it.
    pub fn planner_options(&self) -> PlannerOptions {
        PlannerOptions {
            l0_trigger: self.l0_compaction_trigger,
            level1_bytes: self.level1_bytes_max,
            multiplier: self.level_size_multiplier,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::InvalidArgument(format!("options: {why}")));
        if self.memtable_bytes_max < 4096 {
            return bad("memtable_bytes_max must be at least 4096");
        }
        if self.immutable_memtables_max == 0 {
            return bad("immutable_memtables_max must be at least 1");
        }
        if !(256..=(1 << 20)).contains(&self.block_bytes) {
            return bad("block_bytes must be between 256 and 1 MiB");
        }
        if self.wal_segment_bytes < 64 * 1024 {
            return bad("wal_segment_bytes must be at least 64 KiB");
        }
        if self.levels < 2 || self.levels > 16 {
            return bad("levels must be between 2 and 16");
        }
        if self.l0_compaction_trigger == 0 || self.l0_stop_writes <= self.l0_compaction_trigger {
            return bad("need 0 < l0_compaction_trigger < l0_stop_writes");
        }
        if self.level_size_multiplier < 2 {
            return bad("level_size_multiplier must be at least 2");
        }
        if self.key_bytes_max == 0 || self.key_bytes_max > (1 << 20) {
            return bad("key_bytes_max must be between 1 and 1 MiB");
        }
        if self.value_bytes_max > (3 << 20) {
            return bad("value_bytes_max must be at most 3 MiB (the WAL record limit)");
        }
        Ok(())
    }
}
