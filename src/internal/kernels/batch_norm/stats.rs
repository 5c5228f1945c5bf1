//! BatchNorm's per-channel statistics: fixed-order sums, each run's mean and squared
//! deviations, and Chan et al.'s merge of runs, so that every channel's mean and variance
//! are the same whatever the thread count.

use multiversion::multiversion;
use rayon::prelude::*;

/// Sum of f(v) over a run, in 16 interleaved partial sums so that it vectorises (a single
/// running sum is a chain of dependent additions the compiler may not reorder).
#[inline(always)]
pub(crate) fn lane_sum(run: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 16];
    let mut chunks = run.chunks_exact(16);
    for c in &mut chunks {
        for j in 0..16 {
            acc[j] += f(c[j]);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f32>() + tail
}

/// The runs of channel `ch`: x[n, ch, :] for every n.
#[inline(always)]
pub(super) fn channel_runs(
    x: &[f32],
    c: usize,
    s: usize,
    ch: usize,
) -> impl Iterator<Item = &[f32]> {
    x.chunks_exact(c * s)
        .map(move |sample| &sample[ch * s..(ch + 1) * s])
}

/// One run's mean and sum of squared deviations from it (two passes over the run, which is in
/// L1 by the second).
#[inline(always)]
pub fn run_stats(run: &[f32]) -> [f32; 2] {
    let mean = lane_sum(run, |v| v) / run.len() as f32;
    [mean, lane_sum(run, |v| (v - mean) * (v - mean))]
}

/// A channel's mean and biased variance from its runs' `run_stats` (S values each), merged in
/// the order given (Chan et al.'s pairwise update, in f64).
pub fn merge_runs(runs: impl Iterator<Item = [f32; 2]>, s: usize) -> (f32, f32) {
    let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for [run_mean, run_m2] in runs {
        let (nb, delta) = (s as f64, run_mean as f64 - mean);
        let total = count + nb;
        mean += delta * nb / total;
        m2 += run_m2 as f64 + delta * delta * count * nb / total;
        count = total;
    }
    (mean as f32, (m2 / count) as f32)
}

/// Per-channel mean and biased variance from each (sample, channel) run's `run_stats`:
/// runs (N, C, 2), S values a run; merged in sample order, as `batch_stats` merges the same runs.
pub fn stats_from_runs(runs: &[f32], c: usize, s: usize, mean: &mut [f32], var: &mut [f32]) {
    let n = runs.len() / (2 * c);
    for ch in 0..c {
        let channel = (0..n).map(|i| [runs[2 * (i * c + ch)], runs[2 * (i * c + ch) + 1]]);
        (mean[ch], var[ch]) = merge_runs(channel, s);
    }
}

/// Per-channel mean and biased variance, from squared deviations about a mean (not the sum of
/// squares, which loses the variance when |mean| >> std).
/// x: (N, C, S); mean, var: (C)
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn batch_stats(x: &[f32], c: usize, s: usize, mean: &mut [f32], var: &mut [f32]) {
    let m = (x.len() / c) as f32;
    if s == 1 {
        mean.fill(0.0);
        var.fill(0.0);
        for row in x.chunks_exact(c) {
            for (acc, &v) in mean.iter_mut().zip(row) {
                *acc += v;
            }
        }
        mean.iter_mut().for_each(|v| *v /= m);
        for row in x.chunks_exact(c) {
            for ((acc, &v), &mu) in var.iter_mut().zip(row).zip(mean.iter()) {
                *acc += (v - mu) * (v - mu);
            }
        }
        var.iter_mut().for_each(|v| *v /= m);
    } else {
        mean.par_iter_mut()
            .zip(var.par_iter_mut())
            .enumerate()
            .for_each(|(ch, (mu, var))| {
                // Each run (one sample's S values, in L1 once read) gets its own mean and sum of
                // squared deviations: one read of x from memory, and as robust as the
                // two-pass formula.
                let runs = channel_runs(x, c, s, ch).map(run_stats);
                (*mu, *var) = merge_runs(runs, s);
            });
    }
}
