//! The manifest: a log of version edits (table adds and removes, range
//! tombstones, counters) on the same segmented log as the WAL.
//!
//! An edit is durable when its record is synced; tables it adds were synced,
//! and their names made durable, before it was appended, so no crash leaves a
//! manifest naming a missing table. When the manifest spans more than
//! `SEGMENTS_BEFORE_REWRITE` segments, a full snapshot edit is written and the
//! older segments are removed.

use crate::error::{Error, Result};
use crate::types::RangeTombstone;
use crate::version::{FileMeta, Levels};
use ferrisdb_io::Disk;
use ferrisdb_io::log::{Log, LogOptions};
use rkyv::{Archive, Deserialize, Serialize};
use std::path::Path;
use std::rc::Rc;

pub const MANIFEST_PREFIX: &str = "manifest";
const SEGMENTS_BEFORE_REWRITE: usize = 2;

pub fn log_options() -> LogOptions {
    LogOptions {
        prefix: MANIFEST_PREFIX.into(),
        segment_bytes_max: 4 << 20,
        chunk_bytes_max: 2 << 20,
        preallocate: false,
    }
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub level: u32,
    pub number: u64,
    pub size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub min_version: u64,
    pub max_version: u64,
    pub entries: u64,
    pub deletes: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TombstoneRecord {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub version: u64,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// A snapshot: state is reset before this edit is applied.
    pub full: bool,
    pub added: Vec<FileRecord>,
    /// (level, number) of removed tables.
    pub removed: Vec<(u32, u64)>,
    pub tombstones_added: Vec<TombstoneRecord>,
    pub tombstones_removed: Vec<TombstoneRecord>,
    pub next_file_number: u64,
    pub last_version: u64,
    pub wal_flushed_lsn: u64,
    pub applied_index: u64,
}

/// What the manifest describes.
#[derive(Debug, Clone)]
pub struct ManifestState {
    pub levels: Levels,
    pub tombstones: Vec<RangeTombstone>,
    pub next_file_number: u64,
    pub last_version: u64,
    pub wal_flushed_lsn: u64,
    pub applied_index: u64,
}

impl ManifestState {
    pub fn new(levels: usize) -> Self {
        ManifestState {
            levels: Levels::new(levels),
            tombstones: Vec::new(),
            next_file_number: 1,
            last_version: 0,
            wal_flushed_lsn: 0,
            applied_index: 0,
        }
    }

    /// Applies one edit; `path`/`lsn` label errors.
    pub fn apply(&mut self, edit: &Edit, path: &Path, lsn: u64) -> Result<()> {
        let bad = |why: String| {
            Error::corrupt(
                "manifest edit",
                path,
                lsn,
                format!("edit at LSN {lsn}: {why}"),
            )
        };
        if edit.full {
            *self = ManifestState::new(self.levels.levels.len());
        }
        for (level, number) in &edit.removed {
            let level = *level as usize;
            if level >= self.levels.levels.len() || !self.levels.remove(level, *number) {
                return Err(bad(format!(
                    "removes table {number} not present in L{level}"
                )));
            }
        }
        for f in &edit.added {
            let level = f.level as usize;
            if level >= self.levels.levels.len() {
                return Err(bad(format!(
                    "adds table {} to L{level}, beyond the configured levels",
                    f.number
                )));
            }
            self.levels.add(level, Rc::new(f.to_meta()));
        }
        for t in &edit.tombstones_removed {
            self.tombstones
                .retain(|x| !(x.version == t.version && x.start == t.start && x.end == t.end));
        }
        self.tombstones.extend(
            edit.tombstones_added
                .iter()
                .map(TombstoneRecord::to_tombstone),
        );
        self.next_file_number = self.next_file_number.max(edit.next_file_number);
        self.last_version = self.last_version.max(edit.last_version);
        self.wal_flushed_lsn = self.wal_flushed_lsn.max(edit.wal_flushed_lsn);
        self.applied_index = self.applied_index.max(edit.applied_index);
        Ok(())
    }

    pub fn snapshot_edit(&self) -> Edit {
        Edit {
            full: true,
            added: self
                .levels
                .all_files()
                .map(|(l, f)| FileRecord::from_meta(l, f))
                .collect(),
            removed: Vec::new(),
            tombstones_added: self
                .tombstones
                .iter()
                .map(TombstoneRecord::from_tombstone)
                .collect(),
            tombstones_removed: Vec::new(),
            next_file_number: self.next_file_number,
            last_version: self.last_version,
            wal_flushed_lsn: self.wal_flushed_lsn,
            applied_index: self.applied_index,
        }
    }
}

impl FileRecord {
    pub fn from_meta(level: usize, f: &FileMeta) -> Self {
        FileRecord {
            level: level as u32,
            number: f.number,
            size: f.size,
            smallest: f.smallest.clone(),
            largest: f.largest.clone(),
            min_version: f.min_version,
            max_version: f.max_version,
            entries: f.entries,
            deletes: f.deletes,
        }
    }

    pub fn to_meta(&self) -> FileMeta {
        FileMeta {
            number: self.number,
            size: self.size,
            smallest: self.smallest.clone(),
            largest: self.largest.clone(),
            min_version: self.min_version,
            max_version: self.max_version,
            entries: self.entries,
            deletes: self.deletes,
        }
    }
}

impl TombstoneRecord {
    pub fn from_tombstone(t: &RangeTombstone) -> Self {
        TombstoneRecord {
            start: t.start.clone(),
            end: t.end.clone(),
            version: t.version,
        }
    }
    pub fn to_tombstone(&self) -> RangeTombstone {
        RangeTombstone {
            start: self.start.clone(),
            end: self.end.clone(),
            version: self.version,
        }
    }
}

pub fn encode_edit(edit: &Edit) -> Vec<u8> {
    rkyv::to_bytes::<rkyv::rancor::Error>(edit)
        .expect("serializing to memory cannot fail")
        .to_vec()
}

/// Decodes (and validates) an edit record read from `path`.
pub fn decode_edit(bytes: &[u8], path: &Path, lsn: u64) -> Result<Edit> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<Edit, rkyv::rancor::Error>(&aligned).map_err(|e| {
        Error::corrupt(
            "manifest edit",
            path,
            lsn,
            format!("edit at LSN {lsn} does not decode: {e}"),
        )
    })
}

