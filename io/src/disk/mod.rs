//! The `Disk` abstraction every file access in FerrisDB goes through.
//!
//! Two implementations: [`real::RealDisk`] (O_DIRECT through io_uring via
//! glommio) and [`sim::SimDisk`] (deterministic, in memory, with crashes, torn
//! writes, bit flips and injected EIO). Storage code is generic over `Disk`, so
//! the same engine code runs in production and under fault injection.
//!
//! # Contract
//! - Writes are positional, page-aligned in offset and length ([`PAGE_BYTES`]),
//!   and take an owned buffer (ownership passes into the ring).
//! - Reads may be at any offset and length; a read past the end is short.
//! - Nothing is durable until [`DiskFile::sync`] returns; a new, renamed or
//!   removed name is durable only after [`Disk::sync_dir`] of its directory.

pub mod direct;
pub mod real;
pub mod sim;

use crate::Result;
use std::future::Future;
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Alignment and granularity of every direct-I/O write.
pub const PAGE_BYTES: usize = 4096;

/// Rounds `n` up to a multiple of [`PAGE_BYTES`].
pub const fn align_up(n: usize) -> usize {
    n.div_ceil(PAGE_BYTES) * PAGE_BYTES
}

/// An owned, page-aligned buffer handed to [`DiskFile::write_at`].
pub trait IoBuf: 'static {
    fn as_slice(&self) -> &[u8];
    fn as_mut_slice(&mut self) -> &mut [u8];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing file for reading only.
    Read,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Create a new file (fails if it exists), readable and writable.
    CreateNew,
    /// Open an existing file for reading and writing with O_DSYNC: a write is
    /// durable when it completes (one device round trip instead of write +
    /// fdatasync).
    ReadWriteDsync,
}

pub trait Disk: Clone + 'static {
    type Buf: IoBuf;
    type File: DiskFile<Buf = Self::Buf>;

    /// A zeroed buffer of `len` bytes (`len` a multiple of [`PAGE_BYTES`]).
    fn alloc_buf(&self, len: usize) -> Self::Buf;
    fn open(&self, path: &Path, mode: OpenMode) -> impl Future<Output = Result<Self::File>>;
    fn remove(&self, path: &Path) -> impl Future<Output = Result<()>>;
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = Result<()>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> impl Future<Output = Result<()>>;
    /// Creates `dir` and missing parents; not durable until `sync_dir` of the parent.
    fn create_dir_all(&self, dir: &Path) -> impl Future<Output = Result<()>>;
    /// File names (not paths) in `dir`, sorted.
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
}

pub trait DiskFile: 'static {
    type Buf: IoBuf;
    type ReadBuf: Deref<Target = [u8]> + 'static;

    /// Reads up to `len` bytes at `pos`; shorter only at end of file.
    fn read_at(&self, pos: u64, len: usize) -> impl Future<Output = Result<Self::ReadBuf>>;
    /// Writes the whole buffer at `pos`; both page-aligned.
    fn write_at(&self, buf: Self::Buf, pos: u64) -> impl Future<Output = Result<()>>;
    /// `fdatasync`: everything written before the call is durable when it returns Ok.
    fn sync(&self) -> impl Future<Output = Result<()>>;
    fn size(&self) -> impl Future<Output = Result<u64>>;
    /// Reserves space for `len` bytes without changing the visible size.
    fn preallocate(&self, len: u64) -> impl Future<Output = Result<()>>;
    fn truncate(&self, len: u64) -> impl Future<Output = Result<()>>;
    fn close(self) -> impl Future<Output = Result<()>>;
    fn path(&self) -> &Path;
}

pub(crate) fn check_aligned(path: &Path, pos: u64, len: usize) -> Result<()> {
    if !pos.is_multiple_of(PAGE_BYTES as u64) || !len.is_multiple_of(PAGE_BYTES) {
        return Err(crate::Error::Invalid(format!(
            "unaligned direct write to {}: pos {pos}, len {len} (must be multiples of {PAGE_BYTES})",
            path.display()
        )));
    }
    Ok(())
}

pub(crate) fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
