//! The threads bnlab runs on: one place for the pool, its thread count, and how its workers are
//! kept busy while a training or evaluation loop runs.
//!
//! - [`with_threads`] runs a closure inside a rayon pool of `n` threads (0: every core), so that
//!   the calling thread does its share of every parallel kernel instead of handing each job to
//!   sleeping workers and waiting (on two cores that hand-off cost more than some kernels).
//! - [`threads`] is the count of the pool the caller runs in; the GEMMs and the parallel kernels
//!   split their work by it.
//! - [`with_workers_awake`] keeps the pool's other workers polling for work for as long as a
//!   loop of many small kernels runs; `fit`'s training steps and `evaluate` use it, so the
//!   pollers never run through downloads, file writing or plotting.
//!
//! Why poll: a training step of the seed's model runs about thirty parallel kernels of
//! 20-500 us with short serial parts between them. Rayon's idle workers go to sleep after a few
//! dozen `sched_yield`s, and waking one (a futex call, then the scheduler of this virtual
//! machine) takes longer than many kernels last: the calling thread did most of each kernel
//! alone, and two threads trained the seed's model only 7% faster than one, with 8,000 context
//! switches in four epochs (`perf stat`). A poller takes any pending rayon work at once
//! (`rayon::yield_now`) and otherwise yields its core to the OS, so it never sleeps but gives
//! way to any other thread that wants the core. There is at most one poller per other core: a
//! poller sharing a core with the worker that has the work only takes turns with it.

use crate::{Error, Result};
use rayon::Yield;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A requested thread count: 0 means every core this process may use.
fn resolve(n: usize) -> usize {
    if n == 0 {
        cores()
    } else {
        n
    }
}

/// The cores this process may use (its affinity and cgroup quota included), read once: finding
/// them reads cgroup files, and every training and evaluation loop asks.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Run `f` on a pool of `n` threads (0: every core), the calling thread's work done inside the
/// pool. Exactly `n` threads, even beyond the cores (the `bnlab` command caps its `--threads`).
pub fn with_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    let n = resolve(n);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start {n} threads: {e}")))?;
    Ok(pool.install(f))
}

/// Size rayon's global pool (0: every core), for code that runs outside [`with_threads`]. The
/// global pool is built once: a second call with another count is an error.
pub fn set_threads(n: usize) -> Result<()> {
    let n = resolve(n);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == n => Ok(()),
        Err(e) => Err(Error::Invalid(format!(
            "cannot give the global thread pool {n} threads: it already runs {} ({e})",
            rayon::current_num_threads()
        ))),
    }
}

/// The thread count of the pool the caller runs in (the global pool outside any other).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

thread_local! {
    /// Whether this thread is inside `with_workers_awake` already (its pollers run).
    static AWAKE: Cell<bool> = const { Cell::new(false) };
}

/// The pollers' shared state: a stop flag, and counts of the pollers started and ended.
#[derive(Default)]
struct Pollers {
    done: AtomicBool,
    started: AtomicUsize,
    ended: AtomicUsize,
}

/// Stops the pollers and waits for them to end, even if the job panics.
struct StopPollers {
    pollers: Arc<Pollers>,
    count: usize,
}

impl Drop for StopPollers {
    fn drop(&mut self) {
        self.pollers.done.store(true, Ordering::Release);
        while self.pollers.ended.load(Ordering::Acquire) < self.count {
            std::thread::yield_now();
        }
        AWAKE.with(|a| a.set(false));
    }
}

/// Run `f` on the current thread with up to one other worker per other core polling for rayon
/// work until `f` returns. Outside a pool, with one thread, or inside another call, just `f()`.
pub fn with_workers_awake<R>(f: impl FnOnce() -> R) -> R {
    let count = threads().min(cores()).saturating_sub(1);
    if count == 0 || rayon::current_thread_index().is_none() || AWAKE.with(Cell::get) {
        return f();
    }
    let pollers = Arc::new(Pollers::default());
    for _ in 0..count {
        let p = pollers.clone();
        rayon::spawn(move || {
            p.started.fetch_add(1, Ordering::AcqRel);
            while !p.done.load(Ordering::Acquire) {
                if rayon::yield_now() == Some(Yield::Idle) {
                    std::thread::yield_now();
                }
            }
            p.ended.fetch_add(1, Ordering::AcqRel);
        });
    }
    // Wait until other workers have taken every poller: this thread must never run one itself
    // (from inside a join, say), or it would poll until `f` ends, which it would then never do.
    while pollers.started.load(Ordering::Acquire) < count {
        std::thread::yield_now();
    }
    AWAKE.with(|a| a.set(true));
    let _stop = StopPollers { pollers, count };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    #[test]
    fn parallel_work_runs_and_every_poller_stops() {
        for n in [1, 2, 3] {
            let want: u64 = (0..100_000u64).map(|v| v * v).sum();
            let got: Vec<u64> = pool(n).install(|| {
                with_workers_awake(|| {
                    // many small parallel jobs, as a training step runs
                    (0..50)
                        .map(|_| (0..100_000u64).into_par_iter().map(|v| v * v).sum::<u64>())
                        .collect()
                })
            });
            assert!(got.iter().all(|&s| s == want), "{n} threads");
        }
    }

    #[test]
    fn a_panic_in_the_job_ends_the_pollers_and_reaches_the_caller() {
        let p = pool(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.install(|| with_workers_awake(|| -> u32 { panic!("job failed") }))
        }));
        assert!(r.is_err());
        // the pool is still usable: no poller is left running
        assert_eq!(p.install(|| with_workers_awake(|| 7)), 7);
    }

    #[test]
    fn nested_calls_and_calls_outside_a_pool_just_run() {
        assert_eq!(with_workers_awake(|| 3), 3);
        let inner = pool(2).install(|| with_workers_awake(|| with_workers_awake(|| 5)));
        assert_eq!(inner, 5);
    }

    #[test]
    fn threads_is_the_count_of_the_callers_pool() {
        assert_eq!(with_threads(3, threads).unwrap(), 3);
        assert_eq!(with_threads(1, threads).unwrap(), 1);
    }
}
