//! BatchNorm2d -> ReLU -> MaxPool2d(2, 2), the CNN block's tail, as one pass over memory.
//!
//! Shapes: x (N, C, H, W) (the BatchNorm's input, a convolution's output), y (N, C, Ho, Wo)
//! with Ho = H / 2, Wo = W / 2 (floor: an odd last row or column is in no window).
//!
//! Separately, the three layers read and write the (N, C, H, W) tensor seven times in the
//! forward and backward (26 MB each for the cnn preset's first block at batch 256), and on
//! these machines that traffic, not arithmetic, set their cost. Fused:
//!   forward:  statistics (one read, `batch_norm::batch_stats`), then one read of x that writes
//!             only the pooled outputs, their argmax and x at each argmax (a quarter each);
//!   backward: per-channel sums from the quarter-sized tensors, then one read of x that writes
//!             dx.
//! When a convolution comes first (`Graph::conv_bn_relu_pool`), the statistics come from the
//! convolution's loop instead, and dx is made one sample at a time inside the convolution's
//! backward (`sample_input_grad`), so it never goes to memory either.
//!
//! The arithmetic is the layers' own, value for value: z = x * alpha + beta (BatchNorm as one
//! affine map per channel), r = relu(z) with NaN passing through, the window's first maximum in
//! scan order (NaN wins). So y is exactly what the three layers give.
//!
//! Backward, with g the gradient reaching the BatchNorm's output z:
//!   max pooling sends `dy[o]` to the window's argmax a(o) and nothing to the other three inputs;
//!   ReLU passes it where r > 0, and r at a(o) is `y[o]`, so `g[a(o)] = dy[o] * [y[o] > 0]`;
//!   BatchNorm then needs sum g and sum g * xhat over each channel: g is zero off the argmaxes,
//!   so both sums run over the outputs, with xhat at a(o) = `(x_at[o] - mean) * rstd`;
//!   dx = k1 * (g - k2 - (x - mean) * k3) in training, dx = alpha * g with fixed statistics
//!   (the derivation is `batch_norm::backward_train`'s).

use multiversion::multiversion;
use rayon::prelude::*;
use std::cell::RefCell;

/// Output planes per parallel task.
const PLANES: usize = 16;

/// Output size of 2x2 pooling with stride 2 along a dimension of `size`.
pub fn pooled(size: usize) -> usize {
    size / 2
}

/// relu(x * a + b), NaN passing through (as `batch_norm::affine` then `relu::forward`).
#[inline(always)]
fn bn_relu(x: f32, a: f32, b: f32) -> f32 {
    let z = x * a + b;
    if z < 0.0 {
        0.0
    } else {
        z
    }
}

/// Forward. x: (N, C, H, W); alpha, beta: (C) (`batch_norm::fold`); y, argmax, x_at: (N, C, Ho, Wo).
/// argmax receives each window's argmax as an index into its input plane, x_at the input there.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    y: &mut [f32],
    argmax: &mut [u32],
    x_at: &mut [f32],
    x: &[f32],
    alpha: &[f32],
    beta: &[f32],
    h: usize,
    w: usize,
) {
    let (c, plane_in, plane_out) = (alpha.len(), h * w, pooled(h) * pooled(w));
    let outs = y
        .par_chunks_mut(plane_out * PLANES)
        .zip(argmax.par_chunks_mut(plane_out * PLANES))
        .zip(x_at.par_chunks_mut(plane_out * PLANES));
    outs.zip(x.par_chunks(plane_in * PLANES))
        .enumerate()
        .for_each(|(task, (((yp, ap), xap), xp))| {
            POOL_SCRATCH.with_borrow_mut(|scratch| {
                scratch.fit(2 * plane_out);
                forward_planes(
                    yp,
                    ap,
                    xap,
                    xp,
                    alpha,
                    beta,
                    c,
                    task * PLANES,
                    h,
                    w,
                    scratch,
                )
            })
        });
}

thread_local! {
    /// A thread's pooling scratch, reused from task to task and step to step.
    static POOL_SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn forward_planes(
    y: &mut [f32],
    argmax: &mut [u32],
    x_at: &mut [f32],
    x: &[f32],
    alpha: &[f32],
    beta: &[f32],
    c: usize,
    first_plane: usize,
    h: usize,
    w: usize,
    scratch: &mut Scratch,
) {
    let (ho, wo) = (pooled(h), pooled(w));
    let planes = x.chunks_exact(h * w).enumerate();
    let outs = y
        .chunks_exact_mut(ho * wo)
        .zip(argmax.chunks_exact_mut(ho * wo))
        .zip(x_at.chunks_exact_mut(ho * wo));
    for ((i, xp), ((yp, ap), xap)) in planes.zip(outs) {
        let ch = (first_plane + i) % c;
        let (a, b) = (alpha[ch], beta[ch]);
        let mut out = Out {
            y: yp,
            argmax: ap,
            x_at: xap,
        };
        if !w.is_multiple_of(2) || !plane_without_nan(&mut out, xp, a, b, h, w, scratch) {
            plane_any(&mut out, xp, a, b, h, w, scratch);
        }
    }
}

/// One plane's outputs.
struct Out<'a> {
    y: &'a mut [f32],
    argmax: &'a mut [u32],
    x_at: &'a mut [f32],
}

