//! `ferrisdb inspect sst`: one table's footer, properties, index and filter,
//! and optionally every entry, with every block verified on the way.

use super::{Out, Problem, count, print_json, read_file};
use crate::escape::escape;
use ferrisdb_lsm::Kind;
use ferrisdb_lsm::sst::inspect::{BlockHandle, TableReport, parse_table, visit_entries};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to list beyond the summary.
#[derive(Debug, Clone, Copy)]
pub struct Show {
    pub verbose: bool,
    pub entries: bool,
}

#[derive(Debug, Serialize)]
struct SstReport {
    file: PathBuf,
    file_bytes: u64,
    footer: FooterOut,
    properties: PropertiesOut,
    index: IndexOut,
    filter: FilterOut,
    /// Present with `--entries`.
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<EntryOut>>,
}

#[derive(Debug, Serialize)]
struct HandleOut {
    offset: u64,
    len: u32,
}

impl From<BlockHandle> for HandleOut {
    fn from(h: BlockHandle) -> Self {
        HandleOut {
            offset: h.offset,
            len: h.len,
        }
    }
}

#[derive(Debug, Serialize)]
struct FooterOut {
    offset: u64,
    format_version: u32,
    entries: u64,
    filter: HandleOut,
    index: HandleOut,
    properties: HandleOut,
    pad_bytes: u64,
}

#[derive(Debug, Serialize)]
struct PropertiesOut {
    entries: u64,
    data_blocks: u64,
    deletes: u64,
    smallest_key: String,
    smallest_version: u64,
    largest_key: String,
    largest_version: u64,
    min_version: u64,
    max_version: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
}

#[derive(Debug, Serialize)]
struct IndexOut {
    count: usize,
    /// Present with `--verbose`.
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<IndexEntryOut>>,
}

#[derive(Debug, Serialize)]
struct IndexEntryOut {
    last_key: String,
    last_version: u64,
    offset: u64,
    len: u32,
}

#[derive(Debug, Serialize)]
struct FilterOut {
    bits: u64,
    hash_count: u32,
}

#[derive(Debug, Serialize)]
struct EntryOut {
    block: usize,
    key: String,
    version: u64,
    kind: &'static str,
    value_len: usize,
}

/// Reads and verifies a table; a defect is a [`Problem`] naming its offset.
pub fn load(path: &Path) -> anyhow::Result<(Vec<u8>, TableReport)> {
    let bytes = read_file(path, "sst file")?;
    let report = parse_table(&bytes, path).map_err(Problem::from_lsm)?;
    Ok((bytes, report))
}

pub fn run(path: &Path, show: Show, json: bool, out: &mut Out) -> anyhow::Result<()> {
    let (bytes, table) = load(path)?;
    let entries = if show.entries {
        let mut entries = Vec::with_capacity(table.props.entries.min(1 << 20) as usize);
        visit_entries(&bytes, path, &table, |e| {
            entries.push(EntryOut {
                block: e.block,
                key: escape(e.key),
                version: e.version,
                kind: kind_name(e.kind),
                value_len: e.value.len(),
            })
        })
        .map_err(Problem::from_lsm)?;
        Some(entries)
    } else {
        None
    };
    let report = build(path, &table, show, entries);
    if json {
        return print_json(out, &report);
    }
    render(&report, out)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Put => "put",
        Kind::Delete => "delete",
    }
}

fn build(path: &Path, t: &TableReport, show: Show, entries: Option<Vec<EntryOut>>) -> SstReport {
    let p = &t.props;
    SstReport {
        file: path.to_path_buf(),
        file_bytes: t.file_bytes,
        footer: FooterOut {
            offset: t.footer.offset,
            format_version: t.footer.format_version,
            entries: t.footer.entries,
            filter: t.footer.filter.into(),
            index: t.footer.index.into(),
            properties: t.footer.props.into(),
            pad_bytes: t.pad_bytes,
        },
        properties: PropertiesOut {
            entries: p.entries,
            data_blocks: p.data_blocks,
            deletes: p.deletes,
            smallest_key: escape(&p.smallest_key),
            smallest_version: p.smallest_version,
            largest_key: escape(&p.largest_key),
            largest_version: p.largest_version,
            min_version: p.min_version,
            max_version: p.max_version,
            raw_key_bytes: p.raw_key_bytes,
            raw_value_bytes: p.raw_value_bytes,
        },
        index: IndexOut {
            count: t.index.len(),
            entries: show.verbose.then(|| {
                t.index
                    .iter()
                    .map(|e| IndexEntryOut {
                        last_key: escape(&e.last_key),
                        last_version: e.last_version,
                        offset: e.block.offset,
                        len: e.block.len,
                    })
                    .collect()
            }),
        },
        filter: FilterOut {
            bits: t.filter.bits,
            hash_count: t.filter.hash_count,
        },
        entries,
    }
}

fn render(r: &SstReport, out: &mut Out) -> anyhow::Result<()> {
    let f = &r.footer;
    writeln!(out, "table {}: {} bytes", r.file.display(), r.file_bytes)?;
    writeln!(
        out,
        "footer at offset {}: format {}, {}, filter {}+{}, index {}+{}, properties {}+{}, {} pad bytes",
        f.offset,
        f.format_version,
        count(f.entries, "entry"),
        f.filter.offset,
        f.filter.len,
        f.index.offset,
        f.index.len,
        f.properties.offset,
        f.properties.len,
        f.pad_bytes
    )?;
    let p = &r.properties;
    writeln!(
        out,
        "properties: {}, {}, {}",
        count(p.entries, "entry"),
        count(p.data_blocks, "data block"),
        count(p.deletes, "delete")
    )?;
    writeln!(
        out,
        "  smallest \"{}\" @{}, largest \"{}\" @{}",
        p.smallest_key, p.smallest_version, p.largest_key, p.largest_version
    )?;
    writeln!(
        out,
        "  versions {}..={}, raw key bytes {}, raw value bytes {}",
        p.min_version, p.max_version, p.raw_key_bytes, p.raw_value_bytes
    )?;
    writeln!(out, "index: {}", count(r.index.count as u64, "entry"))?;
    for (i, e) in r.index.entries.iter().flatten().enumerate() {
        writeln!(
            out,
            "  [{i}] block at offset {} ({} bytes), last key \"{}\" @{}",
            e.offset, e.len, e.last_key, e.last_version
        )?;
    }
    writeln!(
        out,
        "filter: {} bits ({} bytes), {} hash functions",
        r.filter.bits,
        r.filter.bits / 8,
        r.filter.hash_count
    )?;
    if let Some(entries) = &r.entries {
        writeln!(out, "entries:")?;
        for e in entries {
            writeln!(
                out,
                "  block {} \"{}\" @{} {} value {} bytes",
                e.block, e.key, e.version, e.kind, e.value_len
            )?;
        }
    }
    writeln!(
        out,
        "verified: footer, filter, index, properties and {}; every checksum matches",
        count(r.index.count as u64, "data block")
    )?;
    Ok(())
}
