//! FerrisDB's storage engine: a crash-safe, MVCC LSM tree per shard, doing
//! direct I/O through `ferrisdb-io`.
//!
//! Write path: batch -> WAL (group commit) -> memtable -> frozen -> L0 table ->
//! leveled compaction. Read path: memtables, then L0 newest first, then one
//! table per deeper level, each table guarded by a bloom filter, blocks through
//! a per-core cache. See docs/engine.md and docs/format.md.

pub mod batch;
pub mod cache;
pub mod compaction;
mod engine;
mod error;
pub mod format;
pub mod manifest;
pub mod memtable;
pub mod options;
pub mod sst;
pub mod types;
pub mod version;

pub use batch::WriteBatch;
pub use cache::BlockCache;
pub use engine::{
    Engine, ReadOptions, ScanIter, ScanOptions, Snapshot, Stats, WAL_PREFIX, WriteOptions,
};
pub use error::{Error, Result};
pub use options::{LogMode, Options};
pub use types::{Kind, RangeTombstone, Version};
