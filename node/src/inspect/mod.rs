//! `ferrisdb inspect`: read-only, offline views of a data directory's files.
//!
//! Files are read whole with `std::fs::read` (never through glommio, never
//! written). Every decoder below works on untrusted bytes: a defect becomes a
//! [`Problem`] naming the file and offset, never a panic.

mod manifest;
mod problem;
mod segments;
mod sst;
mod verify;
mod wal;

pub use problem::Problem;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use std::io::{BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// A WAL segment (`wal-NNNNNNNNNNNNNNNNNNNN.log`) or every WAL segment of a directory.
    Wal {
        /// A `wal-*.log` segment file or a data directory.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One SSTable: footer, properties, index and filter, with every block verified.
    Sst {
        /// An `NNNNNNNNNNNNNNNNNNNN.sst` table file.
        path: PathBuf,
        /// Also list every index entry.
        #[arg(long)]
        verbose: bool,
        /// Also list every entry (key, version, kind, value length).
        #[arg(long)]
        entries: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The manifest of a data directory (or one `manifest-*.log` segment): every edit and the final state.
    Manifest {
        /// A data directory or one `manifest-*.log` segment file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verifies every checksum of every file in a data directory and that the
    /// manifest's tables exist and agree with it; stops at the first problem.
    ///
    /// Prints one line per file and a summary; on the first problem prints
    /// `error: <file>: offset <N>: <what>` and exits with status 1. Torn log
    /// tails and orphan tables are notes: recovery cuts and deletes them.
    VerifyDir {
        /// The data directory.
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Buffered standard output; write errors (a closed pipe) are returned, not panics.
pub type Out = BufWriter<StdoutLock<'static>>;

pub fn run(cmd: InspectCommand) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let result = match cmd {
        InspectCommand::Wal { path, json } => wal::run(&path, json, &mut out),
        InspectCommand::Sst {
            path,
            verbose,
            entries,
            json,
        } => sst::run(&path, sst::Show { verbose, entries }, json, &mut out),
        InspectCommand::Manifest { path, json } => manifest::run(&path, json, &mut out),
        InspectCommand::VerifyDir { dir, json } => verify::run(&dir, json, &mut out),
    };
    // Whatever was printed before a problem is part of the answer.
    let flushed = out.flush().context("write to standard output");
    result?;
    flushed?;
    Ok(ExitCode::SUCCESS)
}

/// The line `main` prints after `error: `: a [`Problem`] as
/// `<file>: offset <N>: <what>`, anything else with its contexts and
/// causes, `: `-separated. A cause its error's message already ends with
/// (an I/O error that shows its OS error and also gives it as its source)
/// is shown once.
pub fn render_error(err: &anyhow::Error) -> String {
    if let Some(problem) = err.downcast_ref::<Problem>() {
        return problem.to_string();
    }
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// True when standard output was closed under us (`ferrisdb inspect ... | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Reads a whole file; `what` names it in the error ("sst file").
pub fn read_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("read {what} {}", path.display()))
}

pub fn print_json(out: &mut Out, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("write JSON")?;
    writeln!(out)?;
    Ok(())
}

/// `n` followed by `word`, in the plural unless `n` is 1 ("entry" becomes
/// "entries", anything else takes an `s`).
pub fn count(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    match word.strip_suffix('y') {
        _ if n == 1 => format!("1 {word}"),
        Some(stem) => format!("{n} {stem}ies"),
        None => format!("{n} {word}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::{count, render_error};
    use anyhow::Context;

    #[test]
    fn counts_are_pluralized() {
        assert_eq!(count(1u64, "entry"), "1 entry");
        assert_eq!(count(3u64, "entry"), "3 entries");
        assert_eq!(count(0u64, "record"), "0 records");
    }

    #[test]
    fn an_error_line_shows_each_cause_once() {
        let full = std::io::Error::from_raw_os_error(28);
        let err = ferrisdb_io::Error::Os {
            op: "write",
            path: "/d/wal.tmp".into(),
            source: full,
        };
        let err = Err::<(), _>(err).context("open shard 0 in /d").unwrap_err();
        assert_eq!(
            render_error(&err),
            "open shard 0 in /d: write /d/wal.tmp: No space left on device (os error 28)"
        );
        let err = Err::<(), _>(std::io::Error::other("denied"))
            .context("read config")
            .unwrap_err();
        assert_eq!(render_error(&err), "read config: denied");
    }
}
