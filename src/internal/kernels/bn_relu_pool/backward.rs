//! The fused BatchNorm -> ReLU -> MaxPool's backward (the derivation is in the parent
//! module's docs): per-channel sums from the pooled tensors, the BatchNorm's parameter
//! gradients, and the input gradient, for the whole batch or one sample at a time.

use super::{avx512_available, group_len, grow, pooled, Scratch, PLANES};
use crate::kernels::batch_norm::Saved;
use multiversion::multiversion;
use rayon::prelude::*;

/// Per-channel sums for the backward: `sum_g[c]` = sum of g, `sum_g_xhat[c]` = sum of g * xhat,
/// with `g = dy * [y > 0]` at each output (see the module's derivation). Each (sample, channel)
/// plane is summed on its own into `per_plane` (2 values a plane, scratch), then the planes of
/// a channel are added in sample order, so the result does not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn grad_sums(
    dy: &[f32],
    y: &[f32],
    x_at: &[f32],
    mean: &[f32],
    rstd: &[f32],
    plane_out: usize,
    per_plane: &mut [f32],
    sum_g: &mut [f32],
    sum_g_xhat: &mut [f32],
) {
    let c = mean.len();
    per_plane
        .par_chunks_mut(2 * PLANES)
        .enumerate()
        .for_each(|(task, sums)| {
            let first = task * PLANES;
            if avx512_available() {
                #[cfg(target_arch = "x86_64")]
                for (i, s) in sums.chunks_exact_mut(2).enumerate() {
                    let p = first + i;
                    let range = p * plane_out..(p + 1) * plane_out;
                    let (d, v, xv) = (&dy[range.clone()], &y[range.clone()], &x_at[range]);
                    // SAFETY: the CPU has AVX-512F
                    let sum = unsafe { super::avx512::plane_sums(d, v, xv, mean[p % c]) };
                    s.copy_from_slice(&sum);
                }
                return;
            }
            plane_sums(sums, dy, y, x_at, mean, c, first, plane_out)
        });
    sum_g.fill(0.0);
    sum_g_xhat.fill(0.0);
    for (p, s) in per_plane.chunks_exact(2).enumerate() {
        sum_g[p % c] += s[0];
        sum_g_xhat[p % c] += s[1];
    }
    for (s, &r) in sum_g_xhat.iter_mut().zip(rstd) {
        *s *= r;
    }
}

#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub(super) fn plane_sums(
    sums: &mut [f32],
    dy: &[f32],
    y: &[f32],
    x_at: &[f32],
    mean: &[f32],
    c: usize,
    first_plane: usize,
    plane_out: usize,
) {
    for (i, s) in sums.chunks_exact_mut(2).enumerate() {
        let p = first_plane + i;
        let mu = mean[p % c];
        let range = p * plane_out..(p + 1) * plane_out;
        let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
        for (j, ((&d, &v), &xv)) in dy[range.clone()]
            .iter()
            .zip(&y[range.clone()])
            .zip(&x_at[range])
            .enumerate()
        {
            // sum (g * (x - mean)), times rstd once per channel
            let g = if v > 0.0 { d } else { 0.0 };
            a[j % 8] += g;
            b[j % 8] += g * (xv - mu);
        }
        s.copy_from_slice(&[a.iter().sum(), b.iter().sum()]);
    }
}

