//! A deterministic, in-memory `Disk` for fault-injection tests.
//!
//! # Fault model
//! - Every file keeps two images: what was written and what is durable. `sync`
//!   makes the written image durable; names (create, rename, remove) become
//!   durable at `sync_dir` of their directory.
//! - [`SimDisk::crash_image`] returns the disk a machine would see after power
//!   loss: durable names and durable bytes only, and (if tearing is on) the last
//!   unsynced write of each file partially applied, sector by sector.
//! - [`SimFaults`] makes the n-th sync crash the disk (it does not take effect and
//!   every later operation fails), or the n-th write or sync fail with EIO.
//! - [`SimDisk::flip_bit`] corrupts a byte in both images.
//!
//! All choices come from one seed, so a failing test replays exactly.

use super::{Disk, DiskFile, IoBuf, OpenMode, check_aligned};
use crate::{Error, Result};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Granularity at which an interrupted write can be torn.
pub const SECTOR_BYTES: usize = 512;

/// Faults to inject, counted from the disk's creation (0-based).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimFaults {
    /// The sync (file or directory) with this number crashes the disk instead of completing.
    pub crash_at_sync: Option<u64>,
    /// The write with this number fails with EIO (nothing is written).
    pub fail_write: Option<u64>,
    /// The file sync with this number fails with EIO (nothing becomes durable).
    pub fail_sync: Option<u64>,
    /// Whether `crash_image` tears the last unsynced write of each file.
    pub tear_on_crash: bool,
}

#[derive(Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Unsynced writes, oldest first: (pos, len).
    unsynced: Vec<(u64, usize)>,
}

struct State {
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    faults: SimFaults,
    writes: u64,
    syncs: u64,
    file_syncs: u64,
    crashed: bool,
    rng: u64,
}

/// Counters of what the disk has seen, for tests that enumerate sync points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCounters {
    pub writes: u64,
    pub syncs: u64,
    pub crashed: bool,
}

#[derive(Clone)]
pub struct SimDisk {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDisk")
            .field("counters", &self.counters())
            .finish()
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn eio(op: &'static str, path: &Path, why: &str) -> Error {
    Error::os(op, path, std::io::Error::other(format!("EIO ({why})")))
}

impl SimDisk {
    pub fn new(seed: u64) -> Self {
        Self::with_faults(seed, SimFaults::default())
    }

    pub fn with_faults(seed: u64, faults: SimFaults) -> Self {
        SimDisk {
            state: Rc::new(RefCell::new(State {
                inodes: BTreeMap::new(),
                next_ino: 1,
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                faults,
                writes: 0,
                syncs: 0,
                file_syncs: 0,
                crashed: false,
                rng: seed,
            })),
        }
    }

    pub fn set_faults(&self, faults: SimFaults) {
        self.state.borrow_mut().faults = faults;
    }

    pub fn counters(&self) -> SimCounters {
        let s = self.state.borrow();
        SimCounters {
            writes: s.writes,
            syncs: s.syncs,
            crashed: s.crashed,
        }
    }

    /// The disk as it would be found after a power loss now: durable names and
    /// bytes only (plus torn sectors of the last unsynced write, if enabled).
    /// The returned disk has no faults armed.
    pub fn crash_image(&self) -> SimDisk {
        let mut s = self.state.borrow_mut();
        let tear = s.faults.tear_on_crash;
        let mut rng = s.rng;
        let mut inodes = BTreeMap::new();
        for (&ino, inode) in &s.inodes {
            let mut durable = inode.durable.clone();
            if let (true, Some(&(pos, len))) = (tear, inode.unsynced.last()) {
                tear_write(&mut durable, &inode.data, pos, len, &mut rng);
            }
            inodes.insert(
                ino,
                Inode {
                    data: durable.clone(),
                    durable,
                    unsynced: Vec::new(),
                },
            );
        }
        s.rng = rng;
        SimDisk {
            state: Rc::new(RefCell::new(State {
                inodes,
                next_ino: s.next_ino,
                names: s.durable_names.clone(),
                durable_names: s.durable_names.clone(),
                faults: SimFaults::default(),
                writes: 0,
                syncs: 0,
                file_syncs: 0,
                crashed: false,
                rng: splitmix(&mut rng),
            })),
        }
    }

