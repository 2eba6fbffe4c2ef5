//! The data-directory lock: one `ferrisdb` process per data directory.
//!
//! `DIR/LOCK` is locked with `flock(LOCK_EX | LOCK_NB)` (std's
//! `File::try_lock`, which is that call on Linux; the crate forbids unsafe
//! code, so no direct libc call) and holds the owner's pid for the error
//! message of the next one. The kernel drops the lock when the process
//! exits, however it exits, so a stale `LOCK` file never blocks a restart.
//! The file itself is left in place: deleting it on exit would let a
//! process that opened the old file and one that creates a new file both
//! believe they hold the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "LOCK";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {dir} is in use by another ferrisdb process ({})", pid_text(*.pid))]
    InUse { dir: PathBuf, pid: Option<u32> },
    #[error("data directory {dir} is not writable: {source}")]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {dir} is not a directory")]
    NotADirectory { dir: PathBuf },
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    dir: PathBuf,
    /// Open for as long as the lock is held; closing it releases the flock.
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if missing and locks it for this process.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let not_writable = |source| LockError::NotWritable {
            dir: dir.to_path_buf(),
            source,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(LockError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(not_writable)?;
        // Not truncated on open: the pid inside belongs to the holder until
        // the lock is ours.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(not_writable)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::InUse {
                    dir: dir.to_path_buf(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(not_writable(e)),
        }
        write_pid(&mut file).map_err(not_writable)?;
        Ok(DataDirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    // Also proves the directory's filesystem takes writes (not read-only).
    file.sync_data()
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_with_the_holders_pid_and_drop_releases() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let first = DataDirLock::acquire(&dir).expect("first lock (creates the dir)");
        assert_eq!(first.dir(), dir);
        let text = std::fs::read_to_string(dir.join(LOCK_FILE)).expect("read LOCK");
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock locks belong to an open file, so a second open in this
        // process conflicts just as another process would.
        let err = DataDirLock::acquire(&dir).expect_err("second lock");
        assert!(matches!(err, LockError::InUse { pid: Some(p), .. } if p == std::process::id()));
        assert_eq!(
            err.to_string(),
            format!(
                "data directory {} is in use by another ferrisdb process (pid {})",
                dir.display(),
                std::process::id()
            )
        );
        drop(first);
        let again = DataDirLock::acquire(&dir).expect("free after drop");
        drop(again);
    }

    /// Set for the child process of the test below: the directory it locks.
    const CHILD_DIR: &str = "FERRISDB_TEST_LOCK_CHILD_DIR";

    /// Run only as the child of the test below: holds the lock until its
    /// stdin closes.
    #[test]
    #[ignore = "run by another_process_is_named_by_pid_and_its_exit_releases_the_lock"]
    fn child_holds_the_lock_until_stdin_closes() {
        let Some(dir) = std::env::var_os(CHILD_DIR) else {
            return;
        };
        let _lock = DataDirLock::acquire(Path::new(&dir)).expect("child takes the lock");
        println!("locked");
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
    }

    #[test]
    fn another_process_is_named_by_pid_and_its_exit_releases_the_lock() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "lock::tests::child_holds_the_lock_until_stdin_closes",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let locked = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("locked"));
        assert!(locked, "child never took the lock");

        let err = DataDirLock::acquire(tmp.path()).expect_err("held by the child");
        assert!(
            matches!(err, LockError::InUse { pid: Some(p), .. } if p == child.id()),
            "{err}"
        );
        assert!(
            err.to_string().ends_with(&format!("(pid {})", child.id())),
            "{err}"
        );

        drop(child.stdin.take());
        // Read the child's output to its end: a closed pipe would fail it.
        lines.for_each(drop);
        assert!(child.wait().expect("wait").success());
        DataDirLock::acquire(tmp.path()).expect("released when the holder exits");
    }

    #[test]
    fn a_path_that_cannot_be_a_directory_is_not_writable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let err = DataDirLock::acquire(&file.join("data")).expect_err("under a file");
        assert!(matches!(err, LockError::NotWritable { .. }), "{err}");
        assert!(err.to_string().starts_with(&format!(
            "data directory {} is not writable: ",
            file.join("data").display()
        )));
        let err = DataDirLock::acquire(&file).expect_err("a file");
        assert_eq!(
            err.to_string(),
            format!("data directory {} is not a directory", file.display())
        );
    }
}
