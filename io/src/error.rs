use std::path::PathBuf;

/// Errors from the I/O layer. Every variant says what happened and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Os {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bytes read back from disk failed a checksum or structure check.
    #[error("corrupt {what} in {} at offset {offset}: {detail}", path.display())]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// An earlier write or sync failed; the owner must be reopened (fail closed).
    #[error("poisoned by an earlier I/O failure ({0}); reopen to recover")]
    Poisoned(String),
    /// A record larger than the log accepts.
    #[error("record of {len} bytes exceeds the log limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    /// A caller passed arguments that break the API contract (misaligned I/O, bad options).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn os(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Os {
            op,
            path: path.into(),
            source,
        }
    }
}
