//! Batch normalisation over a (N, C, S) layout: C channels, statistics over N and S
//! (S = 1 for (N, C), L for (N, C, L), H * W for (N, C, H, W)). m = N * S values per channel.
//!
//! Normalisation is applied as PyTorch's CPU kernel applies it, as one affine map per channel:
//!   `alpha[c] = weight[c] * rstd[c]`, `beta[c] = bias[c] - mean[c] * alpha[c]`,
//!   `y = x * alpha + beta`
//!
//! Each kernel has two loops: rows of C channels when S = 1 (vectorised across channels, the
//! MLP's case), and contiguous runs of S values per (n, c) otherwise (the CNN's case), where
//! channels (for sums) or samples (for elementwise maps) are spread over threads. Every sum over
//! a channel runs in a fixed order whatever the thread count.

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
fn channel_runs(x: &[f32], c: usize, s: usize, ch: usize) -> impl Iterator<Item = &[f32]> {
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

/// `y = x * alpha[c] + beta[c]`. x, y: (N, C, S); alpha, beta: (C)
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn affine(y: &mut [f32], x: &[f32], alpha: &[f32], beta: &[f32], s: usize) {
    let c = alpha.len();
    if s == 1 {
        for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
            for (((y, &x), &a), &b) in yr.iter_mut().zip(xr).zip(alpha).zip(beta) {
                *y = x * a + b;
            }
        }
    } else {
        y.par_chunks_mut(c * s)
            .zip(x.par_chunks(c * s))
            .for_each(|(ys, xs)| {
                for (ch, (yr, xr)) in ys.chunks_exact_mut(s).zip(xs.chunks_exact(s)).enumerate() {
                    let (a, b) = (alpha[ch], beta[ch]);
                    for (y, &x) in yr.iter_mut().zip(xr) {
                        *y = x * a + b;
                    }
                }
            });
    }
}

/// The per-channel affine map from statistics and (optional) weight and bias.
/// alpha = weight * rstd, beta = bias - mean * alpha, rstd = 1 / sqrt(var + eps).
/// `rstd_out` receives rstd (kept for the backward).
#[allow(clippy::too_many_arguments)]
pub fn fold(
    mean: &[f32],
    var: &[f32],
    eps: f32,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    alpha: &mut [f32],
    beta: &mut [f32],
    rstd_out: &mut [f32],
) {
    for ch in 0..mean.len() {
        let rstd = 1.0 / (var[ch] + eps).sqrt();
        let w = weight.map_or(1.0, |w| w[ch]);
        let b = bias.map_or(0.0, |b| b[ch]);
        rstd_out[ch] = rstd;
        alpha[ch] = w * rstd;
        beta[ch] = b - mean[ch] * alpha[ch];
    }
}

/// Per-channel sums of dy and of dy * xhat, where xhat = (x - mean) * rstd.
/// These give the parameter gradients directly:
///   y = weight * xhat + bias  =>  dweight = sum dy * xhat,  dbias = sum dy
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn grad_sums(
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    s: usize,
    sum_dy: &mut [f32],
    sum_dy_xhat: &mut [f32],
) {
    let c = mean.len();
    if s == 1 {
        sum_dy.fill(0.0);
        sum_dy_xhat.fill(0.0);
        for (dr, xr) in dy.chunks_exact(c).zip(x.chunks_exact(c)) {
            for ch in 0..c {
                sum_dy[ch] += dr[ch];
                sum_dy_xhat[ch] += dr[ch] * (xr[ch] - mean[ch]) * rstd[ch];
            }
        }
    } else {
        sum_dy
            .par_iter_mut()
            .zip(sum_dy_xhat.par_iter_mut())
            .enumerate()
            .for_each(|(ch, (sd, sdx))| {
                let mu = mean[ch];
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for (dr, xr) in channel_runs(dy, c, s, ch).zip(channel_runs(x, c, s, ch)) {
                    a += lane_sum(dr, |d| d);
                    // sum dy * (x - mean), times rstd once per channel
                    let mut acc = [0.0f32; 16];
                    let (dc, xc) = (dr.chunks_exact(16), xr.chunks_exact(16));
                    let tail: f32 = dc
                        .remainder()
                        .iter()
                        .zip(xc.remainder())
                        .map(|(&d, &v)| d * (v - mu))
                        .sum();
                    for (d, v) in dc.zip(xc) {
                        for j in 0..16 {
                            acc[j] += d[j] * (v[j] - mu);
                        }
                    }
                    b += acc.iter().sum::<f32>() + tail;
                }
                *sd = a;
                *sdx = b * rstd[ch];
            });
    }
}

