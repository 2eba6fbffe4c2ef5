//! FerrisDB tuning: measures the device as the engine uses it
//! ([`disk`], `ferrisdb tune disk`, which writes [`IoProperties`]), derives
//! a node configuration from cores, memory and those measurements
//! ([`derive`](mod@derive), `ferrisdb tune config`), and simulates the engine's real
//! compaction planner over synthetic write streams ([`simulate`],
//! `ferrisdb tune compaction`).
//!
//! The node depends on this crate (it reads `io_properties.toml` through
//! [`IoProperties::read`] and derives its I/O settings with
//! [`derive::device_knobs`]); this crate depends only on `io` and `lsm`.
#![forbid(unsafe_code)]

pub mod derive;
pub mod disk;
mod error;
pub mod machine;
pub mod properties;
pub mod simulate;

pub use error::{Error, Result};
pub use properties::{IO_PROPERTIES_FILE, IoProperties};
