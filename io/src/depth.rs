//! The per-executor cap on disk operations in flight
//! ([`ExecutorOptions::io_depth`](crate::executor::ExecutorOptions)).
//!
//! Why a cap: past the queue depth at which a device stops gaining
//! throughput (measured by `ferrisdb tune disk`), more operations in flight
//! only wait longer inside the device or the kernel, where nothing can
//! reorder them. Waiting here instead keeps the device queue short, so a
//! foreground read that arrives behind a burst waits for fewer operations.
//! The same idea as Seastar's I/O scheduler, without its per-class queues:
//! operations wait in arrival order (glommio's semaphore is fair).
//!
//! Every [`RealDisk`](crate::RealDisk) read, write and sync holds one slot
//! for as long as the operation is in the kernel.

use glommio::sync::{Semaphore, StaticPermit};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;

thread_local! {
    static SLOTS: OnceCell<Rc<Semaphore>> = const { OnceCell::new() };
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
    static IN_FLIGHT_MAX: Cell<usize> = const { Cell::new(0) };
}

/// One disk operation's place in the executor's queue depth; released on drop.
pub(crate) struct IoSlot {
    _permit: StaticPermit,
}

/// Waits for a free slot (arrival order) and takes it.
pub(crate) async fn acquire() -> IoSlot {
    let slots = SLOTS.with(|cell| {
        cell.get_or_init(|| Rc::new(Semaphore::new(crate::executor::options().io_depth as u64)))
            .clone()
    });
    let permit = slots
        .acquire_static_permit(1)
        .await
        .expect("the slot semaphore is never closed");
    let now = IN_FLIGHT.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    IN_FLIGHT_MAX.with(|m| m.set(m.get().max(now)));
    IoSlot { _permit: permit }
}

impl Drop for IoSlot {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| {
            assert!(n.get() > 0, "a slot is released once");
            n.set(n.get() - 1);
        });
    }
}

/// Disk operations this executor has in flight now.
pub fn in_flight() -> usize {
    IN_FLIGHT.with(Cell::get)
}

/// The most disk operations this executor has had in flight at once.
pub fn in_flight_max() -> usize {
    IN_FLIGHT_MAX.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ExecutorOptions, run_pinned_with};
    use crate::{Disk, DiskFile, OpenMode, RealDisk};

    /// 16 concurrent readers on an executor with io_depth 3 never have more
    /// than 3 reads in the kernel, and do reach 3.
    #[test]
    fn reads_in_flight_never_exceed_io_depth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        std::fs::write(&path, vec![7u8; 64 * 4096]).expect("write data");
        let options = ExecutorOptions {
            io_depth: 3,
            ..ExecutorOptions::default()
        };
        let maxima = run_pinned_with(1, options, move |_| {
            let path = path.clone();
            async move {
                let disk = RealDisk::new();
                let file = Rc::new(disk.open(&path, OpenMode::Read).await.expect("open"));
                let mut tasks = Vec::new();
                for reader in 0..16u64 {
                    let file = file.clone();
                    tasks.push(crate::executor::spawn(async move {
                        for i in 0..8u64 {
                            let pos = ((reader * 8 + i) % 64) * 4096;
                            let got = file.read_at(pos, 4096).await.expect("read");
                            assert!(got.iter().all(|b| *b == 7));
                        }
                    }));
                }
                for t in tasks {
                    t.await;
                }
                assert_eq!(in_flight(), 0, "every slot released");
                in_flight_max()
            }
        })
        .expect("executor");
        assert_eq!(maxima, vec![3]);
    }

    /// A task cancelled while it waits for a slot must not take a slot
    /// with it: later operations still get every slot.
    #[test]
    fn a_cancelled_waiter_does_not_leak_a_slot() {
        let options = ExecutorOptions {
            io_depth: 1,
            ..ExecutorOptions::default()
        };
        let got = run_pinned_with(1, options, |_| async {
            for _ in 0..3 {
                let held = acquire().await;
                let waiter = crate::executor::spawn(async {
                    let _slot = acquire().await;
                });
                crate::executor::sleep(std::time::Duration::from_millis(1)).await;
                drop(waiter);
                drop(held);
            }
            let again = futures_lite::future::or(async { Some(acquire().await) }, async {
                crate::executor::sleep(std::time::Duration::from_secs(2)).await;
                None
            })
            .await;
            again.is_some() && in_flight() == 1
        })
        .expect("executor");
        assert_eq!(got, vec![true]);
    }

    #[test]
    fn bad_options_are_refused_before_any_executor_starts() {
        for options in [
            ExecutorOptions {
                io_depth: 0,
                ..ExecutorOptions::default()
            },
            ExecutorOptions {
                background_shares: 1001,
                ..ExecutorOptions::default()
            },
        ] {
            let err = run_pinned_with(1, options, |_| async {}).expect_err("refused");
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        }
    }
}
