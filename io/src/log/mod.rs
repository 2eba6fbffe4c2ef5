//! The segmented, checksummed append-only log with group commit.
//!
//! One implementation serves the engine's write-ahead log and (later) the
//! per-core Raft log. Records get consecutive log sequence numbers (LSNs,
//! starting at 1). [`Log::append`] buffers a record; [`Log::sync`] makes every
//! record up to an LSN durable. Concurrent callers of `sync` share one write and
//! one `fdatasync` (group commit): whoever finds the device idle writes all
//! buffered records as one chunk, the others wait for it.
//!
//! A failed write or sync poisons the log: the bytes on disk are unknown, so
//! every later call fails until the log is reopened (recovery then decides).

pub mod format;

use crate::disk::{Disk, DiskFile, IoBuf, OpenMode, PAGE_BYTES, align_up};
use crate::notify::Notify;
use crate::{Error, Result};
use format::{
    CHUNK_HEADER_BYTES, ChunkProblem, FIRST_CHUNK_OFFSET, RECORD_HEADER_BYTES, SegmentHeader,
    decode_chunk, durability_proven_after, encode_chunk_header, frame_record,
};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use zerocopy::IntoBytes;

/// Log sequence number of a record; the first record is 1.
pub type Lsn = u64;

/// Receives the latency of one durability step.
type DurabilityObserver = Rc<dyn Fn(std::time::Duration)>;

thread_local! {
    /// Told how long each durability step (an O_DSYNC group write or an
    /// fdatasync) took on this thread; metrics hook of the owning core.
    static DURABILITY_OBSERVER: RefCell<Option<DurabilityObserver>> =
        const { RefCell::new(None) };
}

/// Sets the function every log on this thread (core) reports the latency
/// of its durability steps to.
pub fn observe_durability(observer: impl Fn(std::time::Duration) + 'static) {
    DURABILITY_OBSERVER.with(|o| *o.borrow_mut() = Some(Rc::new(observer)));
}

fn report_durability(started: std::time::Instant) {
    let observer = DURABILITY_OBSERVER.with(|o| o.borrow().clone());
    if let Some(observer) = observer {
        observer(started.elapsed());
    }
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    /// File name prefix of segments: `{prefix}-{sequence:020}.log`.
    pub prefix: String,
    /// A segment is closed when the next chunk would take it past this size.
    pub segment_bytes_max: u64,
    /// Largest chunk one group write puts on disk; bounds record size too.
    pub chunk_bytes_max: usize,
    /// Write zeros over each new segment when it is created, so appends
    /// overwrite allocated blocks (cheaper fdatasync on ext4).
    pub preallocate: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            prefix: "wal".into(),
            segment_bytes_max: 64 << 20,
            chunk_bytes_max: 4 << 20,
            preallocate: true,
        }
    }
}

impl LogOptions {
    /// Largest record payload the log accepts.
    pub fn record_bytes_max(&self) -> usize {
        self.chunk_bytes_max - CHUNK_HEADER_BYTES - RECORD_HEADER_BYTES
    }

    fn validate(&self) -> Result<()> {
        let ok = self.chunk_bytes_max.is_multiple_of(PAGE_BYTES)
            && self.chunk_bytes_max >= 2 * PAGE_BYTES
            && self.segment_bytes_max >= FIRST_CHUNK_OFFSET + self.chunk_bytes_max as u64
            && !self.prefix.is_empty();
        if !ok {
            return Err(Error::Invalid(format!("bad log options {self:?}")));
        }
        Ok(())
    }
}

/// The two handles of the segment being appended to.
struct Active<F> {
    /// Plain O_DIRECT: buffered-mode writes, followed by fdatasync when needed.
    plain: F,
    /// O_DIRECT | O_DSYNC: a group write that is durable when it completes.
    dsync: F,
}

struct Segment {
    sequence: u64,
    first_lsn: Lsn,
    path: PathBuf,
}