/// The input's gradient, dx += ... for every plane (dx = ... when `overwrite`: dx holds
/// garbage, and every value is written). `scratch`: kept by the caller (see `Scratch`).
/// Training (`coef` = Some((k2, k3))): dx_i += k1 * (g_i - k2 - (x_i - mean) * k3), with
/// k1 = w * rstd, k2 = mean g, k3 = mean (g * xhat) * rstd, the same expression as
/// `batch_norm::backward_train`; fixed statistics (`coef` = None): dx_i += k1 * g_i.
#[allow(clippy::too_many_arguments)]
pub fn backward_input(
    dx: &mut [f32],
    overwrite: bool,
    dy: &[f32],
    y: &[f32],
    argmax: &[u32],
    x: &[f32],
    mean: &[f32],
    k1: &[f32],
    coef: Option<(&[f32], &[f32])>,
    h: usize,
    w: usize,
    scratch: &mut Scratch,
) {
    let (plane_in, plane_out) = (h * w, pooled(h) * pooled(w));
    let per = group_len(x.len() / plane_in);
    let groups = (x.len() / plane_in).div_ceil(per);
    // one plane's g, dense, per group (for the portable backward_planes)
    let g = grow(&mut scratch.vals, groups * plane_in);
    dx.par_chunks_mut(plane_in * per)
        .zip(x.par_chunks(plane_in * per))
        .zip(g.par_chunks_mut(plane_in))
        .enumerate()
        .for_each(|(group, ((dxp, xp), g))| {
            let first = group * per;
            let out = first * plane_out..(first + dxp.len() / plane_in) * plane_out;
            let (dy, y, argmax) = (&dy[out.clone()], &y[out.clone()], &argmax[out]);
            let planes = Planes { first, h, w };
            backward_group(dxp, overwrite, xp, dy, y, argmax, mean, k1, coef, planes, g)
        });
}

#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub(super) fn backward_planes(
    dx: &mut [f32],
    overwrite: bool,
    x: &[f32],
    dy: &[f32],
    y: &[f32],
    argmax: &[u32],
    mean: &[f32],
    k1: &[f32],
    coef: Option<(&[f32], &[f32])>,
    c: usize,
    first_plane: usize,
    g: &mut [f32],
    plane_in: usize,
) {
    let plane_out = dy.len() / (dx.len() / plane_in);
    g.fill(0.0);
    let planes = dx.chunks_exact_mut(plane_in).zip(x.chunks_exact(plane_in));
    let outs = dy
        .chunks_exact(plane_out)
        .zip(y.chunks_exact(plane_out))
        .zip(argmax.chunks_exact(plane_out));
    for (i, ((dxp, xp), ((dyp, yp), ap))) in planes.zip(outs).enumerate() {
        let ch = (first_plane + i) % c;
        match coef {
            Some((k2, k3)) => {
                // g for this plane, dense: zero off the argmaxes
                for ((&d, &v), &a) in dyp.iter().zip(yp).zip(ap) {
                    g[a as usize] = if v > 0.0 { d } else { 0.0 };
                }
                let (a, b, mu, q) = (k1[ch], k2[ch], mean[ch], k3[ch]);
                let terms = dxp.iter_mut().zip(g.iter()).zip(xp);
                if overwrite {
                    terms.for_each(|((o, &gi), &v)| *o = a * (gi - b - (v - mu) * q));
                } else {
                    terms.for_each(|((o, &gi), &v)| *o += a * (gi - b - (v - mu) * q));
                }
                // back to zeros for the next plane: one vectorised fill beats a scalar store per
                // argmax
                g.fill(0.0);
            }
            None => {
                if overwrite {
                    dxp.fill(0.0);
                }
                for ((&d, &v), &a) in dyp.iter().zip(yp).zip(ap) {
                    if v > 0.0 {
                        dxp[a as usize] += k1[ch] * d;
                    }
                }
            }
        }
    }
}

/// One sample's input gradient, dx_n = ... (overwritten), for a layer that consumes it sample by
/// sample (the fused convolution's backward, `conv2d::Upstream::PerSample`).
/// x_n (C, H, W), dy_n, y_n, argmax_n (C, Ho, Wo); the rest as in `backward_input`;
/// g: H W values of scratch (`sample_scratch_len`), the caller's (one piece per parallel task).
#[allow(clippy::too_many_arguments)]
pub fn sample_input_grad(
    dx_n: &mut [f32],
    x_n: &[f32],
    dy_n: &[f32],
    y_n: &[f32],
    argmax_n: &[u32],
    mean: &[f32],
    k1: &[f32],
    coef: Option<(&[f32], &[f32])>,
    h: usize,
    w: usize,
    g: &mut [f32],
) {
    let g = &mut g[..sample_scratch_len(h, w)];
    let planes = Planes { first: 0, h, w };
    backward_group(
        dx_n, true, x_n, dy_n, y_n, argmax_n, mean, k1, coef, planes, g,
    )
}

/// Which planes a call of `backward_group` has: the number of the first (its channel is this
/// modulo C), and their size.
struct Planes {
    first: usize,
    h: usize,
    w: usize,
}

