//! `ferrisdb inspect verify-dir`: every checksum of every file of a data
//! directory, and the manifest against the tables it names. Read-only; stops
//! at the first problem. Torn log tails and orphan tables are notes: recovery
//! cuts the former and deletes the latter.

use super::manifest::{self, LoadedManifest};
use super::segments::{self, LoadedLog, TornTail};
use super::{Out, Problem, count, print_json, render_error, sst, wal};
use anyhow::Context;
use ferrisdb_lsm::WAL_PREFIX;
use ferrisdb_lsm::manifest::MANIFEST_PREFIX;
use ferrisdb_lsm::sst::inspect::TableReport;
use ferrisdb_lsm::sst::{file_name, parse_file_name};
use ferrisdb_lsm::version::FileMeta;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize)]
struct VerifyReport {
    dir: PathBuf,
    ok: bool,
    files: Vec<FileLine>,
    notes: Vec<String>,
    summary: Summary,
    /// The first problem, as printed after `error: `.
    error: Option<String>,
    /// The same, with its parts, when it points into a file.
    problem: Option<Problem>,
}

#[derive(Debug, Serialize)]
struct FileLine {
    file: PathBuf,
    kind: &'static str,
    detail: String,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    files_checked: usize,
    manifest_segments: usize,
    wal_segments: usize,
    tables: usize,
    orphan_tables: usize,
    notes: usize,
}

/// Checks the directory, printing as it goes (text) or once at the end (JSON).
struct Verifier<'a> {
    dir: &'a Path,
    json: bool,
    out: &'a mut Out,
    report: VerifyReport,
}

pub fn run(dir: &Path, json: bool, out: &mut Out) -> anyhow::Result<()> {
    let mut v = Verifier {
        dir,
        json,
        out,
        report: VerifyReport {
            dir: dir.to_path_buf(),
            ..Default::default()
        },
    };
    let result = v.check_all();
    v.report.ok = result.is_ok();
    if let Err(e) = &result {
        v.report.error = Some(render_error(e));
        v.report.problem = e.downcast_ref::<Problem>().cloned();
    }
    let s = &v.report.summary;
    if v.json {
        print_json(v.out, &v.report)?;
    } else if result.is_ok() {
        writeln!(
            v.out,
            "verified {}: {}, {}, {} ({} orphaned); every checksum matches; {}",
            dir.display(),
            count(s.manifest_segments as u64, "manifest segment"),
            count(s.wal_segments as u64, "WAL segment"),
            count(s.tables as u64, "table"),
            s.orphan_tables,
            count(s.notes as u64, "note")
        )?;
    }
    result
}

/// Directory entries by what they are.
#[derive(Default)]
struct Listing {
    manifest: usize,
    wal: usize,
    tables: BTreeMap<u64, PathBuf>,
    others: Vec<PathBuf>,
}