struct Inner<D: Disk> {
    disk: D,
    dir: PathBuf,
    opts: LogOptions,
    segments: Vec<Segment>,
    active: Rc<Active<D::File>>,
    /// Next write offset in the active segment (page aligned).
    active_pos: u64,
    /// Framed records not yet handed to the disk.
    pending: Vec<u8>,
    pending_records: u32,
    next_lsn: Lsn,
    written_lsn: Lsn,
    durable_lsn: Lsn,
    /// A task is writing chunks; others wait on `io_done`.
    writing: bool,
    /// Highest LSN covered by an fdatasync that has been issued.
    sync_in_flight_lsn: Lsn,
    poisoned: Option<String>,
    /// A zero-filled file ready to become the next segment (temporary name).
    spare: Option<(PathBuf, D::File)>,
    spare_preparing: bool,
}

pub struct Log<D: Disk> {
    /// Weak handle to itself, for background work it starts.
    me: std::rc::Weak<Log<D>>,
    inner: RefCell<Inner<D>>,
    io_done: Notify,
}

/// What [`Log::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// LSN the next appended record will get.
    pub next_lsn: Lsn,
    /// Where a torn tail was cut: (segment path, offset), if any.
    pub cut_at: Option<(PathBuf, u64)>,
}

fn segment_path(dir: &Path, prefix: &str, sequence: u64) -> PathBuf {
    dir.join(format!("{prefix}-{sequence:020}.log"))
}

/// Where a segment is prepared before it is renamed into place.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Segment files of `prefix` in `dir`, sorted by sequence.
pub fn list_segments<D: Disk>(disk: &D, dir: &Path, prefix: &str) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for name in disk.list_dir(dir)? {
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let Some(seq) = rest
            .strip_suffix(".log")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((seq, dir.join(&name)));
    }
    found.sort();
    Ok(found)
}

async fn read_all<F: DiskFile>(file: &F) -> Result<Vec<u8>> {
    let size = file.size().await? as usize;
    let mut out = Vec::with_capacity(size);
    const STEP: usize = 1 << 20;
    while out.len() < size {
        let want = STEP.min(size - out.len());
        let got = file.read_at(out.len() as u64, want).await?;
        if got.is_empty() {
            break;
        }
        out.extend_from_slice(&got);
    }
    Ok(out)
}

fn corrupt(path: &Path, offset: u64, detail: String) -> Error {
    Error::Corrupt {
        what: "log segment",
        path: path.to_path_buf(),
        offset,
        detail,
    }
}

/// One segment file's bytes, as read from disk.
#[derive(Debug, Clone)]
pub struct SegmentImage {
    pub sequence: u64,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Where a verified record lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLocation {
    pub lsn: Lsn,
    /// Index into the scanned images.
    pub segment: usize,
    pub offset: u64,
    pub len: u32,
}

/// The verdict of [`scan_images`] over a log's segments.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Every valid record, in LSN order.
    pub records: Vec<RecordLocation>,
    /// First LSN of each segment (from its header).
    pub first_lsns: Vec<Lsn>,
    pub next_lsn: Lsn,
    /// (segment index, offset) where valid data ends.
    pub end: (usize, u64),
    /// Where a torn tail begins, if there is one (recovery cuts it there).
    pub cut_at: Option<(PathBuf, u64)>,
}

