//! Executor bootstrap: one glommio `LocalExecutor` per core, pinned, each with a
//! foreground queue (the executor's default) and a background queue with fewer
//! shares for flush and compaction, so background I/O cannot starve foreground
//! latency.

use glommio::{Latency, LocalExecutorBuilder, Placement, Shares, TaskQueueHandle};
use std::cell::OnceCell;
use std::future::Future;
use std::time::Duration;

/// Shares of the foreground queue (the executor's default queue has 1000).
pub const FOREGROUND_SHARES: usize = 1000;
/// Default shares of the background queue: a quarter of the foreground's.
pub const BACKGROUND_SHARES_DEFAULT: usize = 250;

thread_local! {
    static BACKGROUND: OnceCell<TaskQueueHandle> = const { OnceCell::new() };
}

/// The calling executor's background task queue, created on first use.
pub fn background_queue() -> TaskQueueHandle {
    BACKGROUND.with(|cell| {
        *cell.get_or_init(|| {
            glommio::executor().create_task_queue(
                Shares::Static(BACKGROUND_SHARES_DEFAULT),
                Latency::NotImportant,
                "background",
            )
        })
    })
}

/// Spawns `fut` on this executor's background queue.
pub fn spawn_background<T: 'static>(
    fut: impl Future<Output = T> + 'static,
) -> glommio::task::JoinHandle<T> {
    glommio::spawn_local_into(fut, background_queue())
        .expect("the background queue belongs to this executor")
        .detach()
}

/// Spawns `fut` on the foreground queue of this executor.
pub fn spawn<T: 'static>(fut: impl Future<Output = T> + 'static) -> glommio::Task<T> {
    glommio::spawn_local(fut)
}

/// Yields to other tasks if this one has used up its time slice (the
/// executor's preemption timer). Code that can run long without suspending
/// (a writer whose writes never wait for the disk, a reader hitting the
/// cache) calls this so other tasks on the core still get their turn.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// Sleeps on the executor's timer.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

fn builder(placement: Placement, name: &str) -> LocalExecutorBuilder {
    LocalExecutorBuilder::new(placement)
        .name(name)
        // RLIMIT_MEMLOCK is 8 MiB on our machines; keep the registered I/O
        // memory well below it so several executors fit.
        .io_memory(2 << 20)
        .ring_depth(256)
        .preempt_timer(Duration::from_millis(5))
}

/// Runs `make()`'s future to completion on a fresh, unpinned executor thread.
/// For tools and tests; servers use [`run_pinned`].
///
/// # Panics
/// If the executor cannot start or the future panics.
pub fn run_local<F, Fut, T>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    builder(Placement::Unbound, "ferrisdb-local")
        .spawn(make)
        .expect("start glommio executor")
        .join()
        .expect("executor thread")
}

/// Longest an executor started by [`run_pinned`] sleeps without waking.
///
/// glommio 0.9 sometimes loses a wake-up sent from another executor thread
/// (a shared-channel peer connecting or sending) while the target sleeps in
/// `io_uring_enter`: the wake is queued but the thread is not roused, and an
/// executor with nothing else pending sleeps forever. Two-core nodes
/// restarting on existing data hung this way in most restarts (the node's
/// lifecycle tests). Anything that interrupts the sleep lets the executor
/// process the queued wake, so every pinned executor keeps a timer this
/// short pending: a lost cross-core wake-up costs at most this much latency.
pub const WAKE_GUARD_INTERVAL: Duration = Duration::from_millis(10);

/// Starts one executor pinned to each of `cores` CPUs (0..cores) and runs
/// `make(core)` on each; returns each core's result in core order. Each
/// executor also runs a wake guard (see [`WAKE_GUARD_INTERVAL`]).
pub fn run_pinned<F, Fut, T>(cores: usize, make: F) -> std::io::Result<Vec<T>>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::with_capacity(cores);
    for core in 0..cores {
        let make = make.clone();
        let placement = Placement::Fixed(core % available);
        let handle = builder(placement, &format!("ferrisdb-core-{core}"))
            .spawn(move || {
                glommio::spawn_local(async {
                    loop {
                        glommio::timer::sleep(WAKE_GUARD_INTERVAL).await;
                    }
                })
                .detach();
                make(core)
            })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        handles.push(handle);
    }
    handles
        .into_iter()
        .map(|h| h.join().map_err(|e| std::io::Error::other(e.to_string())))
        .collect()
}

/// Time this executor has spent running tasks (not sleeping or polling for
/// I/O) since it started: the numerator of the core's utilisation.
pub fn busy_time() -> Duration {
    glommio::executor().executor_stats().executor_runtime()
}
