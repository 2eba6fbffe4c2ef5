//! A segmented log (the WAL or the manifest) loaded from a file or a
//! directory, verified by io's pure `scan_images`, and walked chunk by chunk
//! for display.

use super::{Problem, read_file};
use anyhow::Context;
use ferrisdb_io::log::format::{
    FIRST_CHUNK_OFFSET, RECORD_HEADER_BYTES, SegmentHeader, decode_chunk,
};
use ferrisdb_io::log::{Lsn, Scan, SegmentImage, scan_images};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Every segment of one log, read and verified.
pub struct LoadedLog {
    pub images: Vec<SegmentImage>,
    pub scan: Scan,
}

/// One verified record: where it is and its payload.
pub struct RecordView<'a> {
    pub lsn: Lsn,
    pub segment: usize,
    /// Offset of the record's header in its segment.
    pub offset: u64,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, Serialize)]
pub struct ChunkInfo {
    pub offset: u64,
    pub first_lsn: Lsn,
    pub record_count: u32,
    pub durable_lsn: Lsn,
    pub body_bytes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
}

impl TornTail {
    pub fn note(&self) -> String {
        format!(
            "torn tail at {} offset {}: recovery will cut it",
            self.file.display(),
            self.offset
        )
    }
}

/// Sequence number of a segment named `{prefix}-{sequence}.log`.
pub fn parse_name(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?
        .strip_prefix('-')?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// Segments of `prefix` in `dir`, sorted by sequence.
pub fn list(dir: &Path, prefix: &str) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("list directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("list directory {}", dir.display()))?;
        let name = entry.file_name();
        if let Some(seq) = name.to_str().and_then(|n| parse_name(n, prefix)) {
            found.push((seq, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Loads the log at `path`: one segment file, or every `{prefix}-*.log` of a
/// directory. A file whose name is not a segment name takes its sequence
/// from its header.
pub fn load(path: &Path, prefix: &str) -> anyhow::Result<LoadedLog> {
    let found: Vec<(Option<u64>, PathBuf)> = if path.is_dir() {
        let found = list(path, prefix)?;
        if found.is_empty() {
            anyhow::bail!(
                "{}: no {prefix}-*.log segments in this directory",
                path.display()
            );
        }
        found
            .into_iter()
            .map(|(seq, file)| (Some(seq), file))
            .collect()
    } else {
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| parse_name(n, prefix));
        vec![(named, path.to_path_buf())]
    };
    let mut images = Vec::with_capacity(found.len());
    for (sequence, file) in found {
        let bytes = read_file(&file, &format!("{prefix} segment"))?;
        let sequence = match sequence {
            Some(sequence) => sequence,
            None => SegmentHeader::decode(&bytes)
                .map_err(|e| Problem::new(&file, 0, e))?
                .sequence
                .get(),
        };
        images.push(SegmentImage {
            sequence,
            path: file,
            bytes,
        });
    }
    from_images(images)
}

/// Verifies already-read segments (sorted by sequence, at least one).
pub fn from_images(images: Vec<SegmentImage>) -> anyhow::Result<LoadedLog> {
    assert!(!images.is_empty(), "callers pass at least one segment");
    let scan = scan_images(&images).map_err(Problem::from_io)?;
    Ok(LoadedLog { images, scan })
}

impl LoadedLog {
    pub fn torn_tail(&self) -> Option<TornTail> {
        self.scan.cut_at.as_ref().map(|(file, offset)| TornTail {
            file: file.clone(),
            offset: *offset,
        })
    }

    /// Segments after the end of valid data: recovery removes them.
    pub fn dropped_segments(&self) -> &[SegmentImage] {
        &self.images[self.scan.end.0 + 1..]
    }

    /// Every valid record in LSN order.
    pub fn records(&self) -> anyhow::Result<Vec<RecordView<'_>>> {
        let mut out = Vec::with_capacity(self.scan.records.len());
        for r in &self.scan.records {
            let image = &self.images[r.segment];
            let start = r.offset as usize;
            let payload = image
                .bytes
                .get(start..start + r.len as usize)
                .ok_or_else(|| {
                    Problem::new(
                        &image.path,
                        r.offset,
                        "record runs past the end of the file",
                    )
                })?;
            out.push(RecordView {
                lsn: r.lsn,
                segment: r.segment,
                offset: r.offset - RECORD_HEADER_BYTES as u64,
                payload,
            });
        }
        Ok(out)
    }

    /// The valid chunks of segment `i`, in file order.
    pub fn chunks(&self, i: usize) -> Vec<ChunkInfo> {
        let (end_segment, end_offset) = self.scan.end;
        let mut out = Vec::new();
        if i > end_segment {
            return out;
        }
        let bytes = &self.images[i].bytes;
        let mut offset = FIRST_CHUNK_OFFSET;
        while i < end_segment || offset < end_offset {
            let Ok(chunk) = decode_chunk(bytes, offset) else {
                break;
            };
            let h = &chunk.header;
            out.push(ChunkInfo {
                offset,
                first_lsn: h.first_lsn.get(),
                record_count: h.record_count.get(),
                durable_lsn: h.durable_lsn.get(),
                body_bytes: h.body_len.get(),
            });
            offset += chunk.span();
        }
        out
    }
}
