//! What the machine offers: CPUs, memory, and the file system under a
//! directory. Read from /proc and /sys (this crate has no `unsafe`, so no
//! libc calls).

use std::path::{Path, PathBuf};

/// CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where a memory figure came from, for the explanation of derived values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// `MemTotal` of /proc/meminfo.
    MemTotal,
    /// The process's cgroup memory limit, lower than `MemTotal`.
    CgroupLimit,
    /// Given on the command line.
    Given,
}

impl std::fmt::Display for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemorySource::MemTotal => "MemTotal in /proc/meminfo",
            MemorySource::CgroupLimit => "the cgroup memory limit",
            MemorySource::Given => "--memory",
        })
    }
}

/// Memory this process can use: the smaller of `MemTotal` and the cgroup
/// limit (v2 `memory.max` or v1 `memory.limit_in_bytes`), if any.
pub fn memory() -> Option<(u64, MemorySource)> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_total(&text))?;
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|t| t.trim().parse::<u64>().ok())
    .min();
    Some(match limit {
        Some(limit) if limit < total => (limit, MemorySource::CgroupLimit),
        _ => (total, MemorySource::MemTotal),
    })
}

/// `MemTotal` in bytes from the text of /proc/meminfo.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line["MemTotal:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The mount holding a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// The mount holding `path` (the longest mount point that is a prefix of
/// its canonical form), from /proc/self/mountinfo.
pub fn mount_of(path: &Path) -> Option<Mount> {
    let path = std::fs::canonicalize(path).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_in(&text, &path)
}

fn mount_in(mountinfo: &str, path: &Path) -> Option<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // id parent major:minor root mount-point options [optional...] - type source super
            let (left, right) = line.split_once(" - ")?;
            let mount_point = PathBuf::from(unescape_octal(left.split(' ').nth(4)?));
            let mut right = right.split(' ');
            let fs_type = right.next()?.to_string();
            let device = right.next()?.to_string();
            Some(Mount {
                device,
                mount_point,
                fs_type,
            })
        })
        .filter(|m| path.starts_with(&m.mount_point))
        // The last of equally long mount points is the one on top.
        .fold(None, |best: Option<Mount>, m| match &best {
            Some(b) if b.mount_point.as_os_str().len() > m.mount_point.as_os_str().len() => best,
            _ => Some(m),
        })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 0:25 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684096k
31 27 0:26 / /srv/with\\040space rw - xfs /dev/vdb rw
";

    #[test]
    fn the_longest_mount_point_wins() {
        let m = mount_in(MOUNTINFO, Path::new("/dev/shm/x")).expect("found");
        assert_eq!((m.fs_type.as_str(), m.device.as_str()), ("tmpfs", "tmpfs"));
        let m = mount_in(MOUNTINFO, Path::new("/work/db")).expect("found");
        assert_eq!(m.mount_point, PathBuf::from("/"));
        assert_eq!(m.fs_type, "ext4");
        let m = mount_in(MOUNTINFO, Path::new("/srv/with space/db")).expect("found");
        assert_eq!(m.fs_type, "xfs", "octal escapes decoded");
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24684096 kB\nMemFree:        1 kB\n";
        assert_eq!(meminfo_total(text), Some(24684096 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn this_machine_has_cpus_memory_and_a_root_mount() {
        assert!(cpus() >= 1);
        let (bytes, _) = memory().expect("/proc/meminfo");
        assert!(bytes > 64 << 20, "{bytes}");
        assert!(mount_of(Path::new("/")).is_some());
    }
}