/// Verifies a log's segments (sorted by sequence) without touching the disk:
/// every header, chunk and record checksum, LSN continuity, and whether a bad
/// chunk is a torn tail (no later chunk proves it durable) or corruption (an
/// error naming the file and offset).
pub fn scan_images(images: &[SegmentImage]) -> Result<Scan> {
    assert!(!images.is_empty(), "a log has at least one segment");
    let mut first_lsns = Vec::with_capacity(images.len());
    for img in images {
        let header = SegmentHeader::decode(&img.bytes).map_err(|e| corrupt(&img.path, 0, e))?;
        if header.sequence.get() != img.sequence {
            let detail = format!(
                "header sequence {} differs from name",
                header.sequence.get()
            );
            return Err(corrupt(&img.path, 0, detail));
        }
        first_lsns.push(header.first_lsn.get());
    }
    let mut records = Vec::new();
    let mut expected = first_lsns[0];
    let mut cut_at = None;
    let mut end = (images.len() - 1, FIRST_CHUNK_OFFSET);
    'segments: for (i, img) in images.iter().enumerate() {
        let path = &img.path;
        if first_lsns[i] != expected {
            let detail = format!(
                "segment starts at LSN {}, expected {expected}",
                first_lsns[i]
            );
            return Err(corrupt(path, 0, detail));
        }
        let bytes = &img.bytes;
        let mut offset = FIRST_CHUNK_OFFSET;
        loop {
            let problem = match decode_chunk(bytes, offset) {
                Ok(chunk) if chunk.header.first_lsn.get() == expected => {
                    for (n, &(at, len)) in chunk.records.iter().enumerate() {
                        records.push(RecordLocation {
                            lsn: expected + n as u64,
                            segment: i,
                            offset: at,
                            len,
                        });
                    }
                    expected += chunk.records.len() as u64;
                    offset += chunk.span();
                    continue;
                }
                Ok(chunk) => ChunkProblem::Bad {
                    offset,
                    reason: format!(
                        "chunk starts at LSN {}, expected {expected}",
                        chunk.header.first_lsn.get()
                    ),
                },
                Err(problem) => problem,
            };
            let proven = durability_proven_after(bytes, offset + PAGE_BYTES as u64, expected)
                || images[i + 1..]
                    .iter()
                    .any(|img| durability_proven_after(&img.bytes, FIRST_CHUNK_OFFSET, expected));
            match problem {
                // A closed segment ends where its writer rolled to the next.
                ChunkProblem::End if i + 1 < images.len() => continue 'segments,
                ChunkProblem::End => {
                    end = (i, offset);
                    break 'segments;
                }
                ChunkProblem::Bad {
                    offset: bad_at,
                    reason,
                } if proven => {
                    return Err(corrupt(path, bad_at, reason));
                }
                ChunkProblem::Bad { .. } => {
                    cut_at = Some((path.clone(), offset));
                    end = (i, offset);
                    break 'segments;
                }
            }
        }
    }
    Ok(Scan {
        records,
        first_lsns,
        next_lsn: expected,
        end,
        cut_at,
    })
}

impl<D: Disk> Log<D> {
    /// Opens (or creates) the log in `dir`, verifying every record and passing
    /// each one with LSN >= `replay_from` to `replay` in order.
    ///
    /// A bad chunk is a torn tail, and is cut, unless a later valid chunk shows
    /// that its records had been made durable; then it is corruption and the
    /// error names the file and offset.
    pub async fn open(
        disk: D,
        dir: &Path,
        opts: LogOptions,
        replay_from: Lsn,
        mut replay: impl FnMut(Lsn, &[u8]) -> Result<()>,
    ) -> Result<(Rc<Self>, Recovery)> {
        opts.validate()?;
        disk.create_dir_all(dir).await?;
        // Segments whose creation a crash interrupted never got their name.
        // A complete spare from an earlier run is kept: it is only zeros and
        // re-zeroing 64 MiB at every open would be wasted I/O.
        let spare_path = Self::spare_path(dir, &opts);
        let mut kept_spare = None;
        for name in disk.list_dir(dir)? {
            if !(name.starts_with(&format!("{}-", opts.prefix)) && name.ends_with(".log.tmp")) {
                continue;
            }
            let path = dir.join(name);
            if opts.preallocate && path == spare_path {
                let file = disk.open(&path, OpenMode::ReadWrite).await?;
                if file.size().await? == opts.segment_bytes_max {
                    kept_spare = Some((path, file));
                    continue;
                }
                file.close().await?;
            }
            disk.remove(&path).await?;
        }
        let found = list_segments(&disk, dir, &opts.prefix)?;
        if found.is_empty() {
            let first = match kept_spare.take() {
                Some(blank) => Self::install(&disk, dir, &opts, blank, 1, 1).await?,
                None => Self::create_segment(&disk, dir, &opts, 1, 1).await?,
            };
            let active = Self::with_dsync(&disk, &first.0.path, first.1).await?;
            let first = (first.0, active);
            let log = Self::assemble(
                disk,
                dir,
                opts,
                vec![first.0],
                first.1,
                FIRST_CHUNK_OFFSET,
                1,
            );
            log.prepare_spare();
            return Ok((
                log,
                Recovery {
                    next_lsn: 1,
                    cut_at: None,
                },
            ));
        }

        let mut images = Vec::new();
        for (seq, path) in &found {
            let file = disk.open(path, OpenMode::Read).await?;
            let bytes = read_all(&file).await?;
            file.close().await?;
            images.push(SegmentImage {
                sequence: *seq,
                path: path.clone(),
                bytes,
            });
        }
        let scan = scan_images(&images)?;
        for r in &scan.records {
            if r.lsn >= replay_from {
                let bytes = &images[r.segment].bytes;
                replay(
                    r.lsn,
                    &bytes[r.offset as usize..r.offset as usize + r.len as usize],
                )?;
            }
        }
        let expected = scan.next_lsn;
        let mut cut_at = scan.cut_at.clone();
        let mut segments: Vec<Segment> = images
            .iter()
            .zip(&scan.first_lsns)
            .map(|(img, &first_lsn)| Segment {
                sequence: img.sequence,
                first_lsn,
                path: img.path.clone(),
            })
            .collect();
        let end = scan.end;

        // Drop everything after the end of valid data: later segments hold
        // only unacknowledged bytes (nothing proved them durable).
        let (last, pos) = end;
        for seg in segments.drain(last + 1..) {
            if cut_at.is_none() {
                cut_at = Some((seg.path.clone(), 0));
            }
            disk.remove(&seg.path).await?;
        }
        let active = disk.open(&segments[last].path, OpenMode::ReadWrite).await?;
        if cut_at.is_some() {
            active.truncate(pos).await?;
            active.sync().await?;
            disk.sync_dir(dir).await?;
        }
        let active = Self::with_dsync(&disk, &segments[last].path, active).await?;
        let log = Self::assemble(disk, dir, opts, segments, active, pos, expected);
        log.inner.borrow_mut().spare = kept_spare;
        log.prepare_spare();
        Ok((
            log,
            Recovery {
                next_lsn: expected,
                cut_at,
            },
        ))
    }

