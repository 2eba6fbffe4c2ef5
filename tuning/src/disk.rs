//! `ferrisdb tune disk`: measures a device the way the engine uses it —
//! O_DIRECT files driven through io_uring by a glommio executor
//! (`ferrisdb_io::RealDisk`), aligned buffers handed into the ring.
//!
//! Tests, each bounded by [`DiskOptions::secs_per_test`], on one test file
//! of [`DiskOptions::file_bytes`] laid out (allocated and written) first:
//! 1. sequential write, then read, of `seq_block_bytes` blocks with
//!    `seq_depth` operations in flight, wrapping around the file;
//! 2. 4 KiB random reads at each of `random_depths` operations in flight;
//! 3. 4 KiB sequential writes into allocated blocks, each followed by
//!    `fdatasync` (one WAL group without batching).
//!
//! Every block written carries its own offset in its first 8 bytes and every
//! read checks it, so a broken I/O path fails the run instead of timing it.
//! The equivalent fio jobs are in docs/tuning.md.

use crate::error::{Error, Result};
use crate::machine;
use crate::properties::{
    DsyncWrite, FORMAT_VERSION, Fdatasync, IoProperties, RandomRead, Sequential,
};
use ferrisdb_io::{Disk, DiskFile, IoBuf, OpenMode, PAGE_BYTES, RealDisk};
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bytes of a random read and of a synced write.
pub const SMALL_BLOCK_BYTES: usize = PAGE_BYTES;
/// Region the fdatasync test writes through (wrapping), like a WAL segment.
pub const SYNC_REGION_BYTES: u64 = 64 << 20;
/// Shortest accepted test: shorter ones may time no operation at all, and
/// a rate of zero makes the written file invalid.
pub const SECS_PER_TEST_MIN: f64 = 0.01;
/// Longest accepted test.
pub const SECS_PER_TEST_MAX: f64 = 600.0;
/// Most operations in flight a test may ask for: the executor's cap.
pub const DEPTH_MAX: usize = ferrisdb_io::executor::IO_DEPTH_DEFAULT;

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    pub dir: PathBuf,
    /// Test file size; rounded down to whole sequential blocks.
    pub file_bytes: u64,
    pub secs_per_test: f64,
    pub seq_block_bytes: usize,
    pub seq_depth: usize,
    pub random_depths: Vec<usize>,
}

