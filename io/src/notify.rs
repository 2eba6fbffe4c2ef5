//! A single-threaded wake-all notification, executor agnostic.
//!
//! Group commit needs "wait until the I/O in progress finishes" without a lock;
//! everything on a core runs on one thread, so a `RefCell` of wakers suffices.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Notify {
    epoch: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every task currently waiting in [`Notify::notified`].
    pub fn notify_all(&self) {
        self.epoch.set(self.epoch.get() + 1);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves at the next [`Notify::notify_all`] after this call.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            epoch: self.epoch.get(),
        }
    }
}

pub struct Notified<'a> {
    notify: &'a Notify,
    epoch: u64,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.epoch.get() != self.epoch {
            return Poll::Ready(());
        }
        self.notify.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn notified_resolves_only_after_notify() {
        crate::executor::run_local(|| async {
            let notify = Rc::new(Notify::new());
            let fired = Rc::new(Cell::new(false));
            let waiter = {
                let notify = notify.clone();
                let fired = fired.clone();
                glommio::spawn_local(async move {
                    notify.notified().await;
                    fired.set(true);
                })
            };
            futures_lite::future::yield_now().await;
            assert!(!fired.get(), "waiter must not run before notify_all");
            notify.notify_all();
            waiter.await;
            assert!(fired.get());
        });
    }
}
