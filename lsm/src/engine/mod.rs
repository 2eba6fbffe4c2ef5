//! The engine of one shard: the public API and its state.
//!
//! One core owns an engine; all of it runs on that core's executor, so state
//! lives in `RefCell`s that are never borrowed across an `await`.

mod background;
mod read;
mod write;

pub use read::ScanIter;

use crate::batch::WriteBatch;
use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::{LogMode, Options};
use crate::sst::Table;
use crate::types::{RangeTombstone, Version};
use crate::version::Levels;
use ferrisdb_io::Disk;
use ferrisdb_io::log::{Log, LogOptions};
use ferrisdb_io::notify::Notify;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub const WAL_PREFIX: &str = "wal";

/// Options of one write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Wait until the write is durable (WAL fdatasync, group-committed).
    pub sync: bool,
    /// Version to write at (must exceed every earlier version); None = next.
    pub version: Option<Version>,
    /// External log index this write comes from (external log mode).
    pub applied_index: Option<u64>,
}

/// Options of one read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Read as of this version; None = latest (or the snapshot's version).
    pub version: Option<Version>,
}

/// Options of a scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub version: Option<Version>,
    pub reverse: bool,
    /// Maximum number of pairs returned by [`Engine::scan`] (0 = no limit).
    pub limit: usize,
}

/// Counters for write and space amplification and other statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Key and value bytes accepted from users.
    pub user_bytes: u64,
    pub wal_bytes: u64,
    pub flush_bytes: u64,
    pub compaction_read_bytes: u64,
    pub compaction_write_bytes: u64,
    pub flushes: u64,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub stalls: u64,
    pub sst_bytes: u64,
    pub sst_files: u64,
    pub files_per_level: Vec<usize>,
    pub memtable_bytes: u64,
    pub immutable_memtables: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_bytes: u64,
}

impl Stats {
    /// Bytes written to disk per byte written by users.
    pub fn write_amplification(&self) -> f64 {
        let disk = self.wal_bytes + self.flush_bytes + self.compaction_write_bytes;
        if self.user_bytes == 0 {
            0.0
        } else {
            disk as f64 / self.user_bytes as f64
        }
    }

    /// Table bytes on disk per byte in the largest level (RocksDB's estimate).
    pub fn space_amplification(&self, largest_level_bytes: u64) -> f64 {
        if largest_level_bytes == 0 {
            1.0
        } else {
            self.sst_bytes as f64 / largest_level_bytes as f64
        }
    }
}

/// A write accepted and waiting to be applied to the memtable in order.
struct Pending {
    seq: u64,
    lsn: u64,
    version: Version,
    batch: WriteBatch,
    needs_sync: bool,
    applied_index: Option<u64>,
}

/// What a read needs from the engine's structure, rebuilt whenever memtables
/// or tables change, so a read clones one `Rc` instead of walking the state.
pub(crate) struct ReadParts<D: Disk> {
    /// Active memtable first, then frozen ones newest first.
    pub(crate) mems: Vec<Rc<RefCell<Memtable>>>,
    /// (level, tables): L0 newest first, deeper levels in key order.
    pub(crate) levels: Rc<LevelTables<D>>,
}

/// Open tables per level: (level, tables), L0 newest first, deeper levels in key order.
pub(crate) type LevelTables<D> = Vec<(usize, Vec<Rc<Table<D>>>)>;

struct State<D: Disk> {
    read_parts: Rc<ReadParts<D>>,
    mem: Rc<RefCell<Memtable>>,
    /// Frozen memtables, oldest first.
    imm: VecDeque<Rc<RefCell<Memtable>>>,
    levels: Rc<Levels>,
    tables: HashMap<u64, Rc<Table<D>>>,
    tombstones: Rc<Vec<RangeTombstone>>,
    manifest: ManifestState,
    last_version: Version,
    visible_version: Version,
    queue: VecDeque<Pending>,
    next_seq: u64,
    applied_seq: u64,
    snapshots: BTreeMap<Version, usize>,
    poisoned: Option<String>,
    closing: bool,
    compact_cursors: Vec<Vec<u8>>,
    stats: Stats,
    /// A compaction (background or manual) is running; only one runs at a time.
    compaction_running: bool,
}