/// Backward through the batch statistics (training mode).
///
/// With m values per channel, xhat_i = (x_i - mean) * rstd and y_i = w * xhat_i + b:
///   dL/dxhat_i = w * dy_i
///   dmean/dx_i = 1/m,   dvar/dx_i = 2 (x_i - mean) / m,   drstd/dvar = -rstd^3 / 2
///   dxhat_j/dx_i = rstd * ([i = j] - 1/m) - (x_j - mean) * rstd^3 * (x_i - mean) / m
///                = rstd * ([i = j] - 1/m - xhat_j * xhat_i / m)
/// so dL/dx_i = sum_j w dy_j dxhat_j/dx_i
///            = w * rstd / m * (m * dy_i - sum_j dy_j - xhat_i * sum_j dy_j xhat_j)
/// dx += that. weight absent (affine = false) means w = 1.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn backward_train(
    dx: &mut [f32],
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    weight: Option<&[f32]>,
    sum_dy: &[f32],
    sum_dy_xhat: &[f32],
    s: usize,
    // scratch, (C) each: k1 = w * rstd, k2 = mean dy, k3 = mean (dy * xhat) * rstd
    scratch: &mut [f32],
) {
    let c = mean.len();
    let m = (x.len() / c) as f32;
    let (k1, rest) = scratch.split_at_mut(c);
    let (k2, k3) = rest.split_at_mut(c);
    for ch in 0..c {
        k1[ch] = weight.map_or(1.0, |w| w[ch]) * rstd[ch];
        k2[ch] = sum_dy[ch] / m;
        k3[ch] = sum_dy_xhat[ch] / m * rstd[ch];
    }
    let (k1, k2, k3) = (&*k1, &*k2, &*k3);
    // dx_i = k1 * (dy_i - k2 - (x_i - mean) * k3)   [xhat_i * sum(dy xhat)/m = (x_i - mean) * k3]
    if s == 1 {
        for ((gr, dr), xr) in dx
            .chunks_exact_mut(c)
            .zip(dy.chunks_exact(c))
            .zip(x.chunks_exact(c))
        {
            for ch in 0..c {
                gr[ch] += k1[ch] * (dr[ch] - k2[ch] - (xr[ch] - mean[ch]) * k3[ch]);
            }
        }
    } else {
        let samples = dx
            .par_chunks_mut(c * s)
            .zip(dy.par_chunks(c * s))
            .zip(x.par_chunks(c * s));
        samples.for_each(|((gs, ds), xs)| {
            let runs = gs
                .chunks_exact_mut(s)
                .zip(ds.chunks_exact(s))
                .zip(xs.chunks_exact(s));
            for (ch, ((gr, dr), xr)) in runs.enumerate() {
                let (a, b, mu, q) = (k1[ch], k2[ch], mean[ch], k3[ch]);
                for ((g, &d), &v) in gr.iter_mut().zip(dr).zip(xr) {
                    *g += a * (d - b - (v - mu) * q);
                }
            }
        });
    }
}

/// Backward when normalising with fixed (running) statistics: y = x * alpha + beta with
/// alpha = w * rstd constant, so dx = dy * alpha. dx += that.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn backward_fixed(dx: &mut [f32], dy: &[f32], alpha: &[f32], s: usize) {
    let c = alpha.len();
    if s == 1 {
        for (gr, dr) in dx.chunks_exact_mut(c).zip(dy.chunks_exact(c)) {
            for ((g, &d), &a) in gr.iter_mut().zip(dr).zip(alpha) {
                *g += d * a;
            }
        }
    } else {
        for (k, (gr, dr)) in dx.chunks_exact_mut(s).zip(dy.chunks_exact(s)).enumerate() {
            let a = alpha[k % c];
            for (g, &d) in gr.iter_mut().zip(dr) {
                *g += d * a;
            }
        }
    }
}