impl DiskOptions {
    /// The defaults: a 1 GiB file, 3 s per test (about 28 s in all).
    pub fn new(dir: &Path) -> DiskOptions {
        DiskOptions {
            dir: dir.to_path_buf(),
            file_bytes: 1 << 30,
            secs_per_test: 3.0,
            seq_block_bytes: 1 << 20,
            seq_depth: 4,
            random_depths: vec![1, 4, 16, 64],
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if !(SECS_PER_TEST_MIN..=SECS_PER_TEST_MAX).contains(&self.secs_per_test) {
            return bad(format!(
                "--secs is {}; it must be at least {SECS_PER_TEST_MIN} and at most {SECS_PER_TEST_MAX}",
                self.secs_per_test
            ));
        }
        if !self.seq_block_bytes.is_multiple_of(PAGE_BYTES) || self.seq_block_bytes == 0 {
            return bad(format!(
                "sequential block of {} bytes; it must be a positive multiple of {PAGE_BYTES}",
                self.seq_block_bytes
            ));
        }
        if self.file_bytes < 2 * self.seq_block_bytes as u64 {
            return bad(format!(
                "--size is {} bytes; it must hold at least two sequential blocks ({} bytes)",
                self.file_bytes,
                2 * self.seq_block_bytes
            ));
        }
        let depths = self.random_depths.iter().chain([&self.seq_depth]);
        if depths.clone().any(|d| !(1..=DEPTH_MAX).contains(d)) {
            return bad(format!("queue depths must be between 1 and {DEPTH_MAX}"));
        }
        if self.random_depths.is_empty() || self.random_depths.windows(2).any(|w| w[0] >= w[1]) {
            return bad("--depths must be one or more increasing numbers".into());
        }
        Ok(())
    }

    fn file_bytes_rounded(&self) -> u64 {
        self.file_bytes / self.seq_block_bytes as u64 * self.seq_block_bytes as u64
    }
}

/// One finished step, for progress output.
#[derive(Debug, Clone)]
pub enum Step {
    Warning(String),
    LaidOut { bytes: u64, secs: f64 },
    SequentialWrite(u64),
    SequentialRead(u64),
    RandomRead(RandomRead),
    Fdatasync(Fdatasync),
    DsyncWrite(DsyncWrite),
}

/// Runs every test in `opts.dir` and returns the measurements; `progress`
/// hears about each step as it finishes. The test file is removed at the
/// end, also on failure.
pub fn measure(opts: &DiskOptions, mut progress: impl FnMut(Step)) -> Result<IoProperties> {
    check_dir(&opts.dir)?;
    opts.validate()?;
    let mount = machine::mount_of(&opts.dir);
    let fs = mount.as_ref().map_or("unknown", |m| m.fs_type.as_str());
    if fs == "tmpfs" || fs == "ramfs" {
        progress(Step::Warning(format!(
            "{} is on {fs}: the figures describe memory, not a disk",
            opts.dir.display()
        )));
    }
    for stale in remove_stale_test_files(&opts.dir) {
        progress(Step::Warning(format!(
            "removed {}, left by an interrupted run",
            stale.display()
        )));
    }
    let test = TestFile(
        opts.dir
            .join(format!("{TEST_FILE_PREFIX}{}", std::process::id())),
    );
    let bytes = opts.file_bytes_rounded();
    let classify = |e| classify(e, &opts.dir, fs, bytes);
    let started = Instant::now();
    run(
        &test.0,
        opts,
        |path, o| async move { layout(&path, &o).await },
    )
    .map_err(classify)?;
    progress(Step::LaidOut {
        bytes,
        secs: started.elapsed().as_secs_f64(),
    });
    let write_bps = run(&test.0, opts, |path, o| async move {
        sequential(&path, &o, true).await
    })
    .map_err(classify)?;
    progress(Step::SequentialWrite(write_bps));
    let read_bps = run(&test.0, opts, |path, o| async move {
        sequential(&path, &o, false).await
    })
    .map_err(classify)?;
    progress(Step::SequentialRead(read_bps));
    let mut random_read = Vec::new();
    for &depth in &opts.random_depths {
        let row = run(&test.0, opts, move |path, o| async move {
            random_reads(&path, &o, depth).await
        })
        .map_err(classify)?;
        progress(Step::RandomRead(row.clone()));
        random_read.push(row);
    }
    let fdatasync = run(&test.0, opts, |path, o| async move {
        synced_writes(&path, &o).await
    })
    .map_err(classify)?;
    progress(Step::Fdatasync(fdatasync.clone()));
    let dsync_write = run(&test.0, opts, |path, o| async move {
        dsync_writes(&path, &o).await
    })
    .map_err(classify)?;
    progress(Step::DsyncWrite(dsync_write.clone()));
    Ok(IoProperties {
        format_version: FORMAT_VERSION,
        dir: std::fs::canonicalize(&opts.dir).unwrap_or_else(|_| opts.dir.clone()),
        filesystem: mount
            .as_ref()
            .map(|m| m.fs_type.clone())
            .unwrap_or_default(),
        device: mount.map(|m| m.device).unwrap_or_default(),
        measured_unix_secs: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        file_bytes: bytes,
        secs_per_test: opts.secs_per_test,
        sequential: Sequential {
            block_bytes: opts.seq_block_bytes as u64,
            depth: opts.seq_depth as u32,
            write_bytes_per_sec: write_bps,
            read_bytes_per_sec: read_bps,
        },
        random_read,
        fdatasync,
        dsync_write: Some(dsync_write),
    })
}

/// Test files are `{TEST_FILE_PREFIX}{pid}`.
const TEST_FILE_PREFIX: &str = ".ferrisdb-tune-disk-";

/// Removes test files of runs whose process is gone (killed before it
/// could clean up); returns their paths.
fn remove_stale_test_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid: u32 = name.strip_prefix(TEST_FILE_PREFIX)?.parse().ok()?;
            let alive = Path::new("/proc").join(pid.to_string()).exists();
            (!alive && std::fs::remove_file(e.path()).is_ok()).then(|| e.path())
        })
        .collect()
}