pub(crate) struct Inner<D: Disk> {
    disk: D,
    dir: PathBuf,
    opts: Options,
    cache: Rc<BlockCache>,
    /// Keys this engine's tables in a cache shared by the core's engines.
    cache_namespace: u64,
    wal: Option<Rc<Log<D>>>,
    manifest: Manifest<D>,
    state: RefCell<State<D>>,
    /// Wakes the background worker (shared so the worker can wait without
    /// keeping the engine alive).
    work: Rc<Notify>,
    /// Wakes writers waiting for their batch to be applied.
    applied: Notify,
    /// Wakes writers stalled on flush/compaction, and `flush()` callers.
    progress: Notify,
    worker: RefCell<Option<glommio::task::JoinHandle<()>>>,
}

/// An embedded LSM engine. Cheap to clone (a handle); single-core.
pub struct Engine<D: Disk> {
    inner: Rc<Inner<D>>,
}

impl<D: Disk> Clone for Engine<D> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

/// A pinned read version: compaction keeps what it needs until it is dropped.
pub struct Snapshot<D: Disk> {
    inner: Rc<Inner<D>>,
    version: Version,
}

impl<D: Disk> Snapshot<D> {
    pub fn version(&self) -> Version {
        self.version
    }

    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            version: Some(self.version),
        }
    }
}

impl<D: Disk> Drop for Snapshot<D> {
    fn drop(&mut self) {
        let mut st = self.inner.state.borrow_mut();
        let n = st
            .snapshots
            .get_mut(&self.version)
            .expect("a live snapshot is registered");
        *n -= 1;
        if *n == 0 {
            st.snapshots.remove(&self.version);
        }
    }
}

impl<D: Disk> Engine<D> {
    /// Opens or creates the engine in `dir` with a block cache of its own.
    pub async fn open(disk: D, dir: &Path, opts: Options) -> Result<Self> {
        let cache = BlockCache::new(opts.block_cache_bytes);
        Self::open_with_cache(disk, dir, opts, cache).await
    }

