//! On-disk formats of an SSTable (byte layouts in docs/format.md).
//!
//! ```text
//! [data block]* [filter block] [index block] [properties block] [zero pad] [footer: 64 bytes]
//! block = rkyv archive | trailer (crc32c u32 of the archive, block kind u32)
//! ```
//! The zero pad makes the file a whole number of pages, with the footer in its
//! last 64 bytes, so a table is written with direct I/O only.

pub mod blocks;
pub mod bloom;
pub mod footer;

pub use blocks::{Block, BlockKind, decode_block, encode_block};