impl Verifier<'_> {
    fn ok(&mut self, file: &Path, kind: &'static str, detail: String) -> anyhow::Result<()> {
        self.report.summary.files_checked += 1;
        if !self.json {
            writeln!(self.out, "ok: {}: {detail}", file.display())?;
        }
        self.report.files.push(FileLine {
            file: file.to_path_buf(),
            kind,
            detail,
        });
        Ok(())
    }

    fn note(&mut self, note: String) -> anyhow::Result<()> {
        self.report.summary.notes += 1;
        if !self.json {
            writeln!(self.out, "note: {note}")?;
        }
        self.report.notes.push(note);
        Ok(())
    }

    fn check_all(&mut self) -> anyhow::Result<()> {
        let listing = self.list()?;
        if listing.manifest == 0 {
            let what = "no manifest-*.log segment: not a FerrisDB data directory";
            return Err(Problem::new(self.dir, 0, what).into());
        }
        let manifest = manifest::replay(segments::load(self.dir, MANIFEST_PREFIX)?)?;
        self.report_manifest(&manifest)?;
        if listing.wal > 0 {
            self.check_wal(&manifest)?;
        } else {
            self.note(format!(
                "{}: no WAL segments (the engine runs with an external log, or never wrote)",
                self.dir.display()
            ))?;
        }
        self.check_tables(&manifest, &listing.tables)?;
        for other in &listing.others {
            self.note(format!("{}: not a FerrisDB file; ignored", other.display()))?;
        }
        Ok(())
    }

    fn list(&self) -> anyhow::Result<Listing> {
        let mut listing = Listing::default();
        let context = || format!("list data directory {}", self.dir.display());
        for entry in std::fs::read_dir(self.dir).with_context(context)? {
            let entry = entry.with_context(context)?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|_| path.is_file()) else {
                listing.others.push(path);
                continue;
            };
            if segments::parse_name(name, MANIFEST_PREFIX).is_some() {
                listing.manifest += 1;
            } else if segments::parse_name(name, WAL_PREFIX).is_some() {
                listing.wal += 1;
            } else if let Some(number) = parse_file_name(name) {
                listing.tables.insert(number, path);
            } else {
                listing.others.push(path);
            }
        }
        listing.others.sort();
        Ok(listing)
    }

    /// Notes for a torn tail and for segments recovery would remove.
    fn log_notes(&mut self, log: &LoadedLog) -> anyhow::Result<()> {
        if let Some(torn) = log.torn_tail() {
            self.note(TornTail::note(&torn))?;
        }
        for image in log.dropped_segments() {
            self.note(format!(
                "{} lies after the end of valid data: recovery will remove it",
                image.path.display()
            ))?;
        }
        Ok(())
    }

    fn report_manifest(&mut self, m: &LoadedManifest) -> anyhow::Result<()> {
        for (i, image) in m.log.images.iter().enumerate() {
            let edits = m.log.scan.records.iter().filter(|r| r.segment == i).count();
            let detail = format!(
                "manifest segment {}, first LSN {}, {}",
                image.sequence,
                m.log.scan.first_lsns[i],
                count(edits as u64, "edit")
            );
            self.ok(&image.path, "manifest", detail)?;
        }
        self.report.summary.manifest_segments = m.log.images.len();
        self.log_notes(&m.log)
    }

    fn check_wal(&mut self, m: &LoadedManifest) -> anyhow::Result<()> {
        let log = segments::load(self.dir, WAL_PREFIX)?;
        for r in log.records()? {
            wal::decode_batch(&log, &r)?;
        }
        // Flushes only remove segments wholly below the flushed LSN, so the
        // first segment left must start at or before the first unflushed record.
        let flushed = m.state.wal_flushed_lsn;
        if log.scan.first_lsns[0] > flushed.saturating_add(1) {
            let what = format!(
                "WAL starts at LSN {}, but the manifest has flushed only up to LSN {flushed}: records are missing",
                log.scan.first_lsns[0]
            );
            return Err(Problem::new(&log.images[0].path, 0, what).into());
        }
        let last = log.scan.next_lsn - 1;
        if last < flushed {
            // Flushes do not wait for the WAL, so after a crash with unsynced
            // writes the log may end before what tables hold; recovery copes.
            self.note(format!(
                "{}: the WAL ends at LSN {last}, before the manifest's flushed LSN {flushed}: those records are only in tables",
                self.dir.display()
            ))?;
        }
        for (i, image) in log.images.iter().enumerate() {
            let records = log.scan.records.iter().filter(|r| r.segment == i).count();
            let detail = format!(
                "WAL segment {}, first LSN {}, {}",
                image.sequence,
                log.scan.first_lsns[i],
                count(records as u64, "record")
            );
            self.ok(&image.path, "wal", detail)?;
        }
        self.report.summary.wal_segments = log.images.len();
        self.log_notes(&log)
    }

    fn check_tables(
        &mut self,
        m: &LoadedManifest,
        tables: &BTreeMap<u64, PathBuf>,
    ) -> anyhow::Result<()> {
        let named: BTreeMap<u64, (usize, &FileMeta)> = m
            .state
            .levels
            .all_files()
            .map(|(level, f)| (f.number, (level, &**f)))
            .collect();
        for (&number, &(level, _)) in &named {
            if !tables.contains_key(&number) {
                let what = format!("named by the manifest (L{level}) but missing");
                return Err(Problem::new(&self.dir.join(file_name(number)), 0, what).into());
            }
        }
        for (number, path) in tables {
            let Some(&(level, meta)) = named.get(number) else {
                self.report.summary.orphan_tables += 1;
                let verdict = match sst::load(path) {
                    Ok(_) => String::new(),
                    Err(e) => format!(" (it does not verify either: {})", render_error(&e)),
                };
                self.note(format!(
                    "{}: orphan table not named by the manifest; the engine deletes it on open{verdict}",
                    path.display()
                ))?;
                continue;
            };
            let (_, table) = sst::load(path)?;
            agree(path, level, meta, &table)?;
            let detail = format!(
                "L{level} table, {} in {}, agrees with the manifest",
                count(table.props.entries, "entry"),
                count(table.index.len() as u64, "data block")
            );
            self.ok(path, "sst", detail)?;
            self.report.summary.tables += 1;
        }
        Ok(())
    }
}

/// A table's properties must be what the manifest recorded when it added it.
fn agree(path: &Path, level: usize, meta: &FileMeta, t: &TableReport) -> Result<(), Problem> {
    if meta.size != t.file_bytes {
        let what = format!(
            "table is {} bytes, the manifest (L{level}) records {}",
            t.file_bytes, meta.size
        );
        return Err(Problem::new(path, t.file_bytes.min(meta.size), what));
    }
    let p = &t.props;
    let counters = [
        ("entries", meta.entries, p.entries),
        ("deletes", meta.deletes, p.deletes),
        ("min_version", meta.min_version, p.min_version),
        ("max_version", meta.max_version, p.max_version),
    ];
    let at = t.footer.props.offset;
    for (name, recorded, found) in counters {
        if recorded != found {
            let what = format!(
                "properties block: {name} is {found}, the manifest (L{level}) records {recorded}"
            );
            return Err(Problem::new(path, at, what));
        }
    }
    let keys = [
        ("smallest key", &meta.smallest, &p.smallest_key),
        ("largest key", &meta.largest, &p.largest_key),
    ];
    for (name, recorded, found) in keys {
        if recorded != found {
            let what = format!(
                "properties block: {name} is \"{}\", the manifest (L{level}) records \"{}\"",
                found.escape_ascii(),
                recorded.escape_ascii()
            );
            return Err(Problem::new(path, at, what));
        }
    }
    Ok(())
}
