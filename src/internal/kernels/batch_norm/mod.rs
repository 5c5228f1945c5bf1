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

use super::elementwise::accumulate;
use multiversion::multiversion;
use rayon::prelude::*;

mod stats;

use stats::channel_runs;
pub(crate) use stats::lane_sum;
pub use stats::{batch_stats, merge_runs, run_stats, stats_from_runs};

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

/// What the forward saves for the backward, one value per channel (C) in each field: the
/// statistics it normalised with, and the affine map made of them (see the module docs).
pub struct Saved<S> {
    /// The mean: this batch's (training) or the running mean (eval).
    pub mean: S,
    /// The biased variance: this batch's (training) or the running variance (eval).
    pub var: S,
    /// rstd = 1 / sqrt(var + eps).
    pub rstd: S,
    /// alpha = weight * rstd, the map's scale.
    pub alpha: S,
    /// beta = bias - mean * alpha, the map's shift.
    pub beta: S,
}

impl Saved<&mut [f32]> {
    /// The same values, read-only.
    pub fn view(&self) -> Saved<&[f32]> {
        Saved {
            mean: self.mean,
            var: self.var,
            rstd: self.rstd,
            alpha: self.alpha,
            beta: self.beta,
        }
    }
}

/// Fixed statistics to normalise with (eval mode), C values each.
#[derive(Clone, Copy, Debug)]
pub struct Running<'a> {
    /// The running mean.
    pub mean: &'a [f32],
    /// The running variance, used as it is.
    pub var: &'a [f32],
}

/// The per-channel affine map from the statistics in `saved.mean` and `saved.var` and the
/// (optional: absent means 1 and 0) weight and bias, into `saved.rstd`, `alpha` and `beta`:
/// rstd = 1 / sqrt(var + eps), alpha = weight * rstd, beta = bias - mean * alpha.
pub fn fold(saved: &mut Saved<&mut [f32]>, eps: f32, weight: Option<&[f32]>, bias: Option<&[f32]>) {
    for ch in 0..saved.mean.len() {
        let rstd = 1.0 / (saved.var[ch] + eps).sqrt();
        let w = weight.map_or(1.0, |w| w[ch]);
        let b = bias.map_or(0.0, |b| b[ch]);
        saved.rstd[ch] = rstd;
        saved.alpha[ch] = w * rstd;
        saved.beta[ch] = b - saved.mean[ch] * saved.alpha[ch];
    }
}

/// The forward's statistics step, everything but applying the map: mean and var copied from
/// `running` (eval) or, for this batch's statistics, written by
/// `batch` (`batch_stats` of x, or a convolution's merged runs), then `fold`.
pub fn statistics(
    saved: &mut Saved<&mut [f32]>,
    running: Option<Running>,
    eps: f32,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    batch: impl FnOnce(&mut [f32], &mut [f32]),
) {
    match running {
        Some(running) => {
            saved.mean.copy_from_slice(running.mean);
            saved.var.copy_from_slice(running.var);
        }
        None => batch(saved.mean, saved.var),
    }
    fold(saved, eps, weight, bias);
}

/// Forward. x, y: (N, C, S); weight, bias: (C), absent (affine = False) meaning 1 and 0;
/// `running`: None to normalise with this batch's mean and biased variance (training), or
/// the fixed running statistics (eval). Fills `saved`, then
///   y = (x - mean) * rstd * weight + bias = x * alpha + beta
/// (as PyTorch's CPU kernel computes it, see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    y: &mut [f32],
    x: &[f32],
    s: usize,
    eps: f32,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    running: Option<Running>,
    mut saved: Saved<&mut [f32]>,
) {
    let c = saved.mean.len();
    statistics(&mut saved, running, eps, weight, bias, |mean, var| {
        batch_stats(x, c, s, mean, var)
    });
    affine(y, x, saved.alpha, saved.beta, s);
}

