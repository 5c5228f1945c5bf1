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

#[cfg(target_arch = "x86_64")]
mod avx512;
mod backward;
#[cfg(test)]
mod tests;

pub use backward::{
    backward_input, backward_params, backward_scratch_len, grad_sums, sample_input_grad,
    sample_scratch_len, InputGradCoef,
};

/// Output planes per parallel task of `grad_sums`.
const PLANES: usize = 16;

/// `forward` and `backward_input` process the planes in this many groups (fewer if there are
/// fewer planes), each on one thread with its own piece of the caller's `Scratch`: enough
/// groups for up to eight threads to balance, few enough that the scratch stays small. Planes
/// are independent, so which thread does which plane changes no value.
const GROUPS: usize = 32;

/// Planes per group, for `planes` (N C) planes.
fn group_len(planes: usize) -> usize {
    planes.div_ceil(GROUPS).max(1)
}

/// Scratch for `forward` and `backward_input`, one piece per group of planes, kept by the
/// caller from step to step (so that a step allocates nothing). Its contents mean nothing
/// between calls.
#[derive(Default)]
pub struct Scratch {
    vals: Vec<f32>,
    offsets: Vec<u32>,
}

/// The first `len` values of `v`, grown if it is shorter (contents left as they are).
fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Whether the AVX-512 kernels (`avx512.rs`) run on this CPU, else the portable ones.
fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

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
    scratch: &mut Scratch,
) {
    let (c, plane_in, plane_out) = (alpha.len(), h * w, pooled(h) * pooled(w));
    let (per, pairs) = (group_len(x.len() / plane_in), 2 * plane_out);
    let groups = (x.len() / plane_in).div_ceil(per);
    let fast = avx512_available();
    let vals = grow(&mut scratch.vals, groups * Pairs::VALS * pairs);
    let offsets = grow(&mut scratch.offsets, groups * Pairs::OFFSETS * pairs);
    let outs = y
        .par_chunks_mut(plane_out * per)
        .zip(argmax.par_chunks_mut(plane_out * per))
        .zip(x_at.par_chunks_mut(plane_out * per));
    let work = vals
        .par_chunks_mut(Pairs::VALS * pairs)
        .zip(offsets.par_chunks_mut(Pairs::OFFSETS * pairs));
    outs.zip(x.par_chunks(plane_in * per))
        .zip(work)
        .enumerate()
        .for_each(|(group, ((((yp, ap), xap), xp), (v, o)))| {
            if fast {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512F
                unsafe {
                    avx512::forward_planes(yp, ap, xap, xp, alpha, beta, c, group * per, h, w)
                };
                return;
            }
            let mut pairs = Pairs::carve(v, o, pairs);
            forward_planes(
                yp,
                ap,
                xap,
                xp,
                alpha,
                beta,
                c,
                group * per,
                h,
                w,
                &mut pairs,
            )
        });
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
    scratch: &mut Pairs,
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

/// Per pair of horizontal neighbours, then per window: the winner's value, its offset, the
/// input. One group's piece of the `Scratch`, reused from plane to plane.
struct Pairs<'a> {
    best: &'a mut [f32],
    at: &'a mut [u32],
    x: &'a mut [f32],
    win_best: &'a mut [f32],
    win_at: &'a mut [u32],
    win_x: &'a mut [f32],
}

impl<'a> Pairs<'a> {
    /// Buffers of f32 and of u32, `pairs` values each.
    const VALS: usize = 4;
    const OFFSETS: usize = 2;

    /// The buffers for `pairs` pairs, cut from `vals` (VALS * pairs) and `offsets`
    /// (OFFSETS * pairs).
    fn carve(vals: &'a mut [f32], offsets: &'a mut [u32], pairs: usize) -> Pairs<'a> {
        let (best, rest) = vals.split_at_mut(pairs);
        let (x, rest) = rest.split_at_mut(pairs);
        let (win_best, win_x) = rest.split_at_mut(pairs);
        let (at, win_at) = offsets.split_at_mut(pairs);
        Pairs {
            best,
            at,
            x,
            win_best,
            win_at,
            win_x,
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
    s: &mut Pairs,
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
    // Selects as masks (all ones where the bottom pair wins): written as `if`, the compiler
    // picked a pointer between top and bottom and loaded through it, one window at a time,
    // 17% of a cnn-bn epoch on AVX2 (`perf annotate`, AMD Zen 3); as bit operations the loop
    // is vectorised. Same values: each output is one candidate's bits.
    let wins = s.win_best[..n]
        .iter_mut()
        .zip(&mut s.win_at[..n])
        .zip(&mut s.win_x[..n]);
    let tops = top.iter().zip(top_at).zip(top_x);
    let bottoms = bottom.iter().zip(bottom_at).zip(bottom_x);
    for (((wb, wa), wx), (((&tb, &ta), &tx), ((&bb, &ba), &bx))) in wins.zip(tops.zip(bottoms)) {
        let m = 0u32.wrapping_sub((bb > tb) as u32);
        *wb = f32::from_bits(select(m, bb.to_bits(), tb.to_bits()));
        *wa = select(m, ba, ta);
        *wx = f32::from_bits(select(m, bx.to_bits(), tx.to_bits()));
    }
    // window (oy, ox) is pair 2 oy Wo + ox's
    compact_rows(out.y, &s.win_best[..n], ho, wo);
    compact_rows(out.argmax, &s.win_at[..n], ho, wo);
    compact_rows(out.x_at, &s.win_x[..n], ho, wo);
    true
}

/// Row oy of `dst` (ho rows of wo) = `src[2 oy wo..][..wo]`, in whole vectors of 8 values:
/// a row's copy runs on past its wo values into the next row's place, which that row's copy
/// then rewrites (the last row is copied exactly). Copied value by value, these rows of 7 or
/// 14 were a scalar loop, and as `copy_from_slice` a memcpy call each.
#[inline(always)]
fn compact_rows<T: Copy>(dst: &mut [T], src: &[T], ho: usize, wo: usize) {
    const V: usize = 8;
    let padded = wo.next_multiple_of(V);
    for oy in 0..ho {
        let (to, from) = (oy * wo, 2 * oy * wo);
        let len = if padded <= dst.len() - to && padded <= src.len() - from {
            padded
        } else {
            wo
        };
        let (d, s) = (&mut dst[to..to + len], &src[from..from + len]);
        let mut ds = d.chunks_exact_mut(V);
        let mut ss = s.chunks_exact(V);
        for (d, s) in ds.by_ref().zip(ss.by_ref()) {
            let s: &[T; V] = s.try_into().expect("V values");
            let d: &mut [T; V] = d.try_into().expect("V values");
            *d = *s;
        }
        for (d, s) in ds.into_remainder().iter_mut().zip(ss.remainder()) {
            *d = *s;
        }
    }
}

/// `a` where the mask `m` is set, `b` elsewhere, bit by bit.
#[inline(always)]
fn select(m: u32, a: u32, b: u32) -> u32 {
    (a & m) | (b & !m)
}

/// Any plane, NaN included (it wins, as in max_pool2d), any width: a loop per row.
fn plane_any(out: &mut Out, xp: &[f32], a: f32, b: f32, h: usize, w: usize, s: &mut Pairs) {
    let (ho, wo) = (pooled(h), pooled(w));
    let (pair_best, pair_off, pair_x) = (&mut *s.best, &mut *s.at, &mut *s.x);
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
