//! The shard layout of a data directory: how many shards, their key ranges,
//! and which core serves each. Written once at first start (`SHARDS.json`);
//! later starts keep the shard count and ranges and only re-spread the
//! shards over the cores they are given.

use crate::escape::{escape_all, unescape};
use anyhow::{Context, bail};
use ferrisdb_proto::{ShardInfo, ShardMap};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const LAYOUT_FILE: &str = "SHARDS.json";
/// Boundaries escaped as `ferrisdb shell` prints keys.
const LAYOUT_FORMAT: u32 = 2;
/// The first format number, written with hex boundaries by the first
/// builds and with escaped ones later (the switch did not bump it). Still
/// read, telling the two apart where possible; rewritten as format 2.
const LAYOUT_FORMAT_1: u32 = 1;
/// Most shards a node holds (each has its own engine and files).
pub const SHARDS_MAX: u32 = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    format: u32,
    /// Start keys of shards 1..n, escaped as `ferrisdb shell` prints keys
    /// (`\xHH` for bytes that are not printable ASCII); shard 0 starts at
    /// the empty key.
    boundaries: Vec<String>,
    /// Bumped whenever the shard-to-core assignment changes.
    map_version: u64,
    /// Core count the assignment was made for.
    cores: usize,
}

/// Where shard `id` keeps its files.
pub fn shard_dir(data_dir: &Path, id: u32) -> PathBuf {
    data_dir.join("shards").join(format!("{id:05}"))
}

/// Evenly spaced two-byte boundaries for `count` shards.
fn initial_boundaries(count: u32) -> Vec<Vec<u8>> {
    (1..count)
        .map(|i| {
            (((u64::from(i) << 16) / u64::from(count)) as u16)
                .to_be_bytes()
                .to_vec()
        })
        .collect()
}

/// Core serving shard `id` of `count` when there are `cores` cores:
/// contiguous runs of shards per core, so a core's ranges are adjacent.
fn core_of(id: u32, count: u32, cores: usize) -> u32 {
    (u64::from(id) * cores as u64 / u64::from(count)) as u32
}

/// Reads the layout of `data_dir`, or creates it with `cores *
/// shards_per_core` shards, and returns the shard map for `cores` cores.
pub fn open_or_create(
    data_dir: &Path,
    cores: usize,
    shards_per_core: u32,
    split_keys: &[Vec<u8>],
    base_port: u16,
) -> anyhow::Result<ShardMap> {
    let path = data_dir.join(LAYOUT_FILE);
    // Written only when created or changed: a plain restart reads it.
    let mut changed = false;
    let mut file = if path.exists() {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut file: LayoutFile = serde_json::from_str(&text)
            .with_context(|| format!("parse shard layout {}", path.display()))?;
        match file.format {
            LAYOUT_FORMAT => {}
            LAYOUT_FORMAT_1 => {
                file.boundaries = format_1_boundaries(&file.boundaries)
                    .with_context(|| format!("shard layout {} (format 1)", path.display()))?;
                file.format = LAYOUT_FORMAT;
                changed = true;
            }
            other => bail!(
                "shard layout {} has format {other}; this build reads formats {LAYOUT_FORMAT_1} and {LAYOUT_FORMAT}",
                path.display()
            ),
        }
        let asked: Vec<String> = split_keys.iter().map(|k| escape_all(k)).collect();
        if !split_keys.is_empty() && asked != file.boundaries {
            tracing::warn!(
                "split_keys ignored: the shard layout was fixed when the data directory was created"
            );
        }
        file
    } else {
        let boundaries = if split_keys.is_empty() {
            let count = (cores as u32).saturating_mul(shards_per_core);
            if count == 0 || count > SHARDS_MAX {
                bail!("{count} shards requested; a node holds 1..={SHARDS_MAX}");
            }
            initial_boundaries(count)
                .iter()
                .map(|b| escape_all(b))
                .collect()
        } else {
            split_keys.iter().map(|k| escape_all(k)).collect()
        };
        changed = true;
        LayoutFile {
            format: LAYOUT_FORMAT,
            boundaries,
            map_version: 1,
            cores,
        }
    };
    if file.cores != cores {
        file.cores = cores;
        file.map_version += 1;
        changed = true;
    }
    if changed {
        write_atomically(&path, serde_json::to_string_pretty(&file)?.as_bytes())?;
    }
    build_map(&file, base_port).with_context(|| format!("shard layout {}", path.display()))
}

