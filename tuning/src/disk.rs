//! `ferrisdb tune disk`: measures a device the way the engine uses it —
//! O_DIRECT files driven through io_uring, aligned buffers handed into the
//! ring.
//!
//! Tests, each bounded by [`DiskOptions::secs_per_test`], on one test file
//! of [`DiskOptions::file_bytes`] laid out (allocated and written) first:
//! 1. sequential write, then read, of `seq_block_bytes` blocks with
//!    `seq_depth` operations in flight, wrapping around the file;
//! 2. 4 KiB random reads at each of `random_depths` operations in flight;
//! 3. 4 KiB sequential writes into allocated blocks, each followed by
//!    `fdatasync` (one WAL group without batching);
//! 4. 4 KiB O_DSYNC writes through the same blocks (the WAL's group write);
//! 5. test 3 again through the engine's runtime.
//!
//! Tests 1–4 run on private io_uring rings from this thread, submitting and
//! waiting as fio does (`ferrisdb_io::disk::direct::DirectFile` says why
//! and how they are timed). The layout and test 5 go through the engine's
//! own `ferrisdb_io::RealDisk` on a glommio executor: the layout keeps the
//! first-read check of DESIGN.md §9, and test 5 shows what the runtime adds
//! to a sync.
//!
//! Every block written carries its own offset in its first 8 bytes and every
//! read checks it, so a broken I/O path fails the run instead of timing it.
//! The equivalent fio jobs are in docs/tuning.md.

use crate::error::{Error, Result};
use crate::machine;
use crate::properties::{
    DsyncWrite, FORMAT_VERSION, Fdatasync, IoProperties, RandomRead, RuntimeSync, Sequential,
};
use ferrisdb_io::disk::direct::{DirectFile, Pump, StayOnCpu, Transfer};
use ferrisdb_io::{Disk, DiskFile, IoBuf, OpenMode, PAGE_BYTES, RealDisk};
use hdrhistogram::Histogram;
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
    /// The defaults: a 1 GiB file, 3 s per test (about 31 s in all).
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
    RuntimeFdatasync(RuntimeSync),
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
    let write_bps = sequential(&test.0, opts, true).map_err(classify)?;
    progress(Step::SequentialWrite(write_bps));
    let read_bps = sequential(&test.0, opts, false).map_err(classify)?;
    progress(Step::SequentialRead(read_bps));
    let mut random_read = Vec::new();
    for &depth in &opts.random_depths {
        let row = random_reads(&test.0, opts, depth).map_err(classify)?;
        progress(Step::RandomRead(row.clone()));
        random_read.push(row);
    }
    let fdatasync = synced_writes(&test.0, opts).map_err(classify)?;
    progress(Step::Fdatasync(fdatasync.clone()));
    let dsync_write = dsync_writes(&test.0, opts).map_err(classify)?;
    progress(Step::DsyncWrite(dsync_write.clone()));
    let runtime_fdatasync = run_as_core(&test.0, opts).map_err(classify)?;
    progress(Step::RuntimeFdatasync(runtime_fdatasync.clone()));
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
        runtime_fdatasync: Some(runtime_fdatasync),
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

/// The runtime test on an executor set up as a node's core 0: pinned to
/// CPU 0, with the core's wake guard (`ferrisdb_io::executor::run_pinned`).
/// Pinning changes what a sync costs through glommio: on this project's
/// machines p50 72–79 µs this way against 87–98 µs on an unpinned executor
/// (docs/tuning.md).
fn run_as_core(path: &Path, opts: &DiskOptions) -> ferrisdb_io::Result<RuntimeSync> {
    let (path, opts) = (path.to_path_buf(), opts.clone());
    let mut results = ferrisdb_io::executor::run_pinned(1, move |_| {
        let (path, opts) = (path.clone(), opts.clone());
        async move { runtime_syncs(&path, &opts).await }
    })
    .map_err(|e| ferrisdb_io::Error::Invalid(format!("starting a pinned executor: {e}")))?;
    results.pop().expect("one core, one result")
}