    /// Opens or creates the engine, sharing `cache` (one per core) with other shards.
    pub async fn open_with_cache(
        disk: D,
        dir: &Path,
        opts: Options,
        cache: Rc<BlockCache>,
    ) -> Result<Self> {
        opts.validate()?;
        let cache_namespace = crate::cache::next_namespace();
        disk.create_dir_all(dir).await?;
        let (manifest, mstate) = Manifest::open(disk.clone(), dir, opts.levels).await?;
        let mut tables = HashMap::new();
        let mut max_number = 0;
        for (_, f) in mstate.levels.all_files() {
            let path = dir.join(crate::sst::file_name(f.number));
            if !disk.exists(&path) {
                return Err(Error::corrupt(
                    "table",
                    &path,
                    0,
                    "named by the manifest but missing",
                ));
            }
            let id = crate::cache::table_cache_id(cache_namespace, f.number);
            let table = Table::open(&disk, &path, f.number, id).await?;
            tables.insert(f.number, Rc::new(table));
            max_number = max_number.max(f.number);
        }
        // Tables not in the manifest were left by a flush or compaction that
        // did not commit: nothing refers to them.
        for name in disk.list_dir(dir)? {
            if let Some(number) = crate::sst::parse_file_name(&name) {
                max_number = max_number.max(number);
                if !tables.contains_key(&number) {
                    disk.remove(&dir.join(&name)).await?;
                }
            }
        }
        let mut mem = Memtable::new();
        let mut last_version = mstate.last_version;
        let wal = match opts.log_mode {
            LogMode::Internal => {
                // A chunk (one group write) may take at most a quarter of a segment.
                let chunk =
                    (opts.wal_segment_bytes as usize / 4 / 4096 * 4096).clamp(8192, 4 << 20);
                let log_opts = LogOptions {
                    prefix: WAL_PREFIX.into(),
                    segment_bytes_max: opts.wal_segment_bytes,
                    chunk_bytes_max: chunk,
                    ..LogOptions::default()
                };
                let mut failure = None;
                let (wal, _) = Log::open(
                    disk.clone(),
                    dir,
                    log_opts,
                    mstate.wal_flushed_lsn + 1,
                    |lsn, bytes| {
                        if failure.is_none() {
                            match crate::batch::WriteBatch::decode(bytes, dir, lsn) {
                                Ok((version, batch)) => {
                                    write::apply_batch(&mut mem, batch, version);
                                    mem.last_lsn = lsn;
                                    last_version = last_version.max(version);
                                }
                                Err(e) => failure = Some(e),
                            }
                        }
                        Ok(())
                    },
                )
                .await?;
                if let Some(e) = failure {
                    return Err(e);
                }
                if mem.last_lsn == 0 {
                    mem.last_lsn = mstate.wal_flushed_lsn;
                }
                Some(wal)
            }
            LogMode::External => None,
        };
        let mut manifest_state = mstate;
        manifest_state.next_file_number = manifest_state.next_file_number.max(max_number + 1);
        let levels = opts.levels;
        let inner = Rc::new(Inner {
            disk,
            dir: dir.to_path_buf(),
            cache,
            cache_namespace,
            wal,
            manifest,
            state: RefCell::new(State {
                read_parts: Rc::new(ReadParts {
                    mems: Vec::new(),
                    levels: Rc::new(Vec::new()),
                }),
                mem: Rc::new(RefCell::new(mem)),
                imm: VecDeque::new(),
                levels: Rc::new(manifest_state.levels.clone()),
                tables,
                tombstones: Rc::new(manifest_state.tombstones.clone()),
                manifest: manifest_state,
                last_version,
                visible_version: last_version,
                queue: VecDeque::new(),
                next_seq: 1,
                applied_seq: 0,
                snapshots: BTreeMap::new(),
                poisoned: None,
                closing: false,
                compact_cursors: vec![Vec::new(); levels],
                stats: Stats::default(),
                compaction_running: false,
            }),
            opts,
            work: Rc::new(Notify::new()),
            applied: Notify::new(),
            progress: Notify::new(),
            worker: RefCell::new(None),
        });
        let worker =
            ferrisdb_io::executor::spawn_background(background::run(Rc::downgrade(&inner)));
        *inner.worker.borrow_mut() = Some(worker);
        inner.state.borrow_mut().refresh_read_parts();
        inner.work.notify_all();
        Ok(Engine { inner })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Newest version visible to reads.
    pub fn version(&self) -> Version {
        self.inner.state.borrow().visible_version
    }

    /// Highest external log index whose writes are in flushed tables.
    pub fn flushed_applied_index(&self) -> u64 {
        self.inner.state.borrow().manifest.applied_index
    }

    /// Pins the current version for reads.
    pub fn snapshot(&self) -> Snapshot<D> {
        let mut st = self.inner.state.borrow_mut();
        let version = st.visible_version;
        *st.snapshots.entry(version).or_insert(0) += 1;
        Snapshot {
            inner: self.inner.clone(),
            version,
        }
    }

    /// Why the engine refuses writes, if it does.
    /// Whether a compaction is running now (at most one at a time).
    pub fn compaction_running(&self) -> bool {
        self.inner.state.borrow().compaction_running
    }

    pub fn poisoned(&self) -> Option<String> {
        self.inner.state.borrow().poisoned.clone()
    }

    pub fn stats(&self) -> Stats {
        let st = self.inner.state.borrow();
        let mut s = st.stats.clone();
        s.sst_bytes = st.levels.total_bytes();
        s.sst_files = st.levels.file_count() as u64;
        s.files_per_level = st.levels.levels.iter().map(Vec::len).collect();
        s.memtable_bytes = st.mem.borrow().bytes() as u64;
        s.immutable_memtables = st.imm.len() as u64;
        let (hits, misses) = self.inner.cache.hit_counts();
        s.cache_hits = hits;
        s.cache_misses = misses;
        s.cache_bytes = self.inner.cache.used_bytes() as u64;
        s
    }

    /// Bytes in each level, L0 first.
    pub fn level_bytes(&self) -> Vec<u64> {
        let st = self.inner.state.borrow();
        (0..st.levels.levels.len())
            .map(|l| st.levels.level_bytes(l))
            .collect()
    }

    pub fn block_cache(&self) -> &Rc<BlockCache> {
        &self.inner.cache
    }

    /// Flushes every memtable to tables and waits for it.
    pub async fn flush(&self) -> Result<()> {
        self.inner.freeze_active();
        loop {
            let wait = {
                let st = self.inner.state.borrow();
                if let Some(p) = &st.poisoned {
                    return Err(Error::Poisoned(p.clone()));
                }
                if st.imm.is_empty() {
                    return Ok(());
                }
                self.inner.progress.notified()
            };
            self.inner.work.notify_all();
            wait.await;
        }
    }

    /// Flushes, then merges every level's tables overlapping `[start, end]`
    /// down to the last level (None = unbounded).
    pub async fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.flush().await?;
        background::compact_range(&self.inner, start, end).await
    }

