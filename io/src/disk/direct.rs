//! A blocking O_DIRECT file on a private io_uring ring: one 4 KiB page
//! written at a time, each request submitted and awaited from the calling
//! thread, as fio's `io_uring` engine does at queue depth 1. For measuring
//! the device (`ferrisdb tune disk`), not for the engine, which goes through
//! [`super::real::RealDisk`] on its executor.
//!
//! Why a private ring: glommio 0.9's loop arms and cancels timers and links
//! its rings on every pass; `perf trace` on this project's machines counted
//! about eleven `io_uring_enter` calls and a sleep/wake per 4 KiB write +
//! fdatasync pair, and its fdatasync took p50 88–92 µs where this loop's
//! takes 36 µs. That is the runtime's cost, not the device's
//! (docs/tuning.md).
//!
//! Latencies are timed as fio times them: a write from just before its
//! submission to its completion (fio's `lat`), an fdatasync from the return
//! of the submitting `io_uring_enter` to its completion (fio takes a
//! request's issue time after the submission call returns and times syncs
//! from it; io_uring hands an fsync to a kernel worker, which is what that
//! call spends).

use crate::disk::PAGE_BYTES;
use crate::error::{Error, Result};
use io_uring::{IoUring, opcode, squeue, types};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes of a transparent huge page on x86-64.
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// The transfer buffers of one [`DirectFile::pump`] (and the one page of a
/// [`DirectFile`]): `slots` buffers of
/// `slot` bytes carved from one anonymous mapping aligned to 2 MiB and
/// advised to use transparent huge pages. A 1 MiB buffer inside one huge
/// page is one physically contiguous segment and reaches the device as one
/// request; over 4 KiB pages a 1 MiB transfer needs 256 segments, more than
/// a virtio disk takes per request (254 on this project's machines), and the
/// block layer splits it, which costs this device up to half its sequential
/// bandwidth (docs/tuning.md). Huge pages are advice: without them the
/// buffers still work, as 4 KiB pages.
struct Arena {
    map: std::ptr::NonNull<libc::c_void>,
    map_len: usize,
    base: *mut u8,
    slot: usize,
    slots: usize,
}

impl Arena {
    fn new(slot: usize, slots: usize) -> std::io::Result<Arena> {
        assert!(
            slot > 0 && slot.is_multiple_of(PAGE_BYTES) && slots > 0,
            "{slots} slots of {slot} bytes"
        );
        let len = (slot * slots).next_multiple_of(HUGE_PAGE_BYTES);
        let map_len = len + HUGE_PAGE_BYTES;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let map = std::ptr::NonNull::new(map).expect("mmap does not return null on success");
        let offset =
            (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE_BYTES) - map.as_ptr() as usize;
        // SAFETY: `offset < HUGE_PAGE_BYTES`, so `base..base + len` lies
        // inside the mapping of `len + HUGE_PAGE_BYTES` bytes.
        let base = unsafe { map.as_ptr().cast::<u8>().add(offset) };
        // SAFETY: advice on part of our own mapping; failure (no THP) is
        // harmless and ignored.
        unsafe { libc::madvise(base.cast(), len, libc::MADV_HUGEPAGE) };
        Ok(Arena {
            map,
            map_len,
            base,
            slot,
            slots,
        })
    }

    fn slot_ptr(&self, i: usize) -> *mut u8 {
        assert!(i < self.slots, "slot {i} of {}", self.slots);
        // SAFETY: `i < slots`, so the slot lies inside the mapping (above).
        unsafe { self.base.add(i * self.slot) }
    }

    fn slot(&self, i: usize) -> &[u8] {
        // SAFETY: the slot is `slot` bytes of our mapping, zero-initialised
        // by the kernel; callers read it only when no request uses it.
        unsafe { std::slice::from_raw_parts(self.slot_ptr(i), self.slot) }
    }

    fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        // SAFETY: as in `slot`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.slot_ptr(i), self.slot) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped only here.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

/// A ring set up as fio sets up its own: completions are run when this
/// thread asks for them (`DEFER_TASKRUN`, one issuer), not by interrupting
/// it as each one arrives. Kernels before 6.1 lack those flags; they get a
/// plain ring.
fn new_ring(entries: u32) -> std::io::Result<IoUring> {
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .or_else(|_| IoUring::new(entries))
}

/// Which way [`DirectFile::pump`] moves blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Read,
    Write,
}

/// What [`DirectFile::pump`] keeps in flight, and until when.
#[derive(Debug, Clone, Copy)]
pub struct Pump {
    pub transfer: Transfer,
    /// Bytes per transfer: a positive multiple of [`PAGE_BYTES`].
    pub block: usize,
    /// Transfers in flight: at least 1.
    pub depth: usize,
    /// No transfer is started after this.
    pub deadline: Instant,
}

