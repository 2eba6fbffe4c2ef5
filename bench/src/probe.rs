//! The device's own durable-write rate: 4 KiB O_DIRECT `pwrite` at offset 0
//! of a file whose block already exists, then `fdatasync`, in a loop. This is
//! the ceiling for one synchronous writer without group commit, so fillsync
//! with one writer is read against it. Plain std (no glommio) so the figure
//! does not depend on the code under test.

use crate::meter::Meter;
use anyhow::{Context, Result};
use serde::Serialize;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BLOCK_BYTES: usize = 4096;
const PROBE_FILE_NAME: &str = ".ferrisdb-bench-fsync-probe";

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub dir: PathBuf,
    pub block_bytes: usize,
    pub seconds: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub p50_micros: f64,
    pub p99_micros: f64,
    pub max_micros: f64,
}

impl ProbeResult {
    /// One line, printed by `fsync-probe` and beside fillsync results.
    pub fn line(&self) -> String {
        format!(
            "{:<12} : {:11.3} micros/op {} ops/sec; P50: {:.2} P99: {:.2} micros \
             (4 KiB O_DIRECT pwrite + fdatasync, {})",
            "fsync-probe",
            self.seconds * 1e6 / self.ops as f64,
            self.ops_per_sec as u64,
            self.p50_micros,
            self.p99_micros,
            self.dir.display()
        )
    }
}

/// Runs the probe in `dir` (created if missing) for about `secs` seconds.
pub fn run(dir: &Path, secs: f64) -> Result<ProbeResult> {
    fs::create_dir_all(dir).with_context(|| format!("create probe dir {}", dir.display()))?;
    let path = dir.join(PROBE_FILE_NAME);
    let result = probe_file(&path, Duration::from_secs_f64(secs));
    let _ = fs::remove_file(&path);
    let (meter, elapsed) = result?;
    Ok(ProbeResult {
        dir: dir.to_path_buf(),
        block_bytes: BLOCK_BYTES,
        seconds: elapsed.as_secs_f64(),
        ops: meter.ops,
        ops_per_sec: meter.ops as f64 / elapsed.as_secs_f64(),
        p50_micros: meter.quantile_micros(0.5),
        p99_micros: meter.quantile_micros(0.99),
        max_micros: meter.max_micros(),
    })
}

fn probe_file(path: &Path, duration: Duration) -> Result<(Meter, Duration)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .with_context(|| format!("open {} with O_DIRECT", path.display()))?;
    // O_DIRECT needs an aligned buffer: take the aligned 4 KiB inside 8 KiB.
    let mut backing = vec![0u8; 2 * BLOCK_BYTES];
    let skip = backing.as_ptr().align_offset(BLOCK_BYTES);
    let block = &mut backing[skip..skip + BLOCK_BYTES];
    block.fill(0xA5);
    // Allocate the block first so the loop measures overwrites (no metadata).
    file.write_all_at(block, 0)
        .with_context(|| format!("preallocate {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("fsync {}", path.display()))?;

    let mut meter = Meter::new();
    let start = Instant::now();
    let mut i = 0u8;
    while start.elapsed() < duration {
        i = i.wrapping_add(1);
        block[0] = i;
        let t = Instant::now();
        file.write_all_at(block, 0)
            .with_context(|| format!("pwrite {}", path.display()))?;
        file.sync_data()
            .with_context(|| format!("fdatasync {}", path.display()))?;
        meter.finish_op(t, 1, BLOCK_BYTES as u64);
    }
    Ok((meter, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_measures_some_syncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = run(dir.path(), 0.05).expect("probe runs");
        assert!(r.ops > 0 && r.ops_per_sec > 0.0);
        assert!(r.p99_micros >= r.p50_micros);
        assert!(!dir.path().join(PROBE_FILE_NAME).exists());
    }
}
