//! The per-executor cap on disk operations in flight
//! ([`ExecutorOptions::io_depth`](crate::executor::ExecutorOptions)).
//!
//! Why a cap: past the queue depth at which a device stops gaining
//! throughput (measured by `ferrisdb tune disk`), more operations in flight
//! only wait longer inside the device or the kernel, where nothing can
//! reorder them. Waiting here instead keeps the device queue short, so a
//! foreground read that arrives behind a burst waits for fewer operations.
//! The same idea as Seastar's I/O scheduler, without its per-class queues:
//! operations wait in arrival order.
//!
//! Every [`RealDisk`](crate::RealDisk) read, write and sync holds one slot
//! for as long as the operation is in the kernel.
//!
//! The queue is our own rather than glommio's `Semaphore`: with that
//! semaphore, a waiter that was woken by a release and then cancelled
//! before it ran took the wake-up with it, so the next waiter slept until
//! some other operation released a slot, which on an idle core is never
//! (a restarted node's core parked in `io_cqring_wait` for good). Its
//! waiters can also be overtaken by a later arrival. Here a release hands
//! the slot straight to the oldest waiter, and a waiter dropped after it
//! was handed a slot passes the slot on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

thread_local! {
    static SLOTS: RefCell<Option<Slots>> = const { RefCell::new(None) };
    static IN_FLIGHT: Cell<usize> = const { Cell::new(0) };
    static IN_FLIGHT_MAX: Cell<usize> = const { Cell::new(0) };
}

/// The executor's free slots and the operations waiting for one.
struct Slots {
    free: usize,
    waiters: VecDeque<Rc<Waiter>>,
}

/// One waiting operation: `granted` is set when a release hands it a slot.
struct Waiter {
    granted: Cell<bool>,
    waker: RefCell<Waker>,
}

fn with_slots<R>(f: impl FnOnce(&mut Slots) -> R) -> R {
    SLOTS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let slots = slots.get_or_insert_with(|| Slots {
            free: crate::executor::options().io_depth,
            waiters: VecDeque::new(),
        });
        f(slots)
    })
}

/// Gives a slot back: to the oldest waiter if there is one, else to the pool.
fn release() {
    let next = with_slots(|slots| {
        let next = slots.waiters.pop_front();
        if next.is_none() {
            slots.free += 1;
        }
        next
    });
    if let Some(waiter) = next {
        waiter.granted.set(true);
        // Woken outside the borrow: a waker may run code that takes a slot.
        waiter.waker.borrow().wake_by_ref();
    }
}

/// One disk operation's place in the executor's queue depth; released on drop.
pub(crate) struct IoSlot {
    _private: (),
}

/// Waits for a free slot (arrival order) and takes it.
pub(crate) fn acquire() -> impl Future<Output = IoSlot> {
    Acquire { waiter: None }
}

struct Acquire {
    waiter: Option<Rc<Waiter>>,
}

impl Future for Acquire {
    type Output = IoSlot;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoSlot> {
        match &self.waiter {
            Some(waiter) if waiter.granted.get() => {
                self.waiter = None;
            }
            Some(waiter) => {
                waiter.waker.borrow_mut().clone_from(cx.waker());
                return Poll::Pending;
            }
            None => {
                let queued = with_slots(|slots| {
                    if slots.free > 0 && slots.waiters.is_empty() {
                        slots.free -= 1;
                        return None;
                    }
                    let waiter = Rc::new(Waiter {
                        granted: Cell::new(false),
                        waker: RefCell::new(cx.waker().clone()),
                    });
                    slots.waiters.push_back(waiter.clone());
                    Some(waiter)
                });
                if queued.is_some() {
                    self.waiter = queued;
                    return Poll::Pending;
                }
            }
        }
        let now = IN_FLIGHT.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        IN_FLIGHT_MAX.with(|m| m.set(m.get().max(now)));
        Poll::Ready(IoSlot { _private: () })
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        if waiter.granted.get() {
            // Handed a slot but cancelled before taking it: pass it on.
            release();
        } else {
            with_slots(|slots| slots.waiters.retain(|w| !Rc::ptr_eq(w, &waiter)));
        }
    }
}

impl Drop for IoSlot {
    fn drop(&mut self) {
        IN_FLIGHT.with(|n| {
            assert!(n.get() > 0, "a slot is released once");
            n.set(n.get() - 1);
        });
        release();
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

    /// A task cancelled while it waits for a slot (before any wake-up)
    /// leaves the queue and takes no slot with it: later operations still
    /// get every slot.
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
                assert_eq!(with_slots(|s| s.waiters.len()), 1, "the waiter queued");
                drop(waiter);
                // glommio drops a cancelled task's future when it next runs it.
                crate::executor::sleep(std::time::Duration::from_millis(1)).await;
                assert_eq!(
                    with_slots(|s| s.waiters.len()),
                    0,
                    "a waiter dropped before its wake-up leaves the queue"
                );
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

    /// Regression: with glommio's semaphore, a waiter woken by a release
    /// and cancelled before it ran took the wake-up with it; the next
    /// waiter slept until some other operation released a slot, which on
    /// an idle core is never (a restarted node parked in io_cqring_wait).
    #[test]
    fn a_waiter_cancelled_after_its_wake_up_passes_the_slot_on() {
        let options = ExecutorOptions {
            io_depth: 1,
            ..ExecutorOptions::default()
        };
        let got = run_pinned_with(1, options, |_| async {
            let held = acquire().await;
            let first = crate::executor::spawn(async {
                let _slot = acquire().await;
            });
            let second = crate::executor::spawn(async {
                let _slot = acquire().await;
            });
            crate::executor::sleep(std::time::Duration::from_millis(1)).await;
            drop(held); // wakes `first`...
            drop(first); // ...which is cancelled before it runs
            futures_lite::future::or(
                async {
                    second.await;
                    true
                },
                async {
                    crate::executor::sleep(std::time::Duration::from_secs(2)).await;
                    false
                },
            )
            .await
                && in_flight() == 0
        })
        .expect("executor");
        assert_eq!(got, vec![true], "the second waiter got the slot");
    }

    /// A released slot goes to the oldest waiter: an operation that
    /// arrives after the release waits behind it.
    #[test]
    fn a_released_slot_goes_to_the_oldest_waiter() {
        let options = ExecutorOptions {
            io_depth: 1,
            ..ExecutorOptions::default()
        };
        let got = run_pinned_with(1, options, |_| async {
            let order = Rc::new(std::cell::RefCell::new(Vec::new()));
            let held = acquire().await;
            let waiter = {
                let order = order.clone();
                crate::executor::spawn(async move {
                    let _slot = acquire().await;
                    order.borrow_mut().push("waiter");
                })
            };
            crate::executor::sleep(std::time::Duration::from_millis(1)).await;
            drop(held);
            // Polled before the waiter runs: it must not take the slot.
            let late = futures_lite::future::poll_once(acquire()).await;
            let overtook = late.is_some();
            drop(late);
            waiter.await;
            let _slot = acquire().await;
            order.borrow_mut().push("late");
            (overtook, order.borrow().clone())
        })
        .expect("executor");
        assert_eq!(got, vec![(false, vec!["waiter", "late"])]);
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
