//! `ferrisdb inspect manifest`: every version edit of the manifest log and
//! the state they add up to, replayed the way the engine replays them.

use super::problem::lsm_detail;
use super::segments::{self, LoadedLog, TornTail};
use super::{Out, Problem, count, print_json};
use crate::escape::escape;
use ferrisdb_io::log::Lsn;
use ferrisdb_lsm::manifest::{
    Edit, FileRecord, MANIFEST_PREFIX, ManifestState, TombstoneRecord, decode_edit,
};
use ferrisdb_lsm::version::FileMeta;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Levels the replayed state allows: the most `Options` accepts, since an
/// offline tool does not know the configured count.
const LEVELS_MAX: usize = 16;

/// One decoded edit and where its record lies.
pub struct EditAt {
    pub lsn: Lsn,
    pub file: PathBuf,
    /// Offset of the record header in its segment.
    pub offset: u64,
    pub edit: Edit,
}

/// A manifest read, verified and replayed.
pub struct LoadedManifest {
    pub log: LoadedLog,
    pub edits: Vec<EditAt>,
    pub state: ManifestState,
}

/// Decodes and applies every edit of a verified manifest log; a failure
/// names the record's file and offset.
pub fn replay(log: LoadedLog) -> anyhow::Result<LoadedManifest> {
    let mut state = ManifestState::new(LEVELS_MAX);
    let mut edits = Vec::with_capacity(log.scan.records.len());
    for r in log.records()? {
        let file = &log.images[r.segment].path;
        let problem = |e: ferrisdb_lsm::Error| Problem::new(file, r.offset, lsm_detail(&e));
        let edit = decode_edit(r.payload, file, r.lsn).map_err(problem)?;
        state.apply(&edit, file, r.lsn).map_err(problem)?;
        edits.push(EditAt {
            lsn: r.lsn,
            file: file.clone(),
            offset: r.offset,
            edit,
        });
    }
    Ok(LoadedManifest { log, edits, state })
}

#[derive(Debug, Serialize)]
struct ManifestReport {
    path: PathBuf,
    segments: Vec<SegmentOut>,
    edits: Vec<EditOut>,
    state: StateOut,
    torn_tail: Option<TornTail>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SegmentOut {
    file: PathBuf,
    sequence: u64,
    first_lsn: Lsn,
    file_bytes: u64,
    chunks: usize,
}

#[derive(Debug, Serialize)]
struct EditOut {
    lsn: Lsn,
    file: PathBuf,
    offset: u64,
    full: bool,
    added: Vec<FileOut>,
    removed: Vec<RemovedOut>,
    tombstones_added: Vec<TombstoneOut>,
    tombstones_removed: Vec<TombstoneOut>,
    next_file_number: u64,
    last_version: u64,
    wal_flushed_lsn: u64,
    applied_index: u64,
}

#[derive(Debug, Serialize)]
struct FileOut {
    level: u32,
    number: u64,
    size: u64,
    smallest: String,
    largest: String,
    min_version: u64,
    max_version: u64,
    entries: u64,
    deletes: u64,
}

#[derive(Debug, Serialize)]
struct RemovedOut {
    level: u32,
    number: u64,
}

#[derive(Debug, Serialize)]
struct TombstoneOut {
    start: String,
    end: String,
    version: u64,
}

#[derive(Debug, Serialize)]
struct StateOut {
    /// L0 up to the deepest level that holds a table.
    levels: Vec<LevelOut>,
    files: usize,
    tombstones: Vec<TombstoneOut>,
    next_file_number: u64,
    last_version: u64,
    wal_flushed_lsn: u64,
    applied_index: u64,
}

#[derive(Debug, Serialize)]
struct LevelOut {
    level: u32,
    files: Vec<FileOut>,
}

pub fn run(path: &Path, json: bool, out: &mut Out) -> anyhow::Result<()> {
    let loaded = replay(segments::load(path, MANIFEST_PREFIX)?)?;
    let report = build(path, &loaded);
    if json {
        return print_json(out, &report);
    }
    render(&report, out)
}

fn file_out(f: &FileRecord) -> FileOut {
    FileOut {
        level: f.level,
        number: f.number,
        size: f.size,
        smallest: escape(&f.smallest),
        largest: escape(&f.largest),
        min_version: f.min_version,
        max_version: f.max_version,
        entries: f.entries,
        deletes: f.deletes,
    }
}

fn meta_out(level: usize, f: &FileMeta) -> FileOut {
    file_out(&FileRecord::from_meta(level, f))
}

fn tombstone_out(t: &TombstoneRecord) -> TombstoneOut {
    TombstoneOut {
        start: escape(&t.start),
        end: escape(&t.end),
        version: t.version,
    }
}

fn build(path: &Path, m: &LoadedManifest) -> ManifestReport {
    let segments = m
        .log
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| SegmentOut {
            file: image.path.clone(),
            sequence: image.sequence,
            first_lsn: m.log.scan.first_lsns[i],
            file_bytes: image.bytes.len() as u64,
            chunks: m.log.chunks(i).len(),
        })
        .collect();
    let edits = m
        .edits
        .iter()
        .map(|e| EditOut {
            lsn: e.lsn,
            file: e.file.clone(),
            offset: e.offset,
            full: e.edit.full,
            added: e.edit.added.iter().map(file_out).collect(),
            removed: e
                .edit
                .removed
                .iter()
                .map(|&(level, number)| RemovedOut { level, number })
                .collect(),
            tombstones_added: e.edit.tombstones_added.iter().map(tombstone_out).collect(),
            tombstones_removed: e
                .edit
                .tombstones_removed
                .iter()
                .map(tombstone_out)
                .collect(),
            next_file_number: e.edit.next_file_number,
            last_version: e.edit.last_version,
            wal_flushed_lsn: e.edit.wal_flushed_lsn,
            applied_index: e.edit.applied_index,
        })
        .collect();
    let s = &m.state;
    let deepest = s.levels.levels.iter().rposition(|files| !files.is_empty());
    let levels = s.levels.levels[..=deepest.unwrap_or(0)]
        .iter()
        .enumerate()
        .map(|(level, files)| LevelOut {
            level: level as u32,
            files: files.iter().map(|f| meta_out(level, f)).collect(),
        })
        .collect();
    let state = StateOut {
        levels,
        files: s.levels.file_count(),
        tombstones: s
            .tombstones
            .iter()
            .map(|t| tombstone_out(&TombstoneRecord::from_tombstone(t)))
            .collect(),
        next_file_number: s.next_file_number,
        last_version: s.last_version,
        wal_flushed_lsn: s.wal_flushed_lsn,
        applied_index: s.applied_index,
    };
    let torn_tail = m.log.torn_tail();
    let mut notes: Vec<String> = torn_tail.iter().map(TornTail::note).collect();
    for image in m.log.dropped_segments() {
        notes.push(format!(
            "{} lies after the end of valid data: recovery will remove it",
            image.path.display()
        ));
    }
    ManifestReport {
        path: path.to_path_buf(),
        segments,
        edits,
        state,
        torn_tail,
        notes,
    }
}

