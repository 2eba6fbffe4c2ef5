//! FerrisDB transactions (DESIGN.md §7): read versions, MVCC reads, conflict
//! detection and the commit protocol. Built in a later issue on top of the
//! engine's versioned API (`ferrisdb-lsm`); this crate holds no code yet.
#![forbid(unsafe_code)]
