//! Executes a merge of tables into new tables, dropping what no reader can see.

use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::sst::{Table, TableBuilder, TableCursor};
use crate::types::{Kind, RangeTombstone, Version, cmp_internal};
use crate::version::FileMeta;
use ferrisdb_io::Disk;
use std::path::Path;
use std::rc::Rc;

/// Decides, entry by entry in internal order, what survives a merge.
///
/// Rules, with `oldest` the oldest version any reader may still read at:
/// - every version newer than `oldest` is kept;
/// - of the versions at or below `oldest`, only the newest survives, and only
///   if no range tombstone at or below `oldest` hides it;
/// - that survivor is dropped too if it is a delete and the output is the
///   bottommost data for its key.
pub struct GcFilter {
    oldest: Version,
    tombstones: Vec<RangeTombstone>,
    bottommost: bool,
    key: Vec<u8>,
    seen_floor: bool,
}

impl GcFilter {
    pub fn new(oldest: Version, tombstones: &[RangeTombstone], bottommost: bool) -> Self {
        let tombstones = tombstones
            .iter()
            .filter(|t| t.version <= oldest)
            .cloned()
            .collect();
        GcFilter {
            oldest,
            tombstones,
            bottommost,
            key: Vec::new(),
            seen_floor: false,
        }
    }

    pub fn keep(&mut self, key: &[u8], version: Version, kind: Kind, first_of_key: bool) -> bool {
        if first_of_key {
            self.key.clear();
            self.key.extend_from_slice(key);
            self.seen_floor = false;
        }
        if version > self.oldest {
            return true;
        }
        if self.seen_floor {
            return false;
        }
        self.seen_floor = true;
        if self
            .tombstones
            .iter()
            .any(|t| t.hides(key, version, self.oldest))
        {
            return false;
        }
        !(kind == Kind::Delete && self.bottommost)
    }
}

pub struct MergeConfig<'a> {
    pub dir: &'a Path,
    pub block_bytes: usize,
    pub bloom_bits_per_key: u32,
    pub sst_bytes_target: u64,
    /// Most output bytes per second (0: as fast as the merge runs).
    pub bytes_per_sec: u64,
    /// Cache namespace of the engine if output blocks go into the cache as
    /// they are written (cache on write).
    pub cache_namespace: Option<u64>,
}

/// Output of a merge.
#[derive(Debug, Default)]
pub struct MergeOutput {
    pub files: Vec<FileMeta>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub entries_dropped: u64,
}

/// Merges `tables` into new tables numbered by `next_number`, filtering with `gc`.
pub async fn merge_tables<D: Disk>(
    disk: &D,
    cache: &Rc<BlockCache>,
    cfg: &MergeConfig<'_>,
    tables: &[Rc<Table<D>>],
    mut gc: GcFilter,
    mut next_number: impl FnMut() -> u64,
) -> Result<MergeOutput> {
    let mut out = MergeOutput {
        bytes_read: tables.iter().map(|t| t.size).sum(),
        ..Default::default()
    };
    let mut cursors = Vec::with_capacity(tables.len());
    for t in tables {
        let mut c = TableCursor::new(t.clone(), cache.clone(), false);
        c.seek(None).await?;
        cursors.push(c);
    }
    let mut builder: Option<TableBuilder<D>> = None;
    let mut last_key: Option<Vec<u8>> = None;
    let mut pacer = Pacer::new(cfg.bytes_per_sec);
    loop {
        let mut best: Option<usize> = None;
        for (i, c) in cursors.iter().enumerate() {
            let Some(e) = c.current() else { continue };
            let better = match best.and_then(|b| cursors[b].current()) {
                None => true,
                Some(b) => cmp_internal(e.key, e.version, b.key, b.version).is_lt(),
            };
            if better {
                best = Some(i);
            }
        }
        let Some(i) = best else { break };
        let e = cursors[i].current().expect("chosen cursor has an entry");
        let kind = Kind::from_u8(e.kind).ok_or_else(|| {
            Error::corrupt(
                "data block",
                tables[i].path(),
                0,
                format!("unknown entry kind {}", e.kind),
            )
        })?;
        let first_of_key = last_key.as_deref() != Some(e.key);
        if gc.keep(e.key, e.version, kind, first_of_key) {
            let roll = first_of_key
                && builder
                    .as_ref()
                    .is_some_and(|b| b.estimated_bytes() >= cfg.sst_bytes_target);
            if roll {
                let done = builder.take().expect("checked above");
                finish(done, &mut out).await?;
            }
            if builder.is_none() {
                let number = next_number();
                let path = cfg.dir.join(crate::sst::file_name(number));
                builder = Some(
                    TableBuilder::create(
                        disk.clone(),
                        &path,
                        cfg.block_bytes,
                        cfg.bloom_bits_per_key,
                        cfg.cache_namespace
                            .map(|ns| (cache.clone(), crate::cache::table_cache_id(ns, number))),
                    )
                    .await?,
                );
            }
            let (key, version, value) = (e.key.to_vec(), e.version, e.value.to_vec());
            builder
                .as_mut()
                .expect("created above")
                .add(&key, version, kind, &value)
                .await?;
            last_key = Some(key);
            let written = out.bytes_written + builder.as_ref().map_or(0, |b| b.estimated_bytes());
            pacer.pace(written).await;
        } else {
            out.entries_dropped += 1;
            if first_of_key {
                last_key = Some(e.key.to_vec());
            }
        }
        cursors[i].advance().await?;
    }
    if let Some(b) = builder {
        finish(b, &mut out).await?;
    }
    Ok(out)
}