/// Removes the test file when the measurement ends, however it ends.
struct TestFile(PathBuf);

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotADirectory {
            path: dir.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoSuchDirectory {
            path: dir.to_path_buf(),
        }),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(Error::NotADirectory {
            path: dir.to_path_buf(),
        }),
        Err(source) => Err(Error::File {
            op: "stat",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Turns the OS errors an operator can act on into their own messages.
fn classify(err: ferrisdb_io::Error, dir: &Path, fs: &str, bytes: u64) -> Error {
    if let ferrisdb_io::Error::Os { op, source, .. } = &err {
        match source.raw_os_error() {
            Some(libc::ENOSPC) => {
                return Error::NoSpace {
                    path: dir.to_path_buf(),
                    bytes,
                };
            }
            Some(libc::EINVAL) if *op == "open" => {
                return Error::NoDirectIo {
                    path: dir.to_path_buf(),
                    fs: fs.to_string(),
                    detail: format!("opening a file with O_DIRECT failed: {source}"),
                };
            }
            Some(libc::EOPNOTSUPP) => {
                return Error::NoDirectIo {
                    path: dir.to_path_buf(),
                    fs: fs.to_string(),
                    detail: format!("{op} failed: {source}"),
                };
            }
            Some(code @ (libc::EACCES | libc::EPERM | libc::EROFS)) => {
                return Error::NotWritable {
                    path: dir.to_path_buf(),
                    source: std::io::Error::from_raw_os_error(code),
                };
            }
            _ => {}
        }
    }
    Error::Io(err)
}

/// Runs one test on a fresh executor thread (each test opens the file anew).
fn run<T, F, Fut>(path: &Path, opts: &DiskOptions, test: F) -> ferrisdb_io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(PathBuf, DiskOptions) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ferrisdb_io::Result<T>> + 'static,
{
    let (path, opts) = (path.to_path_buf(), opts.clone());
    ferrisdb_io::executor::run_local(move || test(path, opts))
}

/// A buffer of `len` bytes whose every page starts with its file offset.
fn patterned(disk: &RealDisk, pos: u64, len: usize) -> <RealDisk as Disk>::Buf {
    let mut buf = disk.alloc_buf(len);
    for (i, page) in buf.as_mut_slice().chunks_mut(PAGE_BYTES).enumerate() {
        page[..8].copy_from_slice(&(pos + (i * PAGE_BYTES) as u64).to_le_bytes());
    }
    buf
}

/// Checks what a read returned: the full length, and the page at `pos`
/// carries its own offset.
fn check_read(path: &Path, pos: u64, len: usize, got: &[u8]) -> ferrisdb_io::Result<()> {
    let stamped = got
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if got.len() != len || stamped != Some(pos) {
        return Err(ferrisdb_io::Error::Corrupt {
            what: "tune disk test block",
            path: path.to_path_buf(),
            offset: pos,
            detail: format!(
                "read {} of {len} bytes, stamped {stamped:?}; the I/O path returned the wrong data",
                got.len()
            ),
        });
    }
    Ok(())
}

/// Creates the test file, reserves its space, writes all of it once (so
/// later tests overwrite allocated blocks), makes it durable, and reads its
/// first block back through O_DIRECT.
async fn layout(path: &Path, o: &DiskOptions) -> ferrisdb_io::Result<()> {
    let disk = RealDisk::new();
    let bytes = o.file_bytes_rounded();
    let file = disk.open(path, OpenMode::CreateNew).await?;
    file.preallocate(bytes).await?;
    let file = Rc::new(file);
    let mut pos = 0;
    while pos < bytes {
        let mut batch = Vec::new();
        for _ in 0..o.seq_depth {
            if pos < bytes {
                let buf = patterned(&disk, pos, o.seq_block_bytes);
                let file = file.clone();
                batch.push(ferrisdb_io::executor::spawn(async move {
                    file.write_at(buf, pos).await
                }));
                pos += o.seq_block_bytes as u64;
            }
        }
        for write in batch {
            write.await?;
        }
    }
    file.sync().await?;
    let got = file.read_at(0, SMALL_BLOCK_BYTES).await?;
    check_read(path, 0, SMALL_BLOCK_BYTES, &got)?;
    drop(got);
    close(file).await
}

/// Bytes per second of `seq_depth` streams of `seq_block_bytes` transfers
/// taking consecutive blocks, wrapping at the end of the file.
async fn sequential(path: &Path, o: &DiskOptions, write: bool) -> ferrisdb_io::Result<u64> {
    let disk = RealDisk::new();
    let file = Rc::new(disk.open(path, OpenMode::ReadWrite).await?);
    let bytes = o.file_bytes_rounded();
    let block = o.seq_block_bytes;
    let next = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let mut streams = Vec::new();
    for _ in 0..o.seq_depth {
        let (disk, file, next, path) =
            (disk.clone(), file.clone(), next.clone(), path.to_path_buf());
        streams.push(ferrisdb_io::executor::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let pos = next.get();
                next.set((pos + block as u64) % bytes);
                if write {
                    file.write_at(patterned(&disk, pos, block), pos).await?;
                } else {
                    let got = file.read_at(pos, block).await?;
                    check_read(&path, pos, block, &got)?;
                }
                done += block as u64;
            }
            Ok::<u64, ferrisdb_io::Error>(done)
        }));
    }
    let mut total = 0;
    for s in streams {
        total += s.await?;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    if write {
        file.sync().await?;
    }
    close(file).await?;
    Ok(rate as u64)
}