/// An existing file opened O_DIRECT (and O_DSYNC when asked) with its own
/// ring and one page buffer.
pub struct DirectFile {
    ring: IoUring,
    file: std::fs::File,
    path: PathBuf,
    /// `None` once a wait for a request failed: the request may still use
    /// the page, which is then leaked, and the file refuses further writes.
    page: Option<Arena>,
}

impl DirectFile {
    /// Opens `path` (which must exist) for reading and writing.
    pub fn open(path: &Path, dsync: bool) -> Result<DirectFile> {
        let flags = libc::O_DIRECT | if dsync { libc::O_DSYNC } else { 0 };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| Error::os("open", path, e))?;
        let ring = new_ring(4).map_err(|e| Error::os("io_uring_setup", path, e))?;
        let page = Arena::new(PAGE_BYTES, 1).map_err(|e| Error::os("mmap", path, e))?;
        Ok(DirectFile {
            ring,
            file,
            path: path.to_path_buf(),
            page: Some(page),
        })
    }

    /// The page the next [`DirectFile::write_page`] writes.
    pub fn page_mut(&mut self) -> Result<&mut [u8]> {
        Ok(self.page()?.slot_mut(0))
    }

    fn page(&mut self) -> Result<&mut Arena> {
        self.page.as_mut().ok_or_else(|| {
            Error::Poisoned(format!(
                "a wait for a request on {} failed",
                self.path.display()
            ))
        })
    }

    /// Writes the page at `pos` (a multiple of [`PAGE_BYTES`]) and returns
    /// its latency, from before the submission to the completion.
    pub fn write_page(&mut self, pos: u64) -> Result<Duration> {
        let fd = types::Fd(self.file.as_raw_fd());
        let write = opcode::Write::new(fd, self.page()?.slot_ptr(0), PAGE_BYTES as u32)
            .offset(pos)
            .build();
        let started = Instant::now();
        let (result, _) = self.run("write", write)?;
        let took = started.elapsed();
        self.check("write", result, PAGE_BYTES as i32)?;
        Ok(took)
    }

    /// `fdatasync` through the ring; returns its latency from the moment
    /// the submission call returned to the completion.
    pub fn fdatasync(&mut self) -> Result<Duration> {
        let fd = types::Fd(self.file.as_raw_fd());
        let sync = opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build();
        let (result, issued) = self.run("fdatasync", sync)?;
        let took = issued.elapsed();
        self.check("fdatasync", result, 0)?;
        Ok(took)
    }

    /// Keeps `depth` transfers of `block` bytes in flight until `deadline`,
    /// each at the offset `next_pos` gives (a multiple of [`PAGE_BYTES`]),
    /// on a ring of its own. A write's buffer is filled by `fill(pos, buf)`
    /// first; every completed transfer is handed to `done(pos, latency,
    /// buf)`, its latency timed from just before its submission to the
    /// moment its completion was reaped (fio's `lat`). Each transfer is
    /// submitted on its own as soon as its slot is free. A short transfer or
    /// an error from `done` ends the run with that error, after the requests
    /// in flight have completed. Returns the number of transfers completed.
    pub fn pump(
        &mut self,
        Pump {
            transfer,
            block,
            depth,
            deadline,
        }: Pump,
        mut next_pos: impl FnMut() -> u64,
        mut fill: impl FnMut(u64, &mut [u8]),
        mut done: impl FnMut(u64, Duration, &[u8]) -> Result<()>,
    ) -> Result<u64> {
        assert!(depth > 0, "depth 0");
        let entries = depth.next_power_of_two().max(4) as u32;
        let mut ring = new_ring(entries).map_err(|e| Error::os("io_uring_setup", &self.path, e))?;
        let fd = types::Fd(self.file.as_raw_fd());
        let op = match transfer {
            Transfer::Read => "read",
            Transfer::Write => "write",
        };
        let mut arena = Arena::new(block, depth).map_err(|e| Error::os("mmap", &self.path, e))?;
        // Per slot: the offset of its transfer and when it was submitted.
        let mut slots = vec![(0u64, Instant::now()); depth];
        let mut in_flight = 0usize;
        let mut completed = 0u64;
        let mut failed: Option<Error> = None;
        let mut reaped: Vec<(usize, i32)> = Vec::with_capacity(depth);
        // Fills slot `i` with its next transfer and queues it.
        let mut queue = |ring: &mut IoUring, arena: &mut Arena, slot: &mut (u64, Instant), i| {
            let pos = next_pos();
            if transfer == Transfer::Write {
                fill(pos, arena.slot_mut(i));
            }
            let ptr = arena.slot_ptr(i);
            let entry = match transfer {
                Transfer::Read => opcode::Read::new(fd, ptr, block as u32).offset(pos).build(),
                Transfer::Write => opcode::Write::new(fd, ptr, block as u32)
                    .offset(pos)
                    .build(),
            }
            .user_data(i as u64);
            *slot = (pos, Instant::now());
            // SAFETY: the slot's buffer lives in `arena` until every queued
            // request has completed (the loop below drains `in_flight` to
            // zero; if waiting fails, the arena is leaked instead of
            // unmapped), and it is not touched until its request is reaped.
            // The ring has `entries >= depth` submission slots and at most
            // `depth` requests are ever queued or in flight.
            unsafe { ring.submission().push(&entry) }.expect("ring sized for depth");
            // Each request goes to the kernel on its own, as fio submits
            // them: a batch of refills submitted together was dispatched
            // later and cost 10-20% of the IOPS at depths 16 and 64 here
            // (docs/tuning.md). A failed submission leaves the entry queued;
            // the wait below submits it again and reports a lasting error.
            let _ = ring.submit();
        };
        for (i, slot) in slots.iter_mut().enumerate() {
            queue(&mut ring, &mut arena, slot, i);
            in_flight += 1;
        }
        while in_flight > 0 {
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Requests may still be in flight and closing the ring
                    // does not wait for them: leak their buffers rather
                    // than unmap memory the kernel may still write.
                    std::mem::forget(arena);
                    return Err(Error::os(op, &self.path, e));
                }
            }
            // One completion time for everything reaped together, as fio
            // takes it: handing earlier ones over and refilling their slots
            // must not count against later ones.
            let reaped_at = Instant::now();
            reaped.extend(
                ring.completion()
                    .map(|c| (c.user_data() as usize, c.result())),
            );
            for (i, result) in reaped.drain(..) {
                in_flight -= 1;
                let (pos, submitted) = slots[i];
                let took = reaped_at.saturating_duration_since(submitted);
                if failed.is_none() {
                    failed = self.check(op, result, block as i32).err();
                }
                if failed.is_none() {
                    completed += 1;
                    failed = done(pos, took, arena.slot(i)).err();
                }
                if failed.is_none() && Instant::now() < deadline {
                    queue(&mut ring, &mut arena, &mut slots[i], i);
                    in_flight += 1;
                }
            }
        }
        drop(ring);
        match failed {
            Some(e) => Err(e),
            None => Ok(completed),
        }
    }

    /// Submits `entry` and waits for its completion; returns the result and
    /// the instant the submission call returned.
    fn run(&mut self, op: &'static str, entry: squeue::Entry) -> Result<(i32, Instant)> {
        let path = &self.path;
        // SAFETY: what the entry points at (the page and the file, both
        // owned by `self`) outlives the request: this function returns only
        // after the request's completion is reaped, or, if waiting fails,
        // after leaking the page (`self.page` becomes `None`); `&mut self`
        // keeps the page from being touched meanwhile.
        unsafe { self.ring.submission().push(&entry) }.map_err(|_| {
            Error::os(
                op,
                path,
                std::io::Error::other("io_uring submission queue full"),
            )
        })?;
        loop {
            match self.ring.submit() {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::os(op, path, e)),
            }
        }
        let issued = Instant::now();
        loop {
            if let Some(done) = self.ring.completion().next() {
                return Ok((done.result(), issued));
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The request may still be in flight: leak its page
                    // rather than unmap memory the kernel may still use.
                    std::mem::forget(self.page.take());
                    return Err(Error::os(op, &self.path, e));
                }
            }
        }
    }

    fn check(&self, op: &'static str, result: i32, want: i32) -> Result<()> {
        if result == want {
            return Ok(());
        }
        let source = if result < 0 {
            std::io::Error::from_raw_os_error(-result)
        } else {
            std::io::Error::other(format!("{op} returned {result}, expected {want}"))
        };
        Err(Error::os(op, &self.path, source))
    }
}