/// Per pair of horizontal neighbours, then per window: the winner's value, its offset, the input.
#[derive(Default)]
struct Scratch {
    best: Vec<f32>,
    at: Vec<u32>,
    x: Vec<f32>,
    win_best: Vec<f32>,
    win_at: Vec<u32>,
    win_x: Vec<f32>,
}

impl Scratch {
    /// Room for `pairs` pairs in every buffer.
    fn fit(&mut self, pairs: usize) {
        if self.best.len() < pairs {
            for v in [
                &mut self.best,
                &mut self.x,
                &mut self.win_best,
                &mut self.win_x,
            ] {
                v.resize(pairs, 0.0);
            }
            self.at.resize(pairs, 0);
            self.win_at.resize(pairs, 0);
        }
    }
}

// The scan order's first maximum of a window (top-left, top-right, bottom-left, bottom-right)
// is the first maximum of its top pair unless its bottom pair's first maximum beats it: so a
// horizontal pass over pairs, then a vertical pass over pairs of pairs. Both are selects (which
// candidate wins is data: branches would be mispredicted half the time).

/// The common case, for an even width and no NaN: both passes are long flat loops over the
/// plane, which the compiler vectorises (the rows, 14 and 7 outputs in the cnn preset, are
/// shorter than its vector loops). With W even, pair q of the plane is (x[2q], x[2q + 1]) and
/// pairs q and q + Wo are a window's top and bottom. The vertical pass also compares the pairs
/// of odd rows with the next row's, results no window uses: cheaper than a loop per row.
/// Returns false, with the outputs unfinished, if a NaN appeared.
#[inline(always)]
fn plane_without_nan(
    out: &mut Out,
    x: &[f32],
    a: f32,
    b: f32,
    h: usize,
    w: usize,
    s: &mut Scratch,
) -> bool {
    let (ho, wo) = (pooled(h), pooled(w));
    let pairs = 2 * ho * wo;
    let mut nan = false;
    let x = &x[..2 * pairs];
    for (q, ((best, at), xv)) in s.best[..pairs]
        .iter_mut()
        .zip(&mut s.at[..pairs])
        .zip(&mut s.x[..pairs])
        .enumerate()
    {
        let (l, r) = (x[2 * q], x[2 * q + 1]);
        let (lv, rv) = (bn_relu(l, a, b), bn_relu(r, a, b));
        nan |= lv.is_nan() | rv.is_nan();
        let take = rv > lv;
        *best = if take { rv } else { lv };
        *at = 2 * q as u32 + take as u32;
        *xv = if take { r } else { l };
    }
    if nan {
        return false;
    }
    let n = pairs - wo;
    let (top, bottom) = (&s.best[..n], &s.best[wo..pairs]);
    let (top_at, bottom_at) = (&s.at[..n], &s.at[wo..pairs]);
    let (top_x, bottom_x) = (&s.x[..n], &s.x[wo..pairs]);
    for t in 0..n {
        let take = bottom[t] > top[t];
        s.win_best[t] = if take { bottom[t] } else { top[t] };
        s.win_at[t] = if take { bottom_at[t] } else { top_at[t] };
        s.win_x[t] = if take { bottom_x[t] } else { top_x[t] };
    }
    // window (oy, ox) is pair 2 oy Wo + ox's
    // (one loop for the three outputs: three copy_from_slice of 7 or 14 values would be three
    // memcpy calls per row)
    for oy in 0..ho {
        let (from, to) = (2 * oy * wo, oy * wo);
        for ox in 0..wo {
            out.y[to + ox] = s.win_best[from + ox];
            out.argmax[to + ox] = s.win_at[from + ox];
            out.x_at[to + ox] = s.win_x[from + ox];
        }
    }
    true
}