    /// Flips one bit of a file in both its written and durable images.
    ///
    /// # Panics
    /// If the file does not exist or is shorter than `offset`: a test bug.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) {
        let mut s = self.state.borrow_mut();
        let ino = *s.names.get(path).expect("flip_bit: file exists");
        let inode = s.inodes.get_mut(&ino).expect("inode of a live name");
        let at = usize::try_from(offset).expect("offset fits in memory");
        inode.data[at] ^= 1 << (bit % 8);
        if at < inode.durable.len() {
            inode.durable[at] ^= 1 << (bit % 8);
        }
    }

    /// Current length of a file, for tests that pick offsets to corrupt.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let s = self.state.borrow();
        s.names.get(path).map(|ino| s.inodes[ino].data.len() as u64)
    }

    /// Paths of every file, for tests that corrupt "any" file.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.state.borrow().names.keys().cloned().collect()
    }

    fn check_alive(&self, op: &'static str, path: &Path) -> Result<()> {
        if self.state.borrow().crashed {
            return Err(eio(op, path, "simulated crash"));
        }
        Ok(())
    }
}

/// Applies a random subset of the sectors of the write `(pos, len)` from
/// `written` onto `durable`: what a power cut in the middle of it leaves.
fn tear_write(durable: &mut Vec<u8>, written: &[u8], pos: u64, len: usize, rng: &mut u64) {
    let start = pos as usize;
    let sectors = len.div_ceil(SECTOR_BYTES);
    for sector in 0..sectors {
        if splitmix(rng).is_multiple_of(2) {
            continue;
        }
        let from = start + sector * SECTOR_BYTES;
        let to = (from + SECTOR_BYTES).min(start + len).min(written.len());
        if from >= to {
            continue;
        }
        if durable.len() < to {
            durable.resize(to, 0);
        }
        durable[from..to].copy_from_slice(&written[from..to]);
    }
}

impl IoBuf for Vec<u8> {
    fn as_slice(&self) -> &[u8] {
        self
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self
    }
}

impl Disk for SimDisk {
    type Buf = Vec<u8>;
    type File = SimFile;

    fn alloc_buf(&self, len: usize) -> Vec<u8> {
        assert!(
            len.is_multiple_of(super::PAGE_BYTES),
            "DMA buffers are whole pages"
        );
        vec![0; len]
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> Result<SimFile> {
        self.check_alive("open", path)?;
        let mut s = self.state.borrow_mut();
        let ino = match (mode, s.names.get(path).copied()) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(Error::os(
                    "create",
                    path,
                    std::io::ErrorKind::AlreadyExists.into(),
                ));
            }
            (OpenMode::CreateNew, None) => {
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                s.names.insert(path.to_path_buf(), ino);
                ino
            }
            (_, Some(ino)) => ino,
            (_, None) => return Err(Error::os("open", path, std::io::ErrorKind::NotFound.into())),
        };
        Ok(SimFile {
            disk: self.clone(),
            ino,
            path: path.to_path_buf(),
            writable: mode != OpenMode::Read,
            dsync: mode == OpenMode::ReadWriteDsync,
        })
    }

    async fn remove(&self, path: &Path) -> Result<()> {
        self.check_alive("remove", path)?;
        match self.state.borrow_mut().names.remove(path) {
            Some(_) => Ok(()),
            None => Err(Error::os(
                "remove",
                path,
                std::io::ErrorKind::NotFound.into(),
            )),
        }
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.check_alive("rename", from)?;
        let mut s = self.state.borrow_mut();
        let Some(ino) = s.names.remove(from) else {
            return Err(Error::os(
                "rename",
                from,
                std::io::ErrorKind::NotFound.into(),
            ));
        };
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.check_alive("fsync dir", dir)?;
        let mut s = self.state.borrow_mut();
        let n = s.syncs;
        s.syncs += 1;
        if s.faults.crash_at_sync == Some(n) {
            s.crashed = true;
            return Err(eio("fsync dir", dir, "simulated crash"));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        s.durable_names.retain(|p, _| !in_dir(p));
        let current: Vec<(PathBuf, u64)> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        s.durable_names.extend(current);
        Ok(())
    }

    async fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.check_alive("create dir", dir)
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.check_alive("list dir", dir)?;
        let s = self.state.borrow();
        let names = s
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        self.state.borrow().names.contains_key(path)
    }
}