    fn assemble(
        disk: D,
        dir: &Path,
        opts: LogOptions,
        segments: Vec<Segment>,
        active: Rc<Active<D::File>>,
        active_pos: u64,
        next_lsn: Lsn,
    ) -> Rc<Self> {
        Rc::new_cyclic(|me| Log {
            me: me.clone(),
            inner: RefCell::new(Inner {
                disk,
                dir: dir.to_path_buf(),
                opts,
                segments,
                active,
                active_pos,
                pending: Vec::new(),
                pending_records: 0,
                next_lsn,
                written_lsn: next_lsn - 1,
                durable_lsn: next_lsn - 1,
                writing: false,
                sync_in_flight_lsn: next_lsn - 1,
                poisoned: None,
                spare: None,
                spare_preparing: false,
            }),
            io_done: Notify::new(),
        })
    }

    /// Creates a segment whose header is durable and whose name is durable.
    async fn create_segment(
        disk: &D,
        dir: &Path,
        opts: &LogOptions,
        sequence: u64,
        first_lsn: Lsn,
    ) -> Result<(Segment, D::File)> {
        let tmp = temp_path(&segment_path(dir, &opts.prefix, sequence));
        let blank = Self::prepare_blank(disk, &tmp, opts).await?;
        Self::install(disk, dir, opts, blank, sequence, first_lsn).await
    }

    /// Creates a file at the temporary path `tmp`, zero-filled to the segment
    /// size if `opts.preallocate`: later appends then overwrite allocated,
    /// written blocks, and fdatasync need not journal extent changes
    /// (fallocate alone leaves "unwritten" extents whose conversion costs a
    /// journal commit per sync).
    async fn prepare_blank(disk: &D, tmp: &Path, opts: &LogOptions) -> Result<(PathBuf, D::File)> {
        if disk.exists(tmp) {
            disk.remove(tmp).await?;
        }
        let file = disk.open(tmp, OpenMode::CreateNew).await?;
        if opts.preallocate {
            let step = (1 << 20).min(opts.segment_bytes_max as usize);
            let mut pos = 0u64;
            while pos < opts.segment_bytes_max {
                let len = step.min((opts.segment_bytes_max - pos) as usize);
                file.write_at(disk.alloc_buf(len), pos).await?;
                pos += len as u64;
            }
        }
        Ok((tmp.to_path_buf(), file))
    }