/// `depth` readers of random 4 KiB blocks; IOPS and latency percentiles.
async fn random_reads(
    path: &Path,
    o: &DiskOptions,
    depth: usize,
) -> ferrisdb_io::Result<RandomRead> {
    let disk = RealDisk::new();
    let file = Rc::new(disk.open(path, OpenMode::Read).await?);
    let pages = o.file_bytes_rounded() / SMALL_BLOCK_BYTES as u64;
    let latencies = Rc::new(RefCell::new(histogram()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let mut readers = Vec::new();
    for reader in 0..depth as u64 {
        let (file, latencies, path) = (file.clone(), latencies.clone(), path.to_path_buf());
        readers.push(ferrisdb_io::executor::spawn(async move {
            let mut rng = SplitMix(reader.wrapping_mul(0x9E37_79B9) ^ 0x5EED);
            let mut ops = 0u64;
            while Instant::now() < deadline {
                let pos = rng.next() % pages * SMALL_BLOCK_BYTES as u64;
                let t = Instant::now();
                let got = file.read_at(pos, SMALL_BLOCK_BYTES).await?;
                record(&mut latencies.borrow_mut(), t.elapsed());
                check_read(&path, pos, SMALL_BLOCK_BYTES, &got)?;
                ops += 1;
            }
            Ok::<u64, ferrisdb_io::Error>(ops)
        }));
    }
    let mut ops = 0;
    for r in readers {
        ops += r.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    close(file).await?;
    let h = latencies.borrow();
    Ok(RandomRead {
        block_bytes: SMALL_BLOCK_BYTES as u64,
        depth: depth as u32,
        iops: (ops as f64 / secs) as u64,
        p50_us: micros(&h, 0.5),
        p99_us: micros(&h, 0.99),
    })
}

/// 4 KiB writes through the first [`SYNC_REGION_BYTES`] of the (allocated)
/// file, each followed by `fdatasync`.
async fn synced_writes(path: &Path, o: &DiskOptions) -> ferrisdb_io::Result<Fdatasync> {
    let timed = durable_writes(path, o, OpenMode::ReadWrite, true).await?;
    let syncs = &timed.syncs;
    Ok(Fdatasync {
        block_bytes: SMALL_BLOCK_BYTES as u64,
        ops_per_sec: timed.ops_per_sec,
        write_p50_us: micros(&timed.writes, 0.5),
        sync_p50_us: micros(syncs, 0.5),
        sync_p99_us: micros(syncs, 0.99),
        sync_p999_us: micros(syncs, 0.999),
        sync_max_us: syncs.max() as f64 / 1000.0,
    })
}

/// 4 KiB O_DSYNC writes through the same region: each is durable when it
/// completes, as the WAL's group write is.
async fn dsync_writes(path: &Path, o: &DiskOptions) -> ferrisdb_io::Result<DsyncWrite> {
    let timed = durable_writes(path, o, OpenMode::ReadWriteDsync, false).await?;
    let writes = &timed.writes;
    Ok(DsyncWrite {
        block_bytes: SMALL_BLOCK_BYTES as u64,
        ops_per_sec: timed.ops_per_sec,
        p50_us: micros(writes, 0.5),
        p99_us: micros(writes, 0.99),
        p999_us: micros(writes, 0.999),
        max_us: writes.max() as f64 / 1000.0,
    })
}

/// What one loop of durable writes measured.
struct TimedWrites {
    ops_per_sec: u64,
    writes: Histogram<u64>,
    /// Empty when the loop did not sync.
    syncs: Histogram<u64>,
}

/// One writer's 4 KiB writes, one at a time, cycling through the first
/// [`SYNC_REGION_BYTES`] of the file opened with `mode`, each followed by
/// `fdatasync` when `sync`.
async fn durable_writes(
    path: &Path,
    o: &DiskOptions,
    mode: OpenMode,
    sync: bool,
) -> ferrisdb_io::Result<TimedWrites> {
    let disk = RealDisk::new();
    let file = disk.open(path, mode).await?;
    let region = o.file_bytes_rounded().min(SYNC_REGION_BYTES);
    let (mut writes, mut syncs) = (histogram(), histogram());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let (mut pos, mut ops) = (0u64, 0u64);
    while Instant::now() < deadline {
        let t = Instant::now();
        file.write_at(patterned(&disk, pos, SMALL_BLOCK_BYTES), pos)
            .await?;
        let written = Instant::now();
        record(&mut writes, written - t);
        if sync {
            file.sync().await?;
            record(&mut syncs, written.elapsed());
        }
        pos = (pos + SMALL_BLOCK_BYTES as u64) % region;
        ops += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    file.close().await?;
    Ok(TimedWrites {
        ops_per_sec: (ops as f64 / secs) as u64,
        writes,
        syncs,
    })
}

async fn close(file: Rc<ferrisdb_io::disk::real::RealFile>) -> ferrisdb_io::Result<()> {
    match Rc::try_unwrap(file) {
        Ok(file) => file.close().await,
        // A task still holds it (it failed early); dropping closes it.
        Err(_) => Ok(()),
    }
}

/// Nanoseconds, 1 ns to 100 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_nanos().clamp(1, u128::from(u64::MAX)) as u64);
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    (h.value_at_quantile(q) as f64 / 1000.0 * 10.0).round() / 10.0
}

/// splitmix64: a fast, well-mixed generator for offsets (no crate needed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests;