pub struct Manifest<D: Disk> {
    log: Rc<Log<D>>,
}

impl<D: Disk> Manifest<D> {
    /// Opens the manifest in `dir` and replays it into a state.
    pub async fn open(disk: D, dir: &Path, levels: usize) -> Result<(Self, ManifestState)> {
        let mut state = ManifestState::new(levels);
        let mut failure = None;
        let (log, _) = Log::open(disk, dir, log_options(), 1, |lsn, bytes| {
            if failure.is_some() {
                return Ok(());
            }
            let applied =
                decode_edit(bytes, dir, lsn).and_then(|edit| state.apply(&edit, dir, lsn));
            if let Err(e) = applied {
                failure = Some(e);
            }
            Ok(())
        })
        .await?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok((Manifest { log }, state))
    }

    /// Makes `edit` durable. The caller applies it to its state afterwards.
    pub async fn commit(&self, edit: &Edit) -> Result<()> {
        let lsn = self.log.append(&encode_edit(edit))?;
        self.log.sync(lsn).await?;
        Ok(())
    }

    /// Writes a full snapshot and drops older segments once the log has grown.
    pub async fn maybe_rewrite(&self, state: &ManifestState) -> Result<()> {
        if self.log.segment_count() <= SEGMENTS_BEFORE_REWRITE {
            return Ok(());
        }
        let lsn = self.log.append(&encode_edit(&state.snapshot_edit()))?;
        self.log.sync(lsn).await?;
        self.log.truncate_before(lsn).await?;
        Ok(())
    }
}
