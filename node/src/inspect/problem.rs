//! A defect found in a file, and how engine and I/O errors become one.

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// What is wrong and where; printed as `<file>: offset <N>: <what>`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub offset: u64,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: offset {}: {}",
            self.file.display(),
            self.offset,
            self.what
        )
    }
}

impl std::error::Error for Problem {}

impl Problem {
    pub fn new(file: &Path, offset: u64, what: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            offset,
            what: what.into(),
        }
    }

    /// An engine error that points at a file and offset becomes a problem
    /// there; any other stays as it is.
    pub fn from_lsm(err: ferrisdb_lsm::Error) -> anyhow::Error {
        match err.location() {
            Some((file, offset)) => Problem::new(file, offset, lsm_detail(&err)).into(),
            None => err.into(),
        }
    }

    /// Same for an I/O-layer error (log scans report corruption this way).
    pub fn from_io(err: ferrisdb_io::Error) -> anyhow::Error {
        match &err {
            ferrisdb_io::Error::Corrupt { path, offset, .. } => {
                Problem::new(path, *offset, io_detail(&err)).into()
            }
            _ => err.into(),
        }
    }
}

/// What an engine error says, without where. Batch and edit decoders label
/// their errors with an LSN in the offset field, so callers that know the
/// record's offset build the problem from this.
pub fn lsm_detail(err: &ferrisdb_lsm::Error) -> String {
    use ferrisdb_lsm::Error as E;
    match err {
        E::ChecksumMismatch {
            what,
            expected,
            got,
            ..
        } => format!("{what}: checksum mismatch: stored {expected:#010x}, computed {got:#010x}"),
        E::Corrupt { what, detail, .. } => format!("{what}: {detail}"),
        E::Io(e) => io_detail(e),
        other => other.to_string(),
    }
}

fn io_detail(err: &ferrisdb_io::Error) -> String {
    match err {
        ferrisdb_io::Error::Corrupt { what, detail, .. } => format!("{what}: {detail}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_offset_and_what() {
        let p = Problem::new(Path::new("/d/1.sst"), 4096, "data block: bad");
        assert_eq!(p.to_string(), "/d/1.sst: offset 4096: data block: bad");
    }
}
