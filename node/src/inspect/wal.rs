//! `ferrisdb inspect wal`: the write-ahead log's segments, chunks and
//! records, each record decoded as a write batch.

use super::problem::lsm_detail;
use super::segments::{self, ChunkInfo, LoadedLog, RecordView, TornTail};
use super::{Out, Problem, count, print_json};
use crate::escape::escape;
use ferrisdb_io::log::Lsn;
use ferrisdb_lsm::batch::Op;
use ferrisdb_lsm::{Version, WAL_PREFIX, WriteBatch};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
struct WalReport {
    path: PathBuf,
    segments: Vec<SegmentOut>,
    records: u64,
    next_lsn: Lsn,
    torn_tail: Option<TornTail>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SegmentOut {
    file: PathBuf,
    sequence: u64,
    first_lsn: Lsn,
    file_bytes: u64,
    /// Lies after a torn tail: recovery deletes it.
    removed_by_recovery: bool,
    chunks: Vec<ChunkOut>,
}

#[derive(Debug, Serialize)]
struct ChunkOut {
    #[serde(flatten)]
    chunk: ChunkInfo,
    records: Vec<RecordOut>,
}

#[derive(Debug, Serialize)]
struct RecordOut {
    lsn: Lsn,
    /// Offset of the record header in its segment.
    offset: u64,
    /// Payload bytes.
    len: usize,
    batch: BatchOut,
}

#[derive(Debug, Serialize)]
struct BatchOut {
    version: Version,
    op_count: usize,
    ops: Vec<OpOut>,
}

/// One operation with keys and values escaped and cut short (see [`escape`]).
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpOut {
    Put {
        key: String,
        key_len: usize,
        value: String,
        value_len: usize,
    },
    Delete {
        key: String,
        key_len: usize,
    },
    DeleteRange {
        start: String,
        start_len: usize,
        end: String,
        end_len: usize,
    },
}

/// Decodes a WAL record as a write batch; a failure names the record's offset.
pub fn decode_batch(log: &LoadedLog, r: &RecordView<'_>) -> anyhow::Result<(Version, WriteBatch)> {
    let file = &log.images[r.segment].path;
    WriteBatch::decode(r.payload, file, r.lsn)
        .map_err(|e| Problem::new(file, r.offset, lsm_detail(&e)).into())
}

pub fn run(path: &Path, json: bool, out: &mut Out) -> anyhow::Result<()> {
    let log = segments::load(path, WAL_PREFIX)?;
    let report = build(path, &log)?;
    if json {
        return print_json(out, &report);
    }
    render(&report, out)
}

fn build(path: &Path, log: &LoadedLog) -> anyhow::Result<WalReport> {
    let records = log.records()?;
    let mut next = 0;
    let mut segments = Vec::with_capacity(log.images.len());
    for (i, image) in log.images.iter().enumerate() {
        let mut chunks = Vec::new();
        for chunk in log.chunks(i) {
            let end_lsn = chunk.first_lsn + u64::from(chunk.record_count);
            let mut outs = Vec::with_capacity(chunk.record_count as usize);
            while let Some(r) = records
                .get(next)
                .filter(|r| r.segment == i && r.lsn < end_lsn)
            {
                outs.push(record_out(log, r)?);
                next += 1;
            }
            chunks.push(ChunkOut {
                chunk,
                records: outs,
            });
        }
        segments.push(SegmentOut {
            file: image.path.clone(),
            sequence: image.sequence,
            first_lsn: log.scan.first_lsns[i],
            file_bytes: image.bytes.len() as u64,
            removed_by_recovery: i > log.scan.end.0,
            chunks,
        });
    }
    assert_eq!(
        next,
        records.len(),
        "every verified record lies in a verified chunk"
    );
    let torn_tail = log.torn_tail();
    let mut notes: Vec<String> = torn_tail.iter().map(TornTail::note).collect();
    for image in log.dropped_segments() {
        notes.push(format!(
            "{} lies after the end of valid data: recovery will remove it",
            image.path.display()
        ));
    }
    Ok(WalReport {
        path: path.to_path_buf(),
        segments,
        records: records.len() as u64,
        next_lsn: log.scan.next_lsn,
        torn_tail,
        notes,
    })
}

fn record_out(log: &LoadedLog, r: &RecordView<'_>) -> anyhow::Result<RecordOut> {
    let (version, batch) = decode_batch(log, r)?;
    let ops = batch
        .ops()
        .iter()
        .map(|op| match op {
            Op::Put { key, value } => OpOut::Put {
                key: escape(key),
                key_len: key.len(),
                value: escape(value),
                value_len: value.len(),
            },
            Op::Delete { key } => OpOut::Delete {
                key: escape(key),
                key_len: key.len(),
            },
            Op::DeleteRange { start, end } => OpOut::DeleteRange {
                start: escape(start),
                start_len: start.len(),
                end: escape(end),
                end_len: end.len(),
            },
        })
        .collect();
    Ok(RecordOut {
        lsn: r.lsn,
        offset: r.offset,
        len: r.payload.len(),
        batch: BatchOut {
            version,
            op_count: batch.len(),
            ops,
        },
    })
}

fn render(report: &WalReport, out: &mut Out) -> anyhow::Result<()> {
    for s in &report.segments {
        writeln!(
            out,
            "segment {}: sequence {}, first LSN {}, {} bytes{}",
            s.file.display(),
            s.sequence,
            s.first_lsn,
            s.file_bytes,
            if s.removed_by_recovery {
                " (after the end of valid data)"
            } else {
                ""
            }
        )?;
        for c in &s.chunks {
            let ChunkInfo {
                offset,
                first_lsn,
                record_count,
                durable_lsn,
                body_bytes,
            } = c.chunk;
            writeln!(
                out,
                "  chunk at offset {offset}: first LSN {first_lsn}, {}, durable LSN {durable_lsn}, {body_bytes} body bytes",
                count(record_count, "record")
            )?;
            for r in &c.records {
                writeln!(
                    out,
                    "    record LSN {} at offset {}, {} bytes: batch version {}, {}",
                    r.lsn,
                    r.offset,
                    r.len,
                    r.batch.version,
                    count(r.batch.op_count as u64, "op")
                )?;
                for op in &r.batch.ops {
                    match op {
                        OpOut::Put { key, value, .. } => {
                            writeln!(out, "      put \"{key}\" = \"{value}\"")?
                        }
                        OpOut::Delete { key, .. } => writeln!(out, "      delete \"{key}\"")?,
                        OpOut::DeleteRange { start, end, .. } => {
                            writeln!(out, "      delete_range [\"{start}\", \"{end}\")")?
                        }
                    }
                }
            }
        }
    }
    writeln!(
        out,
        "wal: {}, {}, next LSN {}",
        count(report.segments.len() as u64, "segment"),
        count(report.records, "record"),
        report.next_lsn
    )?;
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}