/// `backward_planes` or, with batch statistics on a CPU that has it, its AVX-512 twin (which
/// needs no scratch `g`): the same values bit for bit.
#[allow(clippy::too_many_arguments)]
fn backward_group(
    dx: &mut [f32],
    overwrite: bool,
    x: &[f32],
    dy: &[f32],
    y: &[f32],
    argmax: &[u32],
    mean: &[f32],
    k1: &[f32],
    coef: Option<(&[f32], &[f32])>,
    planes: Planes,
    g: &mut [f32],
) {
    let Planes { first, h, w } = planes;
    if let (Some((k2, k3)), true) = (coef, avx512_available()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F
        unsafe {
            super::avx512::backward_planes(
                dx,
                overwrite,
                x,
                dy,
                y,
                argmax,
                mean,
                [k1, k2, k3],
                first,
                h,
                w,
            )
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (k2, k3);
        return;
    }
    let c = mean.len();
    backward_planes(
        dx,
        overwrite,
        x,
        dy,
        y,
        argmax,
        mean,
        k1,
        coef,
        c,
        first,
        g,
        h * w,
    )
}

/// Scratch values `sample_input_grad` needs: one input plane's.
pub fn sample_scratch_len(h: usize, w: usize) -> usize {
    h * w
}

/// The coefficients of the input gradient (see `backward_input`): k1 per channel, and with
/// batch statistics k2 and k3.
pub struct InputGradCoef<'a> {
    /// k1 = weight * rstd, per channel (C values).
    pub k1: &'a [f32],
    /// (k2, k3) per channel (C values each) with batch statistics: k2 = mean of g,
    /// k3 = mean of g * xhat, times rstd. None with fixed statistics, where dx = k1 * g.
    pub coef: Option<(&'a [f32], &'a [f32])>,
}

/// Scratch values `backward_params` needs: 5 per channel and 2 per (sample, channel) plane.
pub fn backward_scratch_len(c: usize, planes: usize) -> usize {
    5 * c + 2 * planes
}

/// The BatchNorm part of the backward, shared by both fused ops: from dy and the forward's
/// y, x_at and BatchNorm statistics (`saved`), the BatchNorm's weight
/// and bias gradients (dweight += sum g xhat, dbias += sum g) and the input gradient's
/// coefficients, kept in `work` (`backward_scratch_len` values). `m`: values per channel
/// (N H W); `batch`: batch statistics were used.
#[allow(clippy::too_many_arguments)]
pub fn backward_params<'a>(
    dy: &[f32],
    y: &[f32],
    x_at: &[f32],
    saved: Saved<&'a [f32]>,
    plane_out: usize,
    m: f32,
    weight: Option<&[f32]>,
    batch: bool,
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
    work: &'a mut [f32],
) -> InputGradCoef<'a> {
    let (mean, rstd, alpha) = (saved.mean, saved.rstd, saved.alpha);
    let c = mean.len();
    let (sums, rest) = work.split_at_mut(2 * c);
    let (sum_g, sum_g_xhat) = sums.split_at_mut(c);
    let (k, per_plane) = rest.split_at_mut(3 * c);
    grad_sums(
        dy, y, x_at, mean, rstd, plane_out, per_plane, sum_g, sum_g_xhat,
    );
    if let Some(dw) = dweight {
        dw.iter_mut().zip(&*sum_g_xhat).for_each(|(d, s)| *d += s);
    }
    if let Some(db) = dbias {
        db.iter_mut().zip(&*sum_g).for_each(|(d, s)| *d += s);
    }
    if !batch {
        // fixed statistics: dx = alpha * g
        return InputGradCoef {
            k1: alpha,
            coef: None,
        };
    }
    // the coefficients of batch_norm::backward_train, per channel
    let (k1, rest) = k.split_at_mut(c);
    let (k2, k3) = rest.split_at_mut(c);
    for ch in 0..c {
        k1[ch] = weight.map_or(1.0, |w| w[ch]) * rstd[ch];
        k2[ch] = sum_g[ch] / m;
        k3[ch] = sum_g_xhat[ch] / m * rstd[ch];
    }
    InputGradCoef {
        k1,
        coef: Some((k2, k3)),
    }
}
