//! `ferrisdb-client`: the async Rust client for FerrisDB over QUIC.
#![forbid(unsafe_code)]