/// Holds a merge to `bytes_per_sec` of output: after each
/// [`PACE_STEP_BYTES`] written, sleeps until the time those bytes are due.
/// The sleep is on the executor's timer, so the core serves other tasks
/// meanwhile.
struct Pacer {
    bytes_per_sec: u64,
    started: std::time::Instant,
    next_check: u64,
}

/// Output bytes between two checks of the pace: fine enough that a 1 MiB
/// write-out is not one burst at a low rate, coarse enough that the clock
/// is read rarely.
const PACE_STEP_BYTES: u64 = 64 << 10;

impl Pacer {
    fn new(bytes_per_sec: u64) -> Pacer {
        Pacer {
            bytes_per_sec,
            started: std::time::Instant::now(),
            next_check: PACE_STEP_BYTES,
        }
    }

    /// How long to wait, `elapsed` into the merge, once `written` bytes are out.
    fn delay(&self, written: u64, elapsed: std::time::Duration) -> std::time::Duration {
        if self.bytes_per_sec == 0 {
            return std::time::Duration::ZERO;
        }
        let due = std::time::Duration::from_secs_f64(written as f64 / self.bytes_per_sec as f64);
        due.saturating_sub(elapsed)
    }

    async fn pace(&mut self, written: u64) {
        if self.bytes_per_sec == 0 || written < self.next_check {
            return;
        }
        self.next_check = written + PACE_STEP_BYTES;
        let wait = self.delay(written, self.started.elapsed());
        if wait >= std::time::Duration::from_millis(1) {
            ferrisdb_io::executor::sleep(wait).await;
        }
    }
}

async fn finish<D: Disk>(builder: TableBuilder<D>, out: &mut MergeOutput) -> Result<()> {
    let number = crate::sst::parse_file_name(
        builder
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("we named it"),
    )
    .expect("we named it");
    if builder.entries() == 0 {
        // Everything was dropped after the file was created; it stays an
        // orphan, removed at the next open.
        return Ok(());
    }
    let (props, size) = builder.finish().await?;
    out.bytes_written += size;
    out.files
        .push(FileMeta::from_properties(number, size, props));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_waits_until_the_bytes_are_due() {
        use std::time::Duration;
        let unlimited = Pacer::new(0);
        assert_eq!(unlimited.delay(1 << 30, Duration::ZERO), Duration::ZERO);
        let pacer = Pacer::new(1 << 20);
        assert_eq!(
            pacer.delay(1 << 20, Duration::from_millis(250)),
            Duration::from_millis(750),
            "1 MiB at 1 MiB/s is due 1 s in"
        );
        assert_eq!(
            pacer.delay(1 << 20, Duration::from_secs(2)),
            Duration::ZERO,
            "behind schedule: no wait"
        );
    }

    #[test]
    fn gc_keeps_newest_visible_and_everything_newer() {
        let mut gc = GcFilter::new(10, &[], false);
        assert!(
            gc.keep(b"k", 15, Kind::Put, true),
            "newer than every reader's floor"
        );
        assert!(
            gc.keep(b"k", 9, Kind::Put, false),
            "what a reader at 10 sees"
        );
        assert!(
            !gc.keep(b"k", 5, Kind::Put, false),
            "shadowed for every reader"
        );
        assert!(
            gc.keep(b"j", 3, Kind::Delete, true),
            "not bottommost: delete must stay"
        );
    }

    #[test]
    fn gc_drops_bottommost_deletes_and_tombstoned_values() {
        let t = RangeTombstone {
            start: b"a".to_vec(),
            end: b"m".to_vec(),
            version: 8,
        };
        let mut gc = GcFilter::new(10, &[t], true);
        assert!(
            !gc.keep(b"b", 7, Kind::Put, true),
            "hidden by the range tombstone"
        );
        assert!(
            gc.keep(b"b", 9, Kind::Put, true),
            "written after the range delete"
        );
        assert!(!gc.keep(b"x", 9, Kind::Delete, true), "bottommost delete");
        assert!(gc.keep(b"y", 9, Kind::Put, true));
    }
}
