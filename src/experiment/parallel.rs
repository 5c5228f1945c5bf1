//! An experiment's runs are independent: they run side by side, one thread each, on as many
//! threads as the command was given. One thread per run keeps every run's numbers the same
//! whatever the thread count (a run never splits its sums between threads), and small batches
//! gain more from two runs at once than from two threads in one run.

use crate::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One run of an experiment: builds its own model and trains it.
pub type Job<'a, T> = Box<dyn FnOnce() -> Result<T> + Send + 'a>;

/// Where a job's result (and its seconds) lands.
type Slot<T> = Mutex<Option<Result<(T, f64)>>>;

/// Run `jobs` on the caller's thread count (each job on a pool of one thread), and return
/// their results in the jobs' order with each job's seconds; the first error, if any.
pub fn run_all<'a, T: Send>(jobs: Vec<Job<'a, T>>) -> Result<Vec<(T, f64)>> {
    run_all_reporting(jobs, &|_, _| {})
}

/// [`run_all`], calling `done(finished, of)` each time a job ends (for a progress bar).
pub fn run_all_reporting<'a, T: Send>(
    jobs: Vec<Job<'a, T>>,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<(T, f64)>> {
    let total = jobs.len();
    let finished = AtomicUsize::new(0);
    let workers = crate::runtime::threads().clamp(1, jobs.len().max(1));
    let queue: Vec<Mutex<Option<Job<'a, T>>>> =
        jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Slot<T>> = queue.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(slot) = queue.get(i) else { break };
                let job = slot
                    .lock()
                    .expect("a job's slot")
                    .take()
                    .expect("each job taken once");
                let t = Instant::now();
                let r = crate::runtime::with_threads(1, job).and_then(|r| r);
                *results[i].lock().expect("a result's slot") =
                    Some(r.map(|v| (v, t.elapsed().as_secs_f64())));
                done(finished.fetch_add(1, Ordering::SeqCst) + 1, total);
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .map_err(|_| Error::Invalid("an experiment's run panicked".into()))?
                .unwrap_or_else(|| Err(Error::Invalid("an experiment's run did not run".into())))
        })
        .collect()
}
