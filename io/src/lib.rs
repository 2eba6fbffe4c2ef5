//! The only crate in FerrisDB that names glommio or io_uring.
//!
//! It owns executor bootstrap ([`executor`]), aligned DMA buffers and direct-I/O
//! files behind the [`Disk`] trait (a real implementation on glommio's `DmaFile`
//! and a deterministic simulated one for tests), a small single-threaded
//! [`notify::Notify`], the per-executor cap on disk operations in flight
//! ([`depth`]), and the segmented, checksummed append-only [`log`] with
//! group commit that both the engine WAL and the Raft log are built on.

pub mod depth;
pub mod disk;
mod error;
pub mod executor;
pub mod log;
pub mod mesh;
pub mod notify;
pub mod quic;

pub use disk::real::RealDisk;
pub use disk::sim::{SimDisk, SimFaults};
pub use disk::{Disk, DiskFile, IoBuf, OpenMode, PAGE_BYTES, align_up};
pub use error::{Error, Result};
