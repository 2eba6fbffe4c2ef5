use std::path::PathBuf;

/// What went wrong while measuring, reading or deriving; every variant says
/// where, and the message tells the operator what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory to measure does not exist.
    #[error("{} does not exist; create it on the device to measure (the node's data directory, usually)", path.display())]
    NoSuchDirectory { path: PathBuf },
    /// The path to measure is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// The directory cannot be written.
    #[error("{} is not writable: {source}", path.display())]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file system refuses direct I/O (O_DIRECT), which the engine needs.
    #[error(
        "{} ({fs}) does not support direct I/O (O_DIRECT through io_uring): {detail}; \
         FerrisDB needs a file system that does, such as ext4 or xfs",
        path.display()
    )]
    NoDirectIo {
        path: PathBuf,
        fs: String,
        detail: String,
    },
    /// The device ran out of space.
    #[error(
        "no space left on the device of {} for a {bytes}-byte test file; free some space or pass a smaller --size",
        path.display()
    )]
    NoSpace { path: PathBuf, bytes: u64 },
    /// Another I/O failure while measuring.
    #[error("{0}")]
    Io(#[from] ferrisdb_io::Error),
    /// A file of this crate (io_properties.toml) is malformed or out of range.
    #[error("{}: {detail}", path.display())]
    BadFile { path: PathBuf, detail: String },
    /// A file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Arguments out of their bounds.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