fn render_file(out: &mut Out, indent: &str, f: &FileOut) -> anyhow::Result<()> {
    writeln!(
        out,
        "{indent}L{} table {}: {} bytes, keys \"{}\"..=\"{}\", versions {}..={}, {}, {}",
        f.level,
        f.number,
        f.size,
        f.smallest,
        f.largest,
        f.min_version,
        f.max_version,
        count(f.entries, "entry"),
        count(f.deletes, "delete")
    )?;
    Ok(())
}

fn render(r: &ManifestReport, out: &mut Out) -> anyhow::Result<()> {
    for s in &r.segments {
        writeln!(
            out,
            "segment {}: sequence {}, first LSN {}, {} bytes, {}",
            s.file.display(),
            s.sequence,
            s.first_lsn,
            s.file_bytes,
            count(s.chunks as u64, "chunk")
        )?;
    }
    for e in &r.edits {
        writeln!(
            out,
            "edit LSN {} at {} offset {}: {}",
            e.lsn,
            e.file.display(),
            e.offset,
            if e.full { "full snapshot" } else { "delta" }
        )?;
        for f in &e.added {
            render_file(out, "  add ", f)?;
        }
        for f in &e.removed {
            writeln!(out, "  remove L{} table {}", f.level, f.number)?;
        }
        for t in &e.tombstones_added {
            writeln!(
                out,
                "  add tombstone [\"{}\", \"{}\") @{}",
                t.start, t.end, t.version
            )?;
        }
        for t in &e.tombstones_removed {
            writeln!(
                out,
                "  remove tombstone [\"{}\", \"{}\") @{}",
                t.start, t.end, t.version
            )?;
        }
        writeln!(
            out,
            "  counters: next file number {}, last version {}, wal flushed LSN {}, applied index {}",
            e.next_file_number, e.last_version, e.wal_flushed_lsn, e.applied_index
        )?;
    }
    let s = &r.state;
    writeln!(
        out,
        "state after {}: {}, {}",
        count(r.edits.len() as u64, "edit"),
        count(s.files as u64, "table"),
        count(s.tombstones.len() as u64, "range tombstone")
    )?;
    for level in &s.levels {
        writeln!(
            out,
            "  L{}: {}",
            level.level,
            count(level.files.len() as u64, "table")
        )?;
        for f in &level.files {
            render_file(out, "    ", f)?;
        }
    }
    for t in &s.tombstones {
        writeln!(
            out,
            "  tombstone [\"{}\", \"{}\") @{}",
            t.start, t.end, t.version
        )?;
    }
    writeln!(
        out,
        "  next file number {}, last version {}, wal flushed LSN {}, applied index {}",
        s.next_file_number, s.last_version, s.wal_flushed_lsn, s.applied_index
    )?;
    for note in &r.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}
