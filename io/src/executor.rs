//! Executor bootstrap: one glommio `LocalExecutor` per core, pinned, each with a
//! foreground queue (the executor's default) and a background queue with fewer
//! shares for flush and compaction, so background I/O cannot starve foreground
//! latency. Each executor also caps the disk operations it keeps in flight
//! ([`ExecutorOptions::io_depth`], enforced by [`crate::depth`]).

use glommio::{Latency, LocalExecutorBuilder, Placement, Shares, TaskQueueHandle};
use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::time::Duration;

/// Shares of the foreground queue (the executor's default queue has 1000).
pub const FOREGROUND_SHARES: usize = 1000;
/// Default shares of the background queue: a quarter of the foreground's.
pub const BACKGROUND_SHARES_DEFAULT: usize = 250;
/// The background queue never gets more CPU than the foreground.
pub const BACKGROUND_SHARES_MAX: usize = FOREGROUND_SHARES;
/// Depth of each io_uring ring of an executor (submission entries).
pub const RING_DEPTH: usize = 256;
/// Default cap on disk operations in flight per executor: the ring depth,
/// so without a measured device nothing waits that would not have before.
pub const IO_DEPTH_DEFAULT: usize = RING_DEPTH;
/// Largest accepted `io_depth`; past the ring depth glommio queues the
/// submissions in user space anyway, so a larger cap only grows queues.
pub const IO_DEPTH_MAX: usize = 1024;

const _: () = assert!(BACKGROUND_SHARES_DEFAULT <= BACKGROUND_SHARES_MAX);
const _: () = assert!(IO_DEPTH_DEFAULT <= IO_DEPTH_MAX);

/// Settings of one executor. A node derives them from its configuration
/// (`io_depth`, `background_shares`, or `io_properties.toml` written by
/// `ferrisdb tune disk`); tools and tests use the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Shares of the background queue (flush, compaction) against the
    /// foreground's [`FOREGROUND_SHARES`]: the CPU split when both have
    /// work. 1 to [`BACKGROUND_SHARES_MAX`].
    pub background_shares: usize,
    /// Most disk operations (reads, writes and syncs of [`crate::RealDisk`]
    /// files) the executor keeps in flight; more wait in arrival order in
    /// user space. 1 to [`IO_DEPTH_MAX`].
    pub io_depth: usize,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            background_shares: BACKGROUND_SHARES_DEFAULT,
            io_depth: IO_DEPTH_DEFAULT,
        }
    }
}

impl ExecutorOptions {
    /// Checks the bounds above; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=BACKGROUND_SHARES_MAX).contains(&self.background_shares) {
            return Err(format!(
                "background_shares is {}; it must be between 1 and {BACKGROUND_SHARES_MAX}",
                self.background_shares
            ));
        }
        if !(1..=IO_DEPTH_MAX).contains(&self.io_depth) {
            return Err(format!(
                "io_depth is {}; it must be between 1 and {IO_DEPTH_MAX}",
                self.io_depth
            ));
        }
        Ok(())
    }
}

thread_local! {
    static BACKGROUND: OnceCell<TaskQueueHandle> = const { OnceCell::new() };
    static OPTIONS: Cell<ExecutorOptions> = Cell::new(ExecutorOptions::default());
}

/// The settings of the calling thread's executor (the defaults on a thread
/// not started by [`run_pinned_with`]).
pub fn options() -> ExecutorOptions {
    OPTIONS.with(Cell::get)
}

/// The calling executor's background task queue, created on first use.
pub fn background_queue() -> TaskQueueHandle {
    BACKGROUND.with(|cell| {
        *cell.get_or_init(|| {
            glommio::executor().create_task_queue(
                Shares::Static(options().background_shares),
                Latency::NotImportant,
                "background",
            )
        })
    })
}

/// Shares the calling executor's background queue runs with; reads them
/// back from glommio, so it shows what the scheduler uses.
pub fn background_queue_shares() -> usize {
    glommio::executor()
        .task_queue_stats(background_queue())
        .expect("the background queue belongs to this executor")
        .current_shares()
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
        .ring_depth(RING_DEPTH)
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
    run_pinned_with(cores, ExecutorOptions::default(), make)
}

/// [`run_pinned`] with `options` for every executor.
///
/// # Errors
/// `InvalidInput` if `options` is out of bounds ([`ExecutorOptions::validate`]).
pub fn run_pinned_with<F, Fut, T>(
    cores: usize,
    options: ExecutorOptions,
    make: F,
) -> std::io::Result<Vec<T>>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    options
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut handles = Vec::with_capacity(cores);
    for core in 0..cores {
        let make = make.clone();
        let placement = Placement::Fixed(core % available);
        let handle = builder(placement, &format!("ferrisdb-core-{core}"))
            .spawn(move || {
                OPTIONS.with(|o| o.set(options));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_options_reach_the_executor_and_its_background_queue() {
        let wanted = ExecutorOptions {
            background_shares: 100,
            io_depth: 7,
        };
        let seen = run_pinned_with(2, wanted, |_| async {
            (options(), background_queue_shares())
        })
        .expect("executors");
        assert_eq!(seen, vec![(wanted, 100), (wanted, 100)]);
        let defaults = run_local(|| async { (options(), background_queue_shares()) });
        assert_eq!(
            defaults,
            (ExecutorOptions::default(), BACKGROUND_SHARES_DEFAULT)
        );
    }
}