/// A buffer of `len` bytes whose every page starts with its file offset.
fn patterned(disk: &RealDisk, pos: u64, len: usize) -> <RealDisk as Disk>::Buf {
    let mut buf = disk.alloc_buf(len);
    stamp(pos, buf.as_mut_slice());
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

/// Bytes per second of `seq_depth` transfers of `seq_block_bytes` in
/// flight, taking consecutive blocks, wrapping at the end of the file.
fn sequential(path: &Path, o: &DiskOptions, write: bool) -> ferrisdb_io::Result<u64> {
    let mut file = DirectFile::open(path, false)?;
    let bytes = o.file_bytes_rounded();
    let block = o.seq_block_bytes;
    let mut next = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let transfer = if write {
        Transfer::Write
    } else {
        Transfer::Read
    };
    let job = Pump {
        transfer,
        block,
        depth: o.seq_depth,
        deadline,
    };
    let done = file.pump(
        job,
        || {
            let pos = next;
            next = (pos + block as u64) % bytes;
            pos
        },
        stamp,
        |pos, _, got| {
            if write {
                Ok(())
            } else {
                check_read(path, pos, block, got)
            }
        },
    )?;
    let rate = (done * block as u64) as f64 / started.elapsed().as_secs_f64();
    if write {
        file.fdatasync()?;
    }
    Ok(rate as u64)
}

/// Random 4 KiB reads with `depth` in flight; IOPS and latency percentiles.
fn random_reads(path: &Path, o: &DiskOptions, depth: usize) -> ferrisdb_io::Result<RandomRead> {
    let mut file = DirectFile::open(path, false)?;
    let pages = o.file_bytes_rounded() / SMALL_BLOCK_BYTES as u64;
    let mut latencies = histogram();
    let mut rng = SplitMix((depth as u64).wrapping_mul(0x9E37_79B9) ^ 0x5EED);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let job = Pump {
        transfer: Transfer::Read,
        block: SMALL_BLOCK_BYTES,
        depth,
        deadline,
    };
    let ops = file.pump(
        job,
        || rng.next() % pages * SMALL_BLOCK_BYTES as u64,
        stamp,
        |pos, took, got| {
            record(&mut latencies, took);
            check_read(path, pos, SMALL_BLOCK_BYTES, got)
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    Ok(RandomRead {
        block_bytes: SMALL_BLOCK_BYTES as u64,
        depth: depth as u32,
        iops: (ops as f64 / secs) as u64,
        p50_us: micros(&latencies, 0.5),
        p99_us: micros(&latencies, 0.99),
    })
}

/// Stamps every page of `buf`, written at `pos`, with its own offset.
fn stamp(pos: u64, buf: &mut [u8]) {
    for (i, page) in buf.chunks_mut(PAGE_BYTES).enumerate() {
        page[..8].copy_from_slice(&(pos + (i * PAGE_BYTES) as u64).to_le_bytes());
    }
}

/// 4 KiB writes through the first [`SYNC_REGION_BYTES`] of the (allocated)
/// file, each followed by `fdatasync`.
fn synced_writes(path: &Path, o: &DiskOptions) -> ferrisdb_io::Result<Fdatasync> {
    let timed = durable_writes(path, o, false, true)?;
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
fn dsync_writes(path: &Path, o: &DiskOptions) -> ferrisdb_io::Result<DsyncWrite> {
    let timed = durable_writes(path, o, true, false)?;
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
/// [`SYNC_REGION_BYTES`] of the file opened O_DIRECT (| O_DSYNC when
/// `dsync`), each followed by `fdatasync` when `sync`; on a private ring
/// ([`DirectFile`] says why and how it times), on this thread, held on one
/// CPU after the first pair ([`StayOnCpu`]).
fn durable_writes(
    path: &Path,
    o: &DiskOptions,
    dsync: bool,
    sync: bool,
) -> ferrisdb_io::Result<TimedWrites> {
    let mut file = DirectFile::open(path, dsync)?;
    let region = o.file_bytes_rounded().min(SYNC_REGION_BYTES);
    let (mut writes, mut syncs) = (histogram(), histogram());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let (mut pos, mut ops) = (0u64, 0u64);
    let mut stay = None;
    while Instant::now() < deadline {
        stamp(pos, file.page_mut()?);
        record(&mut writes, file.write_page(pos)?);
        if sync {
            record(&mut syncs, file.fdatasync()?);
        }
        pos = (pos + SMALL_BLOCK_BYTES as u64) % region;
        ops += 1;
        if ops == 1 {
            // After the first pair (see StayOnCpu); a thread that cannot be
            // held only measures with more migrations.
            stay = StayOnCpu::here().ok();
        }
    }
    drop(stay);
    Ok(TimedWrites {
        ops_per_sec: (ops as f64 / started.elapsed().as_secs_f64()) as u64,
        writes,
        syncs,
    })
}

/// The fdatasync test again, through the engine's own I/O path (a glommio
/// executor pinned as a node's core is, and `RealDisk`): what a durability
/// step costs the engine, the runtime's submissions, sleeps and wake-ups
/// included. Each sync is timed from the call to its completion.
async fn runtime_syncs(path: &Path, o: &DiskOptions) -> ferrisdb_io::Result<RuntimeSync> {
    let disk = RealDisk::new();
    let file = disk.open(path, OpenMode::ReadWrite).await?;
    let region = o.file_bytes_rounded().min(SYNC_REGION_BYTES);
    let mut syncs = histogram();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.secs_per_test);
    let (mut pos, mut ops) = (0u64, 0u64);
    while Instant::now() < deadline {
        file.write_at(patterned(&disk, pos, SMALL_BLOCK_BYTES), pos)
            .await?;
        let t = Instant::now();
        file.sync().await?;
        record(&mut syncs, t.elapsed());
        pos = (pos + SMALL_BLOCK_BYTES as u64) % region;
        ops += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    file.close().await?;
    Ok(RuntimeSync {
        ops_per_sec: (ops as f64 / secs) as u64,
        sync_p50_us: micros(&syncs, 0.5),
        sync_p99_us: micros(&syncs, 0.99),
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