    /// Turns a blank file into segment `sequence`: header written and synced,
    /// then renamed into place and the directory synced. A crash at any point
    /// never leaves a segment name without a valid header (leftover
    /// temporary files are removed by [`Log::open`]).
    async fn install(
        disk: &D,
        dir: &Path,
        opts: &LogOptions,
        blank: (PathBuf, D::File),
        sequence: u64,
        first_lsn: Lsn,
    ) -> Result<(Segment, D::File)> {
        let (tmp, file) = blank;
        let path = segment_path(dir, &opts.prefix, sequence);
        let mut page = disk.alloc_buf(PAGE_BYTES);
        let header = SegmentHeader::new(sequence, first_lsn);
        page.as_mut_slice()[..size_of::<SegmentHeader>()].copy_from_slice(header.as_bytes());
        file.write_at(page, 0).await?;
        file.sync().await?;
        disk.rename(&tmp, &path).await?;
        disk.sync_dir(dir).await?;
        Ok((
            Segment {
                sequence,
                first_lsn,
                path,
            },
            file,
        ))
    }

    fn spare_path(dir: &Path, opts: &LogOptions) -> PathBuf {
        dir.join(format!("{}-spare.log.tmp", opts.prefix))
    }

    /// Prepares the next segment's zero-filled file on the background queue,
    /// so a roll does not write a whole segment of zeros on the write path.
    /// A failure here only means the roll prepares it itself.
    fn prepare_spare(&self) {
        let (disk, tmp, opts) = {
            let mut inner = self.inner.borrow_mut();
            if !inner.opts.preallocate || inner.spare.is_some() || inner.spare_preparing {
                return;
            }
            inner.spare_preparing = true;
            let tmp = Self::spare_path(&inner.dir, &inner.opts);
            (inner.disk.clone(), tmp, inner.opts.clone())
        };
        let me = self.me.clone();
        crate::executor::spawn_background(async move {
            let blank = Self::prepare_blank(&disk, &tmp, &opts).await;
            let Some(log) = me.upgrade() else { return };
            let mut inner = log.inner.borrow_mut();
            inner.spare_preparing = false;
            match blank {
                Ok(blank) => inner.spare = Some(blank),
                Err(e) => tracing::warn!(error = %e, "preparing the next log segment failed"),
            }
        });
    }

    /// Adds the O_DSYNC handle to a segment's plain one.
    async fn with_dsync(disk: &D, path: &Path, plain: D::File) -> Result<Rc<Active<D::File>>> {
        let dsync = disk.open(path, OpenMode::ReadWriteDsync).await?;
        Ok(Rc::new(Active { plain, dsync }))
    }