/// Any plane, NaN included (it wins, as in max_pool2d), any width: a loop per row.
fn plane_any(out: &mut Out, xp: &[f32], a: f32, b: f32, h: usize, w: usize, s: &mut Scratch) {
    let (ho, wo) = (pooled(h), pooled(w));
    let (pair_best, pair_off, pair_x) = (&mut s.best, &mut s.at, &mut s.x);
    let (yp, ap, xap) = (&mut *out.y, &mut *out.argmax, &mut *out.x_at);
    // Horizontal: left and right of each pair, in every row that a window covers.
    for (r, row) in xp.chunks_exact(w).take(2 * ho).enumerate() {
        let out = r * wo..(r + 1) * wo;
        let pairs = row.chunks_exact(2).take(wo);
        let dst = pair_best[out.clone()]
            .iter_mut()
            .zip(&mut pair_off[out.clone()])
            .zip(&mut pair_x[out]);
        for (((best, off), bx), pair) in dst.zip(pairs) {
            let (l, r) = (bn_relu(pair[0], a, b), bn_relu(pair[1], a, b));
            let take = later_wins(l, r);
            *best = if take { r } else { l };
            *off = take as u32;
            *bx = if take { pair[1] } else { pair[0] };
        }
    }
    // Vertical: the top pair's winner against the bottom pair's.
    for oy in 0..ho {
        let (top, bottom) = (2 * oy * wo, (2 * oy + 1) * wo);
        for ox in 0..wo {
            let (t, u) = (pair_best[top + ox], pair_best[bottom + ox]);
            let take = later_wins(t, u);
            let o = oy * wo + ox;
            yp[o] = if take { u } else { t };
            let (row, off) = if take {
                (2 * oy + 1, pair_off[bottom + ox])
            } else {
                (2 * oy, pair_off[top + ox])
            };
            ap[o] = (row * w + 2 * ox) as u32 + off;
            xap[o] = if take {
                pair_x[bottom + ox]
            } else {
                pair_x[top + ox]
            };
        }
    }
}

/// Whether a later candidate takes over from the current best: strictly greater, or NaN, and
/// never from a NaN (max_pool2d's rule).
#[inline(always)]
fn later_wins(best: f32, later: f32) -> bool {
    !best.is_nan() & ((later > best) | later.is_nan())
}

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
        .for_each(|(task, sums)| plane_sums(sums, dy, y, x_at, mean, c, task * PLANES, plane_out));
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
fn plane_sums(
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
/// garbage, and every value is written).
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
) {
    let (c, plane_in, plane_out) = (mean.len(), h * w, pooled(h) * pooled(w));
    dx.par_chunks_mut(plane_in * PLANES)
        .zip(x.par_chunks(plane_in * PLANES))
        .enumerate()
        .for_each(|(task, (dxp, xp))| {
            let first = task * PLANES;
            let out = first * plane_out..(first + dxp.len() / plane_in) * plane_out;
            let (dy, y, argmax) = (&dy[out.clone()], &y[out.clone()], &argmax[out]);
            G.with_borrow_mut(|g| {
                backward_planes(
                    dxp, overwrite, xp, dy, y, argmax, mean, k1, coef, c, first, g, plane_in,
                )
            })
        });
}

thread_local! {
    /// One plane's g, dense, reused.
    static G: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_planes(
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
    g: &mut Vec<f32>,
    plane_in: usize,
) {
    let plane_out = dy.len() / (dx.len() / plane_in);
    g.clear();
    g.resize(plane_in, 0.0);
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
/// x_n (C, H, W), dy_n, y_n, argmax_n (C, Ho, Wo); the rest as in `backward_input`.
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
) {
    let c = mean.len();
    G.with_borrow_mut(|g| {
        backward_planes(
            dx_n,
            true,
            x_n,
            dy_n,
            y_n,
            argmax_n,
            mean,
            k1,
            coef,
            c,
            0,
            g,
            h * w,
        )
    })
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
/// y, x_at and statistics block [mean var rstd alpha beta] (C each), the BatchNorm's weight
/// and bias gradients (dweight += sum g xhat, dbias += sum g) and the input gradient's
/// coefficients, kept in `work` (`backward_scratch_len` values). `m`: values per channel
/// (N H W); `batch`: batch statistics were used.
#[allow(clippy::too_many_arguments)]
pub fn backward_params<'a>(
    dy: &[f32],
    y: &[f32],
    x_at: &[f32],
    stats: &'a [f32],
    plane_out: usize,
    m: f32,
    weight: Option<&[f32]>,
    batch: bool,
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
    work: &'a mut [f32],
) -> InputGradCoef<'a> {
    let c = stats.len() / 5;
    let (mean, rstd, alpha) = (&stats[..c], &stats[2 * c..3 * c], &stats[3 * c..4 * c]);
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
