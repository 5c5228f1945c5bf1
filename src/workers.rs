//! Keeping the thread pool's workers awake while bnlab runs a job.
//!
//! A training step of the seed's model runs about thirty parallel kernels of 20-500 us with
//! short serial parts between them. Rayon's idle workers go to sleep after a few dozen
//! `sched_yield`s, and waking one (a futex call, then the scheduler of this virtual machine)
//! takes longer than many kernels last: the calling thread did most of each kernel alone, and
//! two threads trained the seed's model only 7% faster than one, with 8,000 context switches
//! in four epochs (`perf stat`).
//!
//! Here each other worker runs a poller for as long as the job does: it takes any pending
//! rayon work at once (`rayon::yield_now`) and otherwise yields its core to the OS, so it
//! never sleeps but gives way to any other thread that wants the core.

use rayon::Yield;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Run `f` on the current rayon pool's thread with every other worker of the pool polling for
/// work until `f` returns. Outside a pool, or with one thread, just `f()`.
pub fn with_workers_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // No more pollers than the other cores: a poller that shares a core with a worker that
    // has work only takes turns with it (a pool larger than the machine crawled).
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let pollers = rayon::current_num_threads().min(cores).saturating_sub(1);
    if pollers == 0 || rayon::current_thread_index().is_none() {
        return f();
    }
    let done = AtomicBool::new(false);
    let polling = AtomicUsize::new(0);
    rayon::scope(|s| {
        for _ in 0..pollers {
            s.spawn(|_| {
                polling.fetch_add(1, Ordering::AcqRel);
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() == Some(Yield::Idle) {
                        std::thread::yield_now();
                    }
                }
            });
        }
        // Wait until the other workers have taken every poller: this thread must never run
        // one itself (from inside a join, say), or it would poll until `f` ends, which it
        // would then never do.
        while polling.load(Ordering::Acquire) < pollers {
            std::thread::yield_now();
        }
        // the pollers stop even if `f` panics, so the scope can end and the panic go on
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _stop = StopOnDrop(&done);
        f()
    })
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
    fn outside_a_pool_the_job_just_runs() {
        assert_eq!(with_workers_awake(|| 3), 3);
    }
}