    fn check_poison(inner: &Inner<D>) -> Result<()> {
        match &inner.poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Buffers one record and returns its LSN. Nothing is written yet; call
    /// [`Log::sync`] (durable) or [`Log::write_out`] (written, not durable).
    pub fn append(&self, payload: &[u8]) -> Result<Lsn> {
        let mut inner = self.inner.borrow_mut();
        Self::check_poison(&inner)?;
        let max = inner.opts.record_bytes_max();
        if payload.len() > max {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max,
            });
        }
        frame_record(&mut inner.pending, payload);
        inner.pending_records += 1;
        let lsn = inner.next_lsn;
        inner.next_lsn += 1;
        Ok(lsn)
    }

    /// Bytes buffered and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.inner.borrow().pending.len()
    }

    pub fn last_lsn(&self) -> Lsn {
        self.inner.borrow().next_lsn - 1
    }

    pub fn durable_lsn(&self) -> Lsn {
        self.inner.borrow().durable_lsn
    }

    pub fn poisoned(&self) -> Option<String> {
        self.inner.borrow().poisoned.clone()
    }

    /// Makes every record up to `lsn` durable (group commit).
    pub async fn sync(&self, lsn: Lsn) -> Result<()> {
        self.drive(lsn, true).await
    }

    /// Hands every record up to `lsn` to the disk without waiting for durability.
    pub async fn write_out(&self, lsn: Lsn) -> Result<()> {
        self.drive(lsn, false).await
    }

    async fn drive(&self, lsn: Lsn, durable: bool) -> Result<()> {
        loop {
            let wait = {
                let mut inner = self.inner.borrow_mut();
                Self::check_poison(&inner)?;
                let done = if durable {
                    inner.durable_lsn
                } else {
                    inner.written_lsn
                };
                if done >= lsn {
                    return Ok(());
                }
                let sync_covers = durable && inner.sync_in_flight_lsn >= lsn;
                if sync_covers || inner.writing {
                    Some(self.io_done.notified())
                } else {
                    inner.writing = true;
                    None
                }
            };
            match wait {
                Some(notified) => notified.await,
                None => {
                    // Let writers woken by the previous group's completion
                    // append first, so this group takes them all instead of
                    // alternating between groups of one and groups of many.
                    futures_lite::future::yield_now().await;
                    let result = self.lead(durable).await;
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "log write failed; poisoning the log");
                        let mut inner = self.inner.borrow_mut();
                        inner.poisoned.get_or_insert_with(|| e.to_string());
                    }
                    self.io_done.notify_all();
                    result?;
                }
            }
        }
    }

    /// Writes every buffered record, then syncs if `durable`.
    ///
    /// Only one task writes at a time (`writing`), which keeps chunks in LSN
    /// order on disk. The sync is issued after `writing` is released, so the
    /// next group can be written while this one's fdatasync is in flight
    /// (pipelined group commit): an fdatasync covers every write that
    /// completed before it was issued.
    ///
    /// When everything before this group is already durable, a durable group
    /// is written through the O_DSYNC handle instead: each write is durable
    /// when it completes, so no fdatasync follows (one device round trip).
    async fn lead(&self, durable: bool) -> Result<()> {
        let dsync = {
            let inner = self.inner.borrow();
            durable && inner.written_lsn == inner.durable_lsn
        };
        let written = async {
            while let Some((active, pos, buf, last_lsn)) = self.take_chunk().await? {
                let file = if dsync { &active.dsync } else { &active.plain };
                let started = std::time::Instant::now();
                file.write_at(buf, pos).await?;
                if dsync {
                    report_durability(started);
                }
                let mut inner = self.inner.borrow_mut();
                inner.written_lsn = last_lsn;
                if dsync {
                    inner.durable_lsn = last_lsn;
                }
            }
            Ok::<(), Error>(())
        }
        .await;
        let (active, target, need_sync) = {
            let mut inner = self.inner.borrow_mut();
            inner.writing = false;
            let target = inner.written_lsn;
            let need_sync = written.is_ok() && durable && target > inner.durable_lsn;
            if need_sync {
                inner.sync_in_flight_lsn = inner.sync_in_flight_lsn.max(target);
            }
            (inner.active.clone(), target, need_sync)
        };
        self.io_done.notify_all();
        written?;
        if need_sync {
            let started = std::time::Instant::now();
            active.plain.sync().await?;
            report_durability(started);
            let mut inner = self.inner.borrow_mut();
            inner.durable_lsn = inner.durable_lsn.max(target);
        }
        Ok(())
    }

    /// Takes up to one chunk's worth of buffered records, rolling to a new
    /// segment first if it would not fit. Returns the file, offset, page-padded
    /// buffer and the chunk's last LSN.
    async fn take_chunk(&self) -> Result<Option<(Rc<Active<D::File>>, u64, D::Buf, Lsn)>> {
        let (need, seg_max) = {
            let inner = self.inner.borrow();
            if inner.pending.is_empty() {
                return Ok(None);
            }
            let body = Self::chunk_body_len(&inner);
            (
                align_up(CHUNK_HEADER_BYTES + body) as u64,
                inner.opts.segment_bytes_max,
            )
        };
        if self.inner.borrow().active_pos + need > seg_max {
            self.roll().await?;
        }
        let mut inner = self.inner.borrow_mut();
        let body = Self::chunk_body_len(&inner);
        let mut buf = inner.disk.alloc_buf(align_up(CHUNK_HEADER_BYTES + body));
        let (count, _) = Self::records_in(&inner.pending[..body]);
        let first_lsn = inner.written_lsn + 1;
        let slice = buf.as_mut_slice();
        encode_chunk_header(slice, body, count, first_lsn, inner.durable_lsn);
        slice[CHUNK_HEADER_BYTES..CHUNK_HEADER_BYTES + body]
            .copy_from_slice(&inner.pending[..body]);
        inner.pending.drain(..body);
        inner.pending_records -= count;
        let pos = inner.active_pos;
        inner.active_pos += slice.len() as u64;
        Ok(Some((
            inner.active.clone(),
            pos,
            buf,
            first_lsn + count as u64 - 1,
        )))
    }

    /// Length of the prefix of `pending` that fits in one chunk (whole records).
    fn chunk_body_len(inner: &Inner<D>) -> usize {
        let limit = inner.opts.chunk_bytes_max - CHUNK_HEADER_BYTES;
        if inner.pending.len() <= limit {
            return inner.pending.len();
        }
        Self::records_in(&inner.pending[..])
            .1
            .into_iter()
            .take_while(|&end| end <= limit)
            .last()
            .expect("every record fits in a chunk")
    }

    /// Counts the whole framed records in `bytes`; also returns each record's end.
    fn records_in(bytes: &[u8]) -> (u32, Vec<usize>) {
        let mut ends = Vec::new();
        let mut pos = 0;
        while pos + RECORD_HEADER_BYTES <= bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            let end = pos + RECORD_HEADER_BYTES + len;
            if end > bytes.len() {
                break;
            }
            ends.push(end);
            pos = end;
        }
        (ends.len() as u32, ends)
    }

    /// Closes the active segment (synced first, so every segment but the last
    /// is fully durable) and starts the next one.
    async fn roll(&self) -> Result<()> {
        let (disk, dir, opts, old, written, sequence) = {
            let inner = self.inner.borrow();
            let last = inner.segments.last().expect("a log always has a segment");
            (
                inner.disk.clone(),
                inner.dir.clone(),
                inner.opts.clone(),
                inner.active.clone(),
                inner.written_lsn,
                last.sequence + 1,
            )
        };
        old.plain.sync().await?;
        {
            let mut inner = self.inner.borrow_mut();
            inner.durable_lsn = inner.durable_lsn.max(written);
        }
        let spare = self.inner.borrow_mut().spare.take();
        let (segment, file) = match spare {
            Some(blank) => Self::install(&disk, &dir, &opts, blank, sequence, written + 1).await?,
            None => Self::create_segment(&disk, &dir, &opts, sequence, written + 1).await?,
        };
        let active = Self::with_dsync(&disk, &segment.path, file).await?;
        {
            let mut inner = self.inner.borrow_mut();
            inner.segments.push(segment);
            inner.active = active;
            inner.active_pos = FIRST_CHUNK_OFFSET;
        }
        self.prepare_spare();
        Ok(())
    }

    /// Removes whole segments whose records are all below `lsn` (never the
    /// active segment). Returns how many were removed.
    pub async fn truncate_before(&self, lsn: Lsn) -> Result<usize> {
        let (disk, doomed) = {
            let mut inner = self.inner.borrow_mut();
            let mut n = 0;
            while n + 1 < inner.segments.len() && inner.segments[n + 1].first_lsn <= lsn {
                n += 1;
            }
            let doomed: Vec<PathBuf> = inner.segments.drain(..n).map(|s| s.path).collect();
            (inner.disk.clone(), doomed)
        };
        for path in &doomed {
            disk.remove(path).await?;
        }
        Ok(doomed.len())
    }

    /// Number of segment files currently in use.
    pub fn segment_count(&self) -> usize {
        self.inner.borrow().segments.len()
    }

    /// Writes and syncs everything buffered, then closes the active file.
    pub async fn close(self: Rc<Self>) -> Result<()> {
        let last = self.last_lsn();
        self.sync(last).await?;
        Ok(())
    }
}