    /// Stops background work, writes out the WAL and closes. Memtables are not
    /// flushed (the WAL holds them); call `flush` first for a clean directory.
    pub async fn close(self) -> Result<()> {
        {
            let mut st = self.inner.state.borrow_mut();
            st.closing = true;
        }
        self.inner.work.notify_all();
        let worker = self.inner.worker.borrow_mut().take();
        if let Some(worker) = worker {
            worker.await;
        }
        if let Some(wal) = &self.inner.wal
            && self.inner.state.borrow().poisoned.is_none()
        {
            wal.clone().close().await?;
        }
        Ok(())
    }
}

impl<D: Disk> State<D> {
    /// Rebuilds `read_parts`; call after any change to memtables or levels.
    pub(super) fn refresh_read_parts(&mut self) {
        let mut mems = vec![self.mem.clone()];
        mems.extend(self.imm.iter().rev().cloned());
        let levels = self
            .levels
            .levels
            .iter()
            .enumerate()
            .map(|(l, files)| {
                (
                    l,
                    files
                        .iter()
                        .map(|f| self.tables[&f.number].clone())
                        .collect(),
                )
            })
            .collect();
        self.read_parts = Rc::new(ReadParts {
            mems,
            levels: Rc::new(levels),
        });
    }
}

impl<D: Disk> Inner<D> {
    /// Cache and cache id for a new table's blocks, if cache on write is on.
    fn cache_on_write(&self, number: u64) -> Option<(Rc<BlockCache>, u64)> {
        self.opts.cache_on_write.then(|| {
            (
                self.cache.clone(),
                crate::cache::table_cache_id(self.cache_namespace, number),
            )
        })
    }

    fn check_writable(st: &State<D>) -> Result<()> {
        if let Some(p) = &st.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        if st.closing {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Marks the engine failed: writes are refused until it is reopened.
    fn poison(&self, err: &Error) {
        {
            let mut st = self.state.borrow_mut();
            if st.poisoned.is_none() {
                tracing::error!(dir = %self.dir.display(), error = %err, "engine poisoned");
                st.poisoned = Some(err.to_string());
            }
        }
        self.applied.notify_all();
        self.progress.notify_all();
        self.work.notify_all();
    }

    /// Oldest version a reader may still read at.
    fn oldest_snapshot(st: &State<D>) -> Version {
        st.snapshots
            .keys()
            .next()
            .copied()
            .unwrap_or(st.visible_version)
            .min(st.visible_version)
    }

    /// Freezes the active memtable if it holds anything.
    fn freeze_active(&self) {
        let mut st = self.state.borrow_mut();
        if st.mem.borrow().is_empty() {
            return;
        }
        let fresh = Rc::new(RefCell::new(Memtable::new()));
        {
            let old = st.mem.borrow();
            let mut f = fresh.borrow_mut();
            f.last_lsn = old.last_lsn;
            f.applied_index = old.applied_index;
        }
        let frozen = std::mem::replace(&mut st.mem, fresh);
        st.imm.push_back(frozen);
        st.refresh_read_parts();
        drop(st);
        self.work.notify_all();
    }
}