/// Format 1's boundaries as format 2 writes them. A hex-era file is
/// recognised when its boundaries are not valid escaped keys, or when they
/// are the hex of the default split; escaped-era boundaries that are not
/// also valid hex are taken as they are. Anything else (e.g. split keys
/// `1000,2000`, hex and text alike) is refused rather than guessed: a wrong
/// guess would move every shard boundary.
fn format_1_boundaries(boundaries: &[String]) -> anyhow::Result<Vec<String>> {
    let hex: Option<Vec<Vec<u8>>> = boundaries.iter().map(|b| unhex(b)).collect();
    let escaped: Option<Vec<Vec<u8>>> = boundaries.iter().map(|b| unescape(b).ok()).collect();
    let default_split = initial_boundaries(boundaries.len() as u32 + 1);
    let keys = match (hex, escaped) {
        (Some(keys), None) => keys,
        (None, Some(keys)) => keys,
        (Some(keys), Some(_)) if keys == default_split => keys,
        (None, None) => bail!("a boundary is neither hex nor an escaped key"),
        (Some(_), Some(_)) => bail!(
            "the boundaries read both as hex and as escaped keys; rewrite the file as format 2 \
             (boundaries escaped as `ferrisdb shell` prints keys) after checking which was meant"
        ),
    };
    Ok(keys.iter().map(|k| escape_all(k)).collect())
}

fn build_map(file: &LayoutFile, base_port: u16) -> anyhow::Result<ShardMap> {
    let mut starts = vec![Vec::new()];
    for b in &file.boundaries {
        starts.push(unescape(b).map_err(|e| anyhow::anyhow!("bad boundary: {e}"))?);
    }
    let count = starts.len() as u32;
    let cores = file.cores;
    let shards = (0..count)
        .map(|id| ShardInfo {
            id,
            start: starts[id as usize].clone(),
            end: starts.get(id as usize + 1).cloned(),
            core: core_of(id, count, cores),
        })
        .collect();
    let core_ports = (0..cores)
        .map(|i| base_port.saturating_add(i as u16))
        .collect();
    let map = ShardMap {
        version: file.map_version,
        core_ports,
        shards,
    };
    if !map.is_well_formed() {
        bail!("boundaries are not strictly increasing");
    }
    Ok(map)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename {} into place", tmp.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("sync {}", dir.display()))?;
    }
    Ok(())
}

