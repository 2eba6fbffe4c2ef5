//! What the machine and the process look like beside each result: peak memory,
//! on-disk size, CPU count, kernel and filesystem.
//!
//! Peak memory is the kernel's RSS high-water mark (`VmHWM` in
//! /proc/self/status, the figure getrusage reports as `ru_maxrss`), read from
//! /proc because this crate forbids `unsafe` and a libc call needs it. Writing
//! `5` to /proc/self/clear_refs resets the mark, so each benchmark gets its
//! own peak rather than the process's.

use serde::Serialize;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Resets the RSS high-water mark; false if the kernel refused (the next peak
/// is then the process's since start).
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size in bytes since start or the last reset.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Size of a directory tree: (apparent bytes, allocated bytes as `du` counts).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DirBytes {
    pub apparent: u64,
    pub allocated: u64,
}

pub fn dir_bytes(dir: &Path) -> DirBytes {
    let mut total = DirBytes::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return total;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let sub = dir_bytes(&entry.path());
            total.apparent += sub.apparent;
            total.allocated += sub.allocated;
        } else {
            total.apparent += meta.len();
            total.allocated += meta.blocks() * 512;
        }
    }
    total
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub kernel: String,
    /// The mount holding the data directory: (device, mount point, fs type).
    pub filesystem: Option<(String, String, String)>,
}

pub fn machine(data_dir: &Path) -> Machine {
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: fs::read_to_string("/proc/version")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        filesystem: mount_of(data_dir),
    }
}

/// The longest mount point that is a prefix of `dir` (after canonicalising
/// the nearest existing ancestor).
fn mount_of(dir: &Path) -> Option<(String, String, String)> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let abs = fs::canonicalize(existing).ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next()?))
        })
        .filter(|(_, mnt, _)| abs.starts_with(mnt))
        .max_by_key(|(_, mnt, _)| mnt.len())
        .map(|(dev, mnt, ty)| (dev.to_string(), mnt.to_string(), ty.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_readable_and_dir_size_adds_up() {
        reset_peak_rss();
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("a"), [1u8; 1000]).expect("write");
        fs::write(dir.path().join("sub/b"), [1u8; 24]).expect("write");
        assert_eq!(dir_bytes(dir.path()).apparent, 1024);
        assert_eq!(dir_bytes(&dir.path().join("missing")).apparent, 0);
        // The mount holding the directory is found (`/` at worst).
        let m = machine(dir.path());
        let abs = fs::canonicalize(dir.path()).expect("canonicalize");
        assert!(m.nproc >= 1);
        assert!(
            m.filesystem
                .as_ref()
                .is_some_and(|(_, mount, _)| abs.starts_with(mount)),
            "{:?}",
            m.filesystem
        );
    }
}