/// Backward. dy, x: (N, C, S); `saved` and weight as in the forward; `batch`: the forward used
/// this batch's statistics. The parameter gradients come from two per-channel sums
/// (`grad_sums`): y = weight * xhat + bias gives
///   dweight += sum dy * xhat,   dbias += sum dy
/// and dx += `backward_train`'s expression (the gradient also flows through the batch's mean
/// and variance) or, with fixed statistics, `backward_fixed`'s dy * alpha; dx comes with whether
/// to add to it (`true`) or overwrite it (`false`: a gradient not started this step, which then
/// needs no pass that zeroes it and no reading back of the zeros). Each gradient only when given. `work`: `backward_scratch_len` values of scratch (the two sums, then
/// `backward_train`'s k1, k2, k3).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dy: &[f32],
    x: &[f32],
    s: usize,
    saved: Saved<&[f32]>,
    weight: Option<&[f32]>,
    batch: bool,
    dx: Option<(&mut [f32], bool)>,
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
    work: &mut [f32],
) {
    let c = saved.mean.len();
    let (sums, k) = work[..backward_scratch_len(c)].split_at_mut(2 * c);
    let (sum_dy, sum_dy_xhat) = sums.split_at_mut(c);
    grad_sums(dy, x, saved.mean, saved.rstd, s, sum_dy, sum_dy_xhat);
    if let Some(dw) = dweight {
        accumulate(dw, sum_dy_xhat);
    }
    if let Some(db) = dbias {
        accumulate(db, sum_dy);
    }
    let Some((dx, add)) = dx else { return };
    if batch {
        backward_train(
            dx,
            add,
            dy,
            x,
            saved.mean,
            saved.rstd,
            weight,
            sum_dy,
            sum_dy_xhat,
            s,
            k,
        );
    } else {
        backward_fixed(dx, add, dy, saved.alpha, s);
    }
}

/// Scratch values `backward` needs for `c` channels.
pub fn backward_scratch_len(c: usize) -> usize {
    5 * c
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
/// dx += that (`add`), or dx = that. weight absent (affine = false) means w = 1.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn backward_train(
    dx: &mut [f32],
    add: bool,
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
            let v = |ch: usize| k1[ch] * (dr[ch] - k2[ch] - (xr[ch] - mean[ch]) * k3[ch]);
            // one loop per case, so that overwriting never reads dx
            if add {
                (0..c).for_each(|ch| gr[ch] += v(ch));
            } else {
                (0..c).for_each(|ch| gr[ch] = v(ch));
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
                let pairs = gr.iter_mut().zip(dr.iter().zip(xr));
                if add {
                    pairs.for_each(|(g, (&d, &v))| *g += a * (d - b - (v - mu) * q));
                } else {
                    pairs.for_each(|(g, (&d, &v))| *g = a * (d - b - (v - mu) * q));
                }
            }
        });
    }
}

/// Backward when normalising with fixed (running) statistics: y = x * alpha + beta with
/// alpha = w * rstd constant, so dx = dy * alpha. dx += that (`add`), or dx = that.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn backward_fixed(dx: &mut [f32], add: bool, dy: &[f32], alpha: &[f32], s: usize) {
    let c = alpha.len();
    if s == 1 {
        for (gr, dr) in dx.chunks_exact_mut(c).zip(dy.chunks_exact(c)) {
            let terms = gr.iter_mut().zip(dr.iter().zip(alpha));
            if add {
                terms.for_each(|(g, (&d, &a))| *g += d * a);
            } else {
                terms.for_each(|(g, (&d, &a))| *g = d * a);
            }
        }
    } else {
        for (k, (gr, dr)) in dx.chunks_exact_mut(s).zip(dy.chunks_exact(s)).enumerate() {
            let a = alpha[k % c];
            if add {
                gr.iter_mut().zip(dr).for_each(|(g, &d)| *g += d * a);
            } else {
                gr.iter_mut().zip(dr).for_each(|(g, &d)| *g = d * a);
            }
        }
    }
}