/// Keeps the calling thread on the CPU it is running on until dropped, then
/// gives it back the CPUs it had.
///
/// For the one-request-at-a-time tests: a thread that sleeps in every wait
/// is woken wherever the scheduler finds room, and on this project's VMs
/// the synced-write loop migrated ~1 000 times a second, which put its
/// fdatasync p99 at 99–118 µs where fio's (whose thread happens to stay
/// put) is 74–96 µs; held on one CPU, 79–95 µs (six alternating pairs,
/// docs/tuning.md). Take it after the first fdatasync: io_uring's kernel
/// worker for this thread is created then and inherits the thread's CPU
/// set, and a worker held on the waiter's CPU made the sync slower (p50
/// 68–76 µs against 36 µs).
pub struct StayOnCpu {
    previous: libc::cpu_set_t,
}

impl StayOnCpu {
    pub fn here() -> std::io::Result<StayOnCpu> {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut previous: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `previous` is a valid, writable cpu_set_t of `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut previous) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: no arguments; returns -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above; CPU_SET writes one bit inside the set (the CPU
        // number comes from the kernel, below CPU_SETSIZE).
        let mut here: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu as usize, &mut here) };
        // SAFETY: `here` is a valid cpu_set_t of `size` bytes.
        if unsafe { libc::sched_setaffinity(0, size, &here) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(StayOnCpu { previous })
    }
}

impl Drop for StayOnCpu {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `previous` is the valid set read in `here`. A failure
        // leaves the thread on one CPU, which is harmless for a tool.
        unsafe { libc::sched_setaffinity(0, size, &self.previous) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn pages_written_read_back_and_syncs_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; 4 * PAGE_BYTES]).expect("lay out");
        for dsync in [false, true] {
            let mut f = DirectFile::open(&path, dsync).expect("open");
            for i in 0..4u64 {
                f.page_mut().expect("page")[..8]
                    .copy_from_slice(&(i + u64::from(dsync) * 10).to_le_bytes());
                f.write_page(i * PAGE_BYTES as u64).expect("write");
                f.fdatasync().expect("fdatasync");
            }
        }
        let plain = std::fs::File::open(&path).expect("open");
        for i in 0..4u64 {
            let mut got = [0u8; 8];
            plain
                .read_exact_at(&mut got, i * PAGE_BYTES as u64)
                .expect("read");
            assert_eq!(u64::from_le_bytes(got), i + 10);
        }
    }

    /// Writes stamped blocks at depth 3 until the deadline, then reads
    /// every written block back at depth 2; a failing `done` stops a run
    /// with its error.
    #[test]
    fn pump_moves_blocks_both_ways_and_stops_on_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let block = 2 * PAGE_BYTES;
        let blocks = 8u64;
        std::fs::write(&path, vec![0u8; block * blocks as usize]).expect("lay out");
        let mut f = DirectFile::open(&path, false).expect("open");
        let job = |transfer, depth| Pump {
            transfer,
            block,
            depth,
            deadline: Instant::now() + Duration::from_millis(20),
        };
        let mut next = 0u64;
        let mut written = std::collections::BTreeSet::new();
        let wrote = f
            .pump(
                job(Transfer::Write, 3),
                || {
                    let pos = next % blocks * block as u64;
                    next += 1;
                    pos
                },
                |pos, buf| buf[..8].copy_from_slice(&(pos + 1).to_le_bytes()),
                |pos, _, _| {
                    written.insert(pos);
                    Ok(())
                },
            )
            .expect("writes");
        assert!(wrote >= 3, "{wrote}");
        assert_eq!(written.len() as u64, wrote.min(blocks));

        let mut order = written.iter().copied().cycle();
        let read = f
            .pump(
                job(Transfer::Read, 2),
                || order.next().expect("cycle"),
                |_, _| unreachable!("reads are not filled"),
                |pos, took, got| {
                    assert!(took > Duration::ZERO);
                    assert_eq!(got.len(), block);
                    assert_eq!(got[..8], (pos + 1).to_le_bytes(), "block at {pos}");
                    Ok(())
                },
            )
            .expect("reads");
        assert!(read >= 2, "{read}");

        let mut calls = 0;
        let e = f
            .pump(
                job(Transfer::Read, 4),
                || 0,
                |_, _| {},
                |_, _, _| {
                    calls += 1;
                    Err(Error::Invalid("stop".into()))
                },
            )
            .expect_err("done failed");
        assert!(matches!(e, Error::Invalid(ref m) if m == "stop"), "{e}");
        assert_eq!(calls, 1, "no transfer is handed over after a failure");
    }

    #[test]
    fn staying_on_a_cpu_holds_the_thread_there_and_gives_its_cpus_back() {
        let allowed = || {
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .expect("Cpus_allowed_list")
                .trim()
                .to_string()
        };
        let before = allowed();
        {
            let _stay = StayOnCpu::here().expect("stay");
            let now = allowed();
            assert!(now.parse::<usize>().is_ok(), "one CPU: {now}");
        }
        assert_eq!(allowed(), before);
    }

    #[test]
    fn errors_name_the_operation_and_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let e = DirectFile::open(&missing, false)
            .err()
            .expect("no such file");
        assert!(e.to_string().starts_with("open "), "{e}");
        assert!(e.to_string().contains("missing"), "{e}");

        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; PAGE_BYTES]).expect("lay out");
        let mut f = DirectFile::open(&path, false).expect("open");
        // O_DIRECT needs an aligned offset: the kernel refuses this one.
        let e = f.write_page(1).expect_err("misaligned");
        assert!(e.to_string().starts_with("write "), "{e}");
        assert!(
            matches!(&e, Error::Os { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
            "{e:?}"
        );
    }
}
