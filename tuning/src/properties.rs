//! `io_properties.toml`: what `ferrisdb tune disk` measured, in a form the
//! node (`ferrisdb start`) and `ferrisdb tune config` read back. The format
//! is described in docs/operations.md ("io_properties.toml").

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file name the node looks for in its data directory.
pub const IO_PROPERTIES_FILE: &str = "io_properties.toml";
/// Version of the file format; a reader refuses others.
pub const FORMAT_VERSION: u32 = 1;

/// Measurements of one device, taken through O_DIRECT and io_uring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoProperties {
    pub format_version: u32,
    /// The directory measured.
    pub dir: PathBuf,
    /// File system type and device of its mount ("" if unknown).
    pub filesystem: String,
    pub device: String,
    /// When, in seconds since the Unix epoch.
    pub measured_unix_secs: u64,
    /// Size of the test file.
    pub file_bytes: u64,
    /// Length of each timed test.
    pub secs_per_test: f64,
    pub sequential: Sequential,
    /// 4 KiB random reads, one entry per queue depth, depths increasing.
    pub random_read: Vec<RandomRead>,
    pub fdatasync: Fdatasync,
    /// The WAL's durable group write: O_DIRECT | O_DSYNC. Absent in files
    /// written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsync_write: Option<DsyncWrite>,
    /// The fdatasync test through the engine's runtime. Absent in files
    /// written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_fdatasync: Option<RuntimeSync>,
}

/// Large sequential transfers over the whole test file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequential {
    pub block_bytes: u64,
    /// Operations kept in flight.
    pub depth: u32,
    pub write_bytes_per_sec: u64,
    pub read_bytes_per_sec: u64,
}

/// Random reads at one queue depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomRead {
    pub block_bytes: u64,
    pub depth: u32,
    pub iops: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// A 4 KiB write into an allocated block followed by `fdatasync`, in a
/// loop: what one durable write of the WAL costs without group commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fdatasync {
    pub block_bytes: u64,
    /// Write + fdatasync pairs per second.
    pub ops_per_sec: u64,
    /// Latency of the write alone.
    pub write_p50_us: f64,
    /// Latency of the fdatasync alone.
    pub sync_p50_us: f64,
    pub sync_p99_us: f64,
    pub sync_p999_us: f64,
    pub sync_max_us: f64,
}

/// A 4 KiB O_DIRECT | O_DSYNC write into an allocated block, in a loop: one
/// write that is durable when it completes, which is how the WAL writes a
/// group when nothing before it awaits a sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsyncWrite {
    pub block_bytes: u64,
    /// Durable writes per second.
    pub ops_per_sec: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// The fdatasync test run through the engine's own I/O path (its glommio
/// executor): what a durability step costs the engine, the runtime's
/// submissions and wake-ups included, each sync timed from the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSync {
    /// Write + fdatasync pairs per second.
    pub ops_per_sec: u64,
    pub sync_p50_us: f64,
    pub sync_p99_us: f64,
}

impl IoProperties {
    /// Reads and checks a file written by `ferrisdb tune disk`.
    pub fn read(path: &Path) -> Result<IoProperties> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::File {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks `text`; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<IoProperties> {
        let bad = |detail: String| Error::BadFile {
            path: path.to_path_buf(),
            detail,
        };
        let props: IoProperties =
            toml::from_str(text).map_err(|e| bad(e.message().trim().replace('\n', "; ")))?;
        props.check().map_err(bad)?;
        Ok(props)
    }

    /// The file's text: a header comment, then the TOML.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("plain data serializes");
        format!(
            "# Written by `ferrisdb tune disk`: measurements of the device under {} \
             through O_DIRECT and io_uring.\n\
             # Read by `ferrisdb start` (when it sits in the data directory or is named by \
             `io_properties`)\n# and by `ferrisdb tune config`. Format: docs/operations.md.\n\n{body}",
            self.dir.display()
        )
    }

    /// Writes the file (through a temporary name, so a reader never sees half of it).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("toml.tmp");
        let file_err = |op, source| Error::File {
            op,
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(&tmp, self.to_toml()).map_err(|e| file_err("write", e))?;
        std::fs::rename(&tmp, path).map_err(|e| file_err("rename into place", e))
    }

    /// The random-read row with the most IOPS.
    pub fn best_random_read(&self) -> &RandomRead {
        self.random_read
            .iter()
            .max_by_key(|r| r.iops)
            .expect("check() requires at least one row")
    }

