//! FerrisDB tuning: disk/CPU probing, derived configuration profiles and the
//! compaction simulator. Built in a later issue; this crate holds no code yet.
#![forbid(unsafe_code)]
