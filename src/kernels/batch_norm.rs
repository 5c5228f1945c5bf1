//! Batch normalisation over a (N, C, S) layout: C channels, statistics over N and S
//! (S = 1 for (N, C), L for (N, C, L), H * W for (N, C, H, W)). m = N * S values per channel.
//!
//! Normalisation is applied as PyTorch's CPU kernel applies it, as one affine map per channel:
//!   alpha[c] = weight[c] * rstd[c],  beta[c] = bias[c] - mean[c] * alpha[c],  y = x * alpha + beta
//!
//! Each kernel has two loops: rows of C channels when S = 1 (vectorised across channels, the
//! MLP's case), contiguous runs of S values per (n, c) otherwise (the CNN's case).

/// Per-channel mean and biased variance (two passes: the mean first, then squared deviations,
/// which keeps the variance accurate when |mean| >> std).
/// x: (N, C, S); mean, var: (C)
pub fn batch_stats(x: &[f32], c: usize, s: usize, mean: &mut [f32], var: &mut [f32]) {
    let m = (x.len() / c) as f32;
    mean.fill(0.0);
    var.fill(0.0);
    if s == 1 {
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
    } else {
        for (k, run) in x.chunks_exact(s).enumerate() {
            mean[k % c] += run.iter().sum::<f32>();
        }
        mean.iter_mut().for_each(|v| *v /= m);
        for (k, run) in x.chunks_exact(s).enumerate() {
            let mu = mean[k % c];
            var[k % c] += run.iter().map(|&v| (v - mu) * (v - mu)).sum::<f32>();
        }
    }
    var.iter_mut().for_each(|v| *v /= m);
}

/// y = x * alpha[c] + beta[c]. x, y: (N, C, S); alpha, beta: (C)
pub fn affine(y: &mut [f32], x: &[f32], alpha: &[f32], beta: &[f32], s: usize) {
    let c = alpha.len();
    if s == 1 {
        for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
            for (((y, &x), &a), &b) in yr.iter_mut().zip(xr).zip(alpha).zip(beta) {
                *y = x * a + b;
            }
        }
    } else {
        for (k, (yr, xr)) in y.chunks_exact_mut(s).zip(x.chunks_exact(s)).enumerate() {
            let (a, b) = (alpha[k % c], beta[k % c]);
            for (y, &x) in yr.iter_mut().zip(xr) {
                *y = x * a + b;
            }
        }
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
    sum_dy.fill(0.0);
    sum_dy_xhat.fill(0.0);
    if s == 1 {
        for (dr, xr) in dy.chunks_exact(c).zip(x.chunks_exact(c)) {
            for ch in 0..c {
                sum_dy[ch] += dr[ch];
                sum_dy_xhat[ch] += dr[ch] * (xr[ch] - mean[ch]) * rstd[ch];
            }
        }
    } else {
        for (k, (dr, xr)) in dy.chunks_exact(s).zip(x.chunks_exact(s)).enumerate() {
            let ch = k % c;
            let (mu, r) = (mean[ch], rstd[ch]);
            sum_dy[ch] += dr.iter().sum::<f32>();
            sum_dy_xhat[ch] += dr
                .iter()
                .zip(xr)
                .map(|(&d, &v)| d * (v - mu) * r)
                .sum::<f32>();
        }
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
        let runs = dx
            .chunks_exact_mut(s)
            .zip(dy.chunks_exact(s))
            .zip(x.chunks_exact(s));
        for (k, ((gr, dr), xr)) in runs.enumerate() {
            let ch = k % c;
            let (a, b, mu, q) = (k1[ch], k2[ch], mean[ch], k3[ch]);
            for ((g, &d), &v) in gr.iter_mut().zip(dr).zip(xr) {
                *g += a * (d - b - (v - mu) * q);
            }
        }
    }
}

/// Backward when normalising with fixed (running) statistics: y = x * alpha + beta with
/// alpha = w * rstd constant, so dx = dy * alpha. dx += that.
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