pub struct SimFile {
    disk: SimDisk,
    ino: u64,
    path: PathBuf,
    writable: bool,
    /// O_DSYNC: each write is also a sync point and durable on completion.
    dsync: bool,
}

impl SimFile {
    /// Counts a sync point and applies the armed crash or EIO to it.
    fn sync_point(&self, op: &'static str) -> Result<()> {
        let mut s = self.disk.state.borrow_mut();
        let n = s.syncs;
        s.syncs += 1;
        let f = s.file_syncs;
        s.file_syncs += 1;
        if s.faults.crash_at_sync == Some(n) {
            s.crashed = true;
            return Err(eio(op, &self.path, "simulated crash"));
        }
        if s.faults.fail_sync == Some(f) {
            return Err(eio(op, &self.path, "injected"));
        }
        Ok(())
    }

    fn with_inode<T>(&self, f: impl FnOnce(&mut Inode) -> T) -> T {
        let mut s = self.disk.state.borrow_mut();
        f(s.inodes
            .get_mut(&self.ino)
            .expect("open files keep their inode"))
    }
}

impl DiskFile for SimFile {
    type Buf = Vec<u8>;
    type ReadBuf = Vec<u8>;

    async fn read_at(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        self.disk.check_alive("read", &self.path)?;
        Ok(self.with_inode(|inode| {
            let start = (pos as usize).min(inode.data.len());
            let end = start.saturating_add(len).min(inode.data.len());
            inode.data[start..end].to_vec()
        }))
    }

    async fn write_at(&self, buf: Vec<u8>, pos: u64) -> Result<()> {
        // Real I/O suspends the caller; so does this, letting other tasks run
        // (group commit only batches if writers overlap).
        futures_lite::future::yield_now().await;
        self.disk.check_alive("write", &self.path)?;
        check_aligned(&self.path, pos, buf.len())?;
        if !self.writable {
            return Err(Error::os(
                "write",
                &self.path,
                std::io::Error::from_raw_os_error(libc::EBADF),
            ));
        }
        {
            let mut s = self.disk.state.borrow_mut();
            let n = s.writes;
            s.writes += 1;
            if s.faults.fail_write == Some(n) {
                return Err(eio("write", &self.path, "injected"));
            }
        }
        self.with_inode(|inode| {
            let start = pos as usize;
            if inode.data.len() < start + buf.len() {
                inode.data.resize(start + buf.len(), 0);
            }
            inode.data[start..start + buf.len()].copy_from_slice(&buf);
            inode.unsynced.push((pos, buf.len()));
        });
        if self.dsync {
            // The write reached the medium above (and can be torn if the
            // crash lands here); it is durable only if its sync point passes,
            // and then only its own bytes are (O_DSYNC promises no more).
            self.sync_point("write (O_DSYNC)")?;
            self.with_inode(|inode| {
                let (start, end) = (pos as usize, pos as usize + buf.len());
                if inode.durable.len() < end {
                    inode.durable.resize(end, 0);
                }
                inode.durable[start..end].copy_from_slice(&inode.data[start..end]);
                inode.unsynced.retain(|&u| u != (pos, buf.len()));
            });
        }
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        futures_lite::future::yield_now().await;
        self.disk.check_alive("fdatasync", &self.path)?;
        self.sync_point("fdatasync")?;
        self.with_inode(|inode| {
            inode.durable = inode.data.clone();
            inode.unsynced.clear();
        });
        Ok(())
    }

    async fn size(&self) -> Result<u64> {
        self.disk.check_alive("stat", &self.path)?;
        Ok(self.with_inode(|inode| inode.data.len() as u64))
    }

    async fn preallocate(&self, _len: u64) -> Result<()> {
        self.disk.check_alive("fallocate", &self.path)
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        self.disk.check_alive("truncate", &self.path)?;
        self.with_inode(|inode| {
            inode.data.truncate(len as usize);
            inode.unsynced.retain(|&(pos, _)| pos < len);
        });
        Ok(())
    }

    async fn close(self) -> Result<()> {
        Ok(())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