/// Decodes a format-1 boundary.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_layout_covers_the_key_space_and_survives_a_core_count_change() {
        let dir = tempfile::tempdir().unwrap();
        let map = open_or_create(dir.path(), 2, 4, &[], 7400).unwrap();
        assert_eq!(map.shards.len(), 8);
        assert!(map.is_well_formed());
        assert_eq!(map.core_ports, vec![7400, 7401]);
        assert_eq!(map.shard_for(b"").unwrap().id, 0);
        assert_eq!(map.shard_for(&[0xff; 8]).unwrap().id, 7);
        assert_eq!(map.shards.iter().filter(|s| s.core == 1).count(), 4);
        // Restart with one core: same shards, all on core 0, new map version.
        let again = open_or_create(dir.path(), 1, 9, &[], 7400).unwrap();
        assert_eq!(again.shards.len(), 8);
        assert!(again.shards.iter().all(|s| s.core == 0));
        assert!(again.version > map.version);
    }

    #[test]
    fn split_keys_set_the_boundaries_of_a_new_layout_only() {
        let dir = tempfile::tempdir().unwrap();
        let splits = vec![b"user3".to_vec(), b"user6".to_vec()];
        let map = open_or_create(dir.path(), 2, 1, &splits, 7400).unwrap();
        assert_eq!(map.shards.len(), 3);
        assert_eq!(map.shard_for(b"user4").unwrap().id, 1);
        assert_eq!(map.shard_for(b"user7").unwrap().start, b"user6".to_vec());
        // Cores get contiguous runs of shards.
        assert_eq!(
            map.shards.iter().map(|s| s.core).collect::<Vec<_>>(),
            vec![0, 0, 1]
        );
        let again = open_or_create(dir.path(), 2, 1, &[b"zzz".to_vec()], 7400).unwrap();
        assert_eq!(again, map, "an existing layout is kept");
    }

    /// Writes a format-1 file with `boundaries` and opens the directory.
    fn open_format_1(dir: &Path, boundaries: &str) -> anyhow::Result<ShardMap> {
        let text = format!(r#"{{"format":1,"boundaries":{boundaries},"map_version":3,"cores":1}}"#);
        std::fs::write(dir.join(LAYOUT_FILE), text).unwrap();
        open_or_create(dir, 1, 1, &[], 7400)
    }

    #[test]
    fn format_1_files_of_both_eras_are_read_and_rewritten_as_format_2() {
        // Hex era, default split of 4 shards: 0x4000, 0x8000, 0xc000.
        let dir = tempfile::tempdir().unwrap();
        let map = open_format_1(dir.path(), r#"["4000","8000","c000"]"#).unwrap();
        let starts: Vec<Vec<u8>> = map.shards.iter().map(|s| s.start.clone()).collect();
        assert_eq!(starts[1..], initial_boundaries(4));
        assert_eq!(map.version, 3, "the assignment did not change");
        let text = std::fs::read_to_string(dir.path().join(LAYOUT_FILE)).unwrap();
        assert!(text.contains(r#""format": 2"#), "{text}");
        assert!(text.contains(r#""@\\x00""#), "{text}");
        assert_eq!(open_or_create(dir.path(), 1, 1, &[], 7400).unwrap(), map);

        // Escaped era: a default split and split keys that are not hex.
        let dir = tempfile::tempdir().unwrap();
        let map = open_format_1(dir.path(), r#"["\\x80\\x00"]"#).unwrap();
        assert_eq!(map.shards[1].start, vec![0x80, 0x00]);
        let dir = tempfile::tempdir().unwrap();
        let map = open_format_1(dir.path(), r#"["user5","user7"]"#).unwrap();
        assert_eq!(map.shards[1].start, b"user5".to_vec());
        assert_eq!(map.shards[2].start, b"user7".to_vec());
    }

    #[test]
    fn format_1_boundaries_that_read_both_ways_or_neither_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Split keys "1000", "2000" (escaped era) or bytes 0x10 0x00 ... (hex era).
        let err = open_format_1(dir.path(), r#"["1000","2000"]"#).unwrap_err();
        assert!(
            format!("{err:#}").contains("both as hex and as escaped"),
            "{err:#}"
        );
        let err = open_format_1(dir.path(), r#"["\\xZZ"]"#).unwrap_err();
        assert!(format!("{err:#}").contains("neither hex nor"), "{err:#}");
        let text = std::fs::read_to_string(dir.path().join(LAYOUT_FILE)).unwrap();
        assert!(
            text.contains(r#""format":1"#),
            "a refused file is left as it was"
        );
    }

    #[test]
    fn a_restart_with_the_same_cores_does_not_rewrite_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        open_or_create(dir.path(), 2, 1, &[], 7400).unwrap();
        let path = dir.path().join(LAYOUT_FILE);
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        open_or_create(dir.path(), 2, 1, &[], 7400).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn a_damaged_layout_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LAYOUT_FILE), b"{not json").unwrap();
        let err = open_or_create(dir.path(), 1, 1, &[], 7400).unwrap_err();
        assert!(format!("{err:#}").contains("parse shard layout"), "{err:#}");
    }
}