    fn check(&self) -> Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version is {}; this FerrisDB reads version {FORMAT_VERSION} \
                 (run `ferrisdb tune disk` again)",
                self.format_version
            ));
        }
        let s = &self.sequential;
        if s.block_bytes == 0 || s.depth == 0 {
            return Err("sequential.block_bytes and sequential.depth must be positive".into());
        }
        if s.write_bytes_per_sec == 0 || s.read_bytes_per_sec == 0 {
            return Err("sequential bandwidths must be positive".into());
        }
        if self.random_read.is_empty() {
            return Err("no [[random_read]] rows".into());
        }
        for w in self.random_read.windows(2) {
            if w[0].depth >= w[1].depth {
                return Err("random_read depths must increase".into());
            }
        }
        if self.random_read.iter().any(|r| r.depth == 0 || r.iops == 0) {
            return Err("random_read depth and iops must be positive".into());
        }
        if self.fdatasync.ops_per_sec == 0 {
            return Err("fdatasync.ops_per_sec must be positive".into());
        }
        let latencies = [
            self.fdatasync.write_p50_us,
            self.fdatasync.sync_p50_us,
            self.fdatasync.sync_p99_us,
            self.fdatasync.sync_p999_us,
            self.fdatasync.sync_max_us,
        ];
        if self
            .dsync_write
            .as_ref()
            .is_some_and(|d| d.ops_per_sec == 0)
        {
            return Err("dsync_write.ops_per_sec must be positive".into());
        }
        if self
            .runtime_fdatasync
            .as_ref()
            .is_some_and(|r| r.ops_per_sec == 0)
        {
            return Err("runtime_fdatasync.ops_per_sec must be positive".into());
        }
        let rows = self.random_read.iter().flat_map(|r| [r.p50_us, r.p99_us]);
        let dsync = self
            .dsync_write
            .iter()
            .flat_map(|d| [d.p50_us, d.p99_us, d.p999_us, d.max_us]);
        let runtime = self
            .runtime_fdatasync
            .iter()
            .flat_map(|r| [r.sync_p50_us, r.sync_p99_us]);
        if latencies
            .into_iter()
            .chain(rows)
            .chain(dsync)
            .chain(runtime)
            .any(|us| !us.is_finite() || us < 0.0)
        {
            return Err("latencies must be finite and not negative".into());
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Figures in the range of this project's machines (DESIGN.md §9).
    pub(crate) fn sample() -> IoProperties {
        IoProperties {
            format_version: FORMAT_VERSION,
            dir: "/var/lib/ferrisdb".into(),
            filesystem: "ext4".into(),
            device: "/dev/vda".into(),
            measured_unix_secs: 1_764_000_000,
            file_bytes: 1 << 30,
            secs_per_test: 3.0,
            sequential: Sequential {
                block_bytes: 1 << 20,
                depth: 4,
                write_bytes_per_sec: 1_500_000_000,
                read_bytes_per_sec: 800_000_000,
            },
            random_read: [(1, 8_000), (4, 25_000), (16, 45_000), (64, 48_000)]
                .into_iter()
                .map(|(depth, iops)| RandomRead {
                    block_bytes: 4096,
                    depth,
                    iops,
                    p50_us: 100.0,
                    p99_us: 300.0,
                })
                .collect(),
            fdatasync: Fdatasync {
                block_bytes: 4096,
                ops_per_sec: 7_000,
                write_p50_us: 40.0,
                sync_p50_us: 90.0,
                sync_p99_us: 400.0,
                sync_p999_us: 900.0,
                sync_max_us: 3000.0,
            },
            dsync_write: Some(DsyncWrite {
                block_bytes: 4096,
                ops_per_sec: 8_000,
                p50_us: 110.0,
                p99_us: 250.0,
                p999_us: 600.0,
                max_us: 2500.0,
            }),
            runtime_fdatasync: Some(RuntimeSync {
                ops_per_sec: 6_500,
                sync_p50_us: 130.0,
                sync_p99_us: 450.0,
            }),
        }
    }

    #[test]
    fn written_file_reads_back_equal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(IO_PROPERTIES_FILE);
        let props = sample();
        props.write(&path).expect("write");
        assert_eq!(IoProperties::read(&path).expect("read"), props);
        assert_eq!(props.best_random_read().depth, 64);
    }

    #[test]
    fn a_file_from_before_dsync_write_is_still_read() {
        let mut old = sample();
        old.dsync_write = None;
        old.runtime_fdatasync = None;
        let text = old.to_toml();
        assert!(!text.contains("dsync_write"), "{text}");
        assert!(!text.contains("runtime_fdatasync"), "{text}");
        let path = Path::new("/x/io_properties.toml");
        assert_eq!(IoProperties::parse(path, &text).expect("read"), old);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let path = Path::new("/x/io_properties.toml");
        let text = sample().to_toml();
        for (from, to, want) in [
            (
                "format_version = 1",
                "format_version = 2",
                "format_version is 2",
            ),
            ("depth = 16", "depth = 1", "depths must increase"),
            ("iops = 8000", "iops = 0", "must be positive"),
            (
                "format_version = 1",
                "format_version = 1\nextra = 3",
                "unknown field `extra`",
            ),
            ("iops = 8000", "iops = \"fast\"", "invalid type"),
            (
                "ops_per_sec = 8000",
                "ops_per_sec = 0",
                "dsync_write.ops_per_sec",
            ),
            ("p999_us = 600.0", "p999_us = -1.0", "not negative"),
            (
                "ops_per_sec = 6500",
                "ops_per_sec = 0",
                "runtime_fdatasync.ops_per_sec",
            ),
            ("sync_p99_us = 450.0", "sync_p99_us = nan", "not negative"),
        ] {
            assert!(text.contains(from), "{from} in {text}");
            let e = IoProperties::parse(path, &text.replacen(from, to, 1))
                .expect_err(want)
                .to_string();
            assert!(e.starts_with("/x/io_properties.toml: "), "{e}");
            assert!(e.contains(want), "{want}: {e}");
        }
        let missing = IoProperties::read(Path::new("/nonexistent/io_properties.toml"))
            .expect_err("missing")
            .to_string();
        assert!(
            missing.starts_with("read /nonexistent/io_properties.toml: "),
            "{missing}"
        );
    }
}
