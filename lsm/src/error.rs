use std::path::PathBuf;

/// Errors from the engine. Operating errors carry what happened and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Io(#[from] ferrisdb_io::Error),
    /// Bytes on disk failed a checksum.
    #[error("checksum mismatch in {what} of {} at offset {offset}: stored {expected:#010x}, computed {got:#010x}", path.display())]
    ChecksumMismatch {
        what: &'static str,
        path: PathBuf,
        offset: u64,
        expected: u32,
        got: u32,
    },
    /// Bytes on disk passed their checksum but make no sense (or a file is missing).
    #[error("corrupt {what} in {} at offset {offset}: {detail}", path.display())]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// An earlier write or sync failed: the engine refuses writes until reopened.
    #[error("engine poisoned by an earlier failure ({0}); reopen to recover")]
    Poisoned(String),
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge { len: usize, max: usize },
    #[error(
        "write batch of {len} bytes / {ops} operations exceeds the limit ({max_bytes} bytes, {max_ops} operations)"
    )]
    BatchTooLarge {
        len: usize,
        ops: usize,
        max_bytes: usize,
        max_ops: usize,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the engine is closed")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(
        what: &'static str,
        path: &std::path::Path,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            what,
            path: path.to_path_buf(),
            offset,
            detail: detail.into(),
        }
    }

    /// The file and offset an on-disk error points at, if it is one.
    pub fn location(&self) -> Option<(&std::path::Path, u64)> {
        match self {
            Error::ChecksumMismatch { path, offset, .. } | Error::Corrupt { path, offset, .. } => {
                Some((path, *offset))
            }
            Error::Io(ferrisdb_io::Error::Corrupt { path, offset, .. }) => Some((path, *offset)),
            _ => None,
        }
    }
}
