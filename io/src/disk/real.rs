//! The production `Disk`: O_DIRECT files driven through io_uring by glommio.
//!
//! Must be used from inside a glommio executor (see [`crate::executor`]).

use super::{Disk, DiskFile, IoBuf, OpenMode, check_aligned, parent_of};
use crate::{Error, Result};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions, ReadResult};
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Name of the scratch file used to make glommio probe polled-I/O support
/// against a file that holds data (see [`ensure_probed`]).
const PROBE_FILE_NAME: &str = ".ferrisdb-iopoll-probe";

thread_local! {
    /// Devices (st_dev) whose polled-I/O support this thread's reactor has
    /// already probed correctly.
    static PROBED_DEVICES: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

#[derive(Clone, Debug, Default)]
pub struct RealDisk;

impl RealDisk {
    pub fn new() -> Self {
        RealDisk
    }
}

impl IoBuf for DmaBuffer {
    fn as_slice(&self) -> &[u8] {
        self.as_bytes()
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
}

/// glommio resolves paths against no directory (it passes an invalid
/// directory fd to `openat`), so relative paths fail with EBADF; every path
/// handed to glommio is made absolute first.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}

fn os<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(glommio::GlommioError<()>) -> Error + 'a {
    move |err| {
        // glommio's own conversion rebuilds an `EnhancedIoError` from its
        // text, which loses the errno; the source keeps it, and `Error::Os`
        // already names the operation and the path.
        let source = match err {
            glommio::GlommioError::EnhancedIoError { source, .. } => source,
            other => std::io::Error::from(other),
        };
        Error::os(op, path, source)
    }
}

/// Works around a glommio 0.9 pitfall (DESIGN.md §9): the first DMA file a
/// thread opens on a device decides, by reading its offset 0 through the poll
/// ring, whether the device supports polled I/O. An empty file "succeeds" that
/// read and every later O_DIRECT read fails with EOPNOTSUPP. So before the first
/// open on a device, open a scratch file that holds a page of data.
async fn ensure_probed(dir: &Path) -> Result<()> {
    let dev = match std::fs::metadata(dir) {
        Ok(meta) => meta.dev(),
        Err(source) => return Err(Error::os("stat", dir, source)),
    };
    if PROBED_DEVICES.with(|set| set.borrow().contains(&dev)) {
        return Ok(());
    }
    let probe = dir.join(format!("{PROBE_FILE_NAME}-{}", std::process::id()));
    let write_probe = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&probe)?;
        file.write_all(&[0xA5; 4096])?;
        Ok(())
    };
    write_probe().map_err(|source| Error::os("write probe file", &probe, source))?;
    let opened = OpenOptions::new().read(true).dma_open(&probe).await;
    let _ = std::fs::remove_file(&probe);
    let file = opened.map_err(os("open probe file", &probe))?;
    file.close().await.map_err(os("close probe file", &probe))?;
    PROBED_DEVICES.with(|set| set.borrow_mut().insert(dev));
    Ok(())
}

impl Disk for RealDisk {
    type Buf = DmaBuffer;
    type File = RealFile;

    fn alloc_buf(&self, len: usize) -> DmaBuffer {
        assert!(
            len.is_multiple_of(super::PAGE_BYTES),
            "DMA buffers are whole pages"
        );
        let mut buf = glommio::allocate_dma_buffer(len);
        buf.as_bytes_mut().fill(0);
        buf
    }

    async fn open(&self, path: &Path, mode: OpenMode) -> Result<RealFile> {
        let path = &absolute(path);
        ensure_probed(&parent_of(path)).await?;
        let mut opts = OpenOptions::new();
        match mode {
            OpenMode::Read => opts.read(true),
            OpenMode::ReadWrite => opts.read(true).write(true),
            OpenMode::CreateNew => opts.read(true).write(true).create_new(true),
            OpenMode::ReadWriteDsync => opts.read(true).write(true).custom_flags(libc::O_DSYNC),
        };
        let file = opts.dma_open(path).await.map_err(os("open", path))?;
        Ok(RealFile {
            file,
            path: path.to_path_buf(),
        })
    }

    async fn remove(&self, path: &Path) -> Result<()> {
        glommio::io::remove(absolute(path))
            .await
            .map_err(os("remove", path))
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        glommio::io::rename(absolute(from), absolute(to))
            .await
            .map_err(os("rename", from))
    }

    async fn sync_dir(&self, dir: &Path) -> Result<()> {
        let handle = glommio::io::Directory::open(absolute(dir))
            .await
            .map_err(os("open dir", dir))?;
        handle.sync().await.map_err(os("fsync dir", dir))?;
        handle.close().await.map_err(os("close dir", dir))
    }

    async fn create_dir_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::os("create dir", dir, source))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let entries =
            std::fs::read_dir(dir).map_err(|source| Error::os("list dir", dir, source))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::os("list dir", dir, source))?;
            if let Some(name) = entry.file_name().to_str()
                && !name.starts_with(PROBE_FILE_NAME)
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

pub struct RealFile {
    file: DmaFile,
    path: PathBuf,
}

impl DiskFile for RealFile {
    type Buf = DmaBuffer;
    type ReadBuf = ReadResult;

    async fn read_at(&self, pos: u64, len: usize) -> Result<ReadResult> {
        let _slot = crate::depth::acquire().await;
        self.file
            .read_at(pos, len)
            .await
            .map_err(os("read", &self.path))
    }

    async fn write_at(&self, buf: DmaBuffer, pos: u64) -> Result<()> {
        check_aligned(&self.path, pos, buf.len())?;
        let len = buf.len();
        let _slot = crate::depth::acquire().await;
        let written = self
            .file
            .write_at(buf, pos)
            .await
            .map_err(os("write", &self.path))?;
        if written != len {
            return Err(Error::os(
                "write",
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {written} of {len} bytes at {pos}"),
                ),
            ));
        }
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        let _slot = crate::depth::acquire().await;
        self.file
            .fdatasync()
            .await
            .map_err(os("fdatasync", &self.path))
    }

    async fn size(&self) -> Result<u64> {
        self.file.file_size().await.map_err(os("stat", &self.path))
    }

    async fn preallocate(&self, len: u64) -> Result<()> {
        self.file
            .pre_allocate(len, true)
            .await
            .map_err(os("fallocate", &self.path))
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .truncate(len)
            .await
            .map_err(os("truncate", &self.path))
    }

    async fn close(self) -> Result<()> {
        self.file.close().await.map_err(os("close", &self.path))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Disk, OpenMode};

    /// An OS error keeps its errno through glommio (tools classify errors
    /// by it, e.g. `tune disk`'s ENOSPC and EOPNOTSUPP messages).
    #[test]
    fn os_errors_keep_their_errno() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let got = crate::executor::run_local(move || async move {
            match RealDisk::new().open(&missing, OpenMode::Read).await {
                Err(Error::Os { source, .. }) => source.raw_os_error(),
                other => panic!("expected an OS error, got {:?}", other.map(|_| ())),
            }
        });
        assert_eq!(got, Some(libc::ENOENT));
    }
}
