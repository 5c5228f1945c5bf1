//! Timing shared by the benchmarks (each includes this file with `#[path]`).

use std::time::Instant;

/// The median wall time in seconds of `reps` runs of `f`, after one run to warm caches and
/// buffers up.
pub fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[reps / 2]
}
