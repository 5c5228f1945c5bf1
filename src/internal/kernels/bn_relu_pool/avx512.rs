//! The fused block's forward and input gradient in AVX-512, one pair of input rows at a time.
//!
//! The portable passes (`plane_without_nan`, `backward_planes`) work on whole planes because
//! the compiler vectorises only long flat loops, and the cnn preset's rows are short (14 and 7
//! windows): that costs a scratch round trip, a compaction copy, a scatter and a fill per plane,
//! all scalar. Here one register holds up to 16 windows of one pair of rows, masked loads and
//! stores cover a row's end, and nothing goes through scratch.
//!
//! Value for value the arithmetic is the portable code's: BatchNorm as `x * alpha + beta` (a
//! product then a sum, never fused), ReLU as `max(0, z)` in that operand order (so -0.0 and NaN
//! pass through as `bn_relu` lets them), the window's first maximum in scan order with
//! `later_wins`'s rule (NaN wins, and stays), and the gradient's expression term for term.
//! The tests in `tests.rs` compare both paths bit for bit.

use super::pooled;
use std::arch::x86_64::*;

/// Whether this CPU runs this file's kernels (probed once by the standard library).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Lanes per register.
const LANES: usize = 16;

/// The first `n` lanes (n <= 16).
#[inline(always)]
fn first(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Lane indices of the even (`EVEN`) and odd (`ODD`) values of two registers read as one row
/// of 32, for `_mm512_permutex2var_ps` (index 16 + i is the second register's lane i).
const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
/// The inverse: lefts and rights (one register each) interleaved, first and second 16.
const MIX_LO: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
const MIX_HI: [i32; 16] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];
/// 2 i in lane i: a window's left column, relative to its chunk's first.
const TWICE: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];

/// Planes ahead whose rows are requested while a plane is worked on: x comes from memory (a
/// whole batch's convolution output), and the work per row is too short for the hardware's
/// prefetcher alone to hide the wait.
const AHEAD: usize = 2;

/// Asks for `x[start..start + len]` (positions past x's end are ignored) in the level 1 cache.
#[inline(always)]
fn prefetch_ahead(x: &[f32], start: usize, len: usize) {
    let end = (start + len).min(x.len());
    // one request per 64-byte line
    for i in (start..end).step_by(16) {
        // SAFETY: a prefetch reads nothing architecturally and i is inside x
        unsafe { _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().add(i).cast()) };
    }
}

#[inline(always)]
fn index(v: [i32; 16]) -> __m512i {
    // SAFETY: [i32; 16] and __m512i have the same size, and every bit pattern is valid for both
    unsafe { std::mem::transmute(v) }
}

/// One row's `2 lanes` values from `row` (up to 32), split into the lefts and rights of its
/// pairs.
///
/// # Safety
/// The CPU has AVX-512F; `row` has at least `2 lanes` values.
#[inline(always)]
unsafe fn load_pairs(row: &[f32], lanes: usize) -> (__m512, __m512) {
    let n = 2 * lanes;
    debug_assert!(row.len() >= n && lanes <= LANES);
    let p = row.as_ptr();
    // masked lanes are not read (and cannot fault), so the pointer may pass the row's end
    let lo = _mm512_maskz_loadu_ps(first(n.min(LANES)), p);
    let hi = _mm512_maskz_loadu_ps(first(n.saturating_sub(LANES)), p.wrapping_add(LANES));
    (
        _mm512_permutex2var_ps(lo, index(EVEN), hi),
        _mm512_permutex2var_ps(lo, index(ODD), hi),
    )
}

/// `later_wins` per lane: strictly greater, or NaN, and never from a NaN.
#[inline(always)]
unsafe fn later_wins(best: __m512, later: __m512) -> __mmask16 {
    // NLE_UQ: not (later <= best), true if either is NaN; masked by "best is a number"
    let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best);
    _mm512_mask_cmp_ps_mask::<_CMP_NLE_UQ>(ordered, later, best)
}

/// relu(x * a + b) as `bn_relu`: `max(0, z)` returns z when the comparison 0 > z is false,
/// so -0.0 and NaN pass through.
#[inline(always)]
unsafe fn bn_relu(x: __m512, a: __m512, b: __m512) -> __m512 {
    _mm512_max_ps(_mm512_setzero_ps(), _mm512_add_ps(_mm512_mul_ps(x, a), b))
}

/// `forward_planes` (the parent's) for every plane of a group: y, argmax and x_at of each
/// (N C) plane of x, with channel `(first_plane + i) % c`'s alpha and beta for plane i.
///
/// # Safety
/// The CPU has AVX-512F (`available`).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_planes(
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
) {
    let (ho, wo) = (pooled(h), pooled(w));
    let planes = x.chunks_exact(h * w).enumerate();
    let outs = y
        .chunks_exact_mut(ho * wo)
        .zip(argmax.chunks_exact_mut(ho * wo))
        .zip(x_at.chunks_exact_mut(ho * wo));
    for ((i, xp), ((yp, ap), xap)) in planes.zip(outs) {
        let ch = (first_plane + i) % c;
        let bn = (_mm512_set1_ps(alpha[ch]), _mm512_set1_ps(beta[ch]));
        let mut out = PlaneOut {
            y: yp,
            argmax: ap,
            x_at: xap,
        };
        let mut oy = 0;
        if wo <= LANES / 2 {
            // rows of up to 8 windows (the cnn preset's second block has 7): two pairs of rows
            // per register, the first in lanes 0..8 and the second in lanes 8..16
            let (n, both) = (2 * wo, first(wo) | first(wo) << (LANES / 2));
            while oy + 2 <= ho {
                prefetch_ahead(x, (i + AHEAD) * h * w + 2 * oy * w, 4 * w);
                let top = 2 * oy * w;
                let row =
                    |start: usize| _mm512_maskz_loadu_ps(first(n), xp[start..start + n].as_ptr());
                let (t0, t1) = (row(top), row(top + 2 * w));
                let (b0, b1) = (row(top + w), row(top + 3 * w));
                let even_odd = |lo, hi| {
                    (
                        _mm512_permutex2var_ps(lo, index(EVEN), hi),
                        _mm512_permutex2var_ps(lo, index(ODD), hi),
                    )
                };
                let won = pool(even_odd(t0, t1), even_odd(b0, b1), bn);
                // lane 8 + j is the second pair of rows' window j: 2 w - 16 further on
                let mut left = _mm512_add_epi32(_mm512_set1_epi32(top as i32), index(TWICE));
                let second = _mm512_set1_epi32(2 * w as i32 - LANES as i32);
                left = _mm512_mask_add_epi32(left, 0xFF00, left, second);
                // the two rows' windows side by side: outputs oy wo .. (oy + 2) wo
                out.store_packed(oy * wo, n, both, won.at(left, w));
                oy += 2;
            }
        }
        for oy in oy..ho {
            prefetch_ahead(x, (i + AHEAD) * h * w + 2 * oy * w, 2 * w);
            let (top, bottom) = (&xp[2 * oy * w..], &xp[(2 * oy + 1) * w..]);
            for ox in (0..wo).step_by(LANES) {
                let lanes = (wo - ox).min(LANES);
                let t = load_pairs(&top[2 * ox..], lanes);
                let b = load_pairs(&bottom[2 * ox..], lanes);
                let left = (2 * oy * w + 2 * ox) as i32;
                let left = _mm512_add_epi32(_mm512_set1_epi32(left), index(TWICE));
                let won = pool(t, b, bn);
                out.store(oy * wo + ox, lanes, won.at(left, w));
            }
        }
    }
}

/// Up to 16 windows' winners: relu(bn(x)) and x there, and which of the four inputs won.
struct Won {
    z: __m512,
    x: __m512,
    /// The right column won.
    right: __mmask16,
    /// The bottom row won.
    bottom: __mmask16,
}

/// The winners of windows whose top rows' pairs are `t` (lefts, rights) and bottom rows' `b`,
/// for BatchNorm's (alpha, beta) `bn`: each pair's first maximum, then the top pair's against
/// the bottom's (scan order's first maximum, NaN winning, as `plane_any`).
#[inline(always)]
unsafe fn pool(t: (__m512, __m512), b: (__m512, __m512), bn: (__m512, __m512)) -> Won {
    let ((tl, tr), (bl, br), (a, beta)) = (t, b, bn);
    let (ztl, ztr) = (bn_relu(tl, a, beta), bn_relu(tr, a, beta));
    let (zbl, zbr) = (bn_relu(bl, a, beta), bn_relu(br, a, beta));
    let take_tr = later_wins(ztl, ztr);
    let take_br = later_wins(zbl, zbr);
    let (zt, xt) = (
        _mm512_mask_blend_ps(take_tr, ztl, ztr),
        _mm512_mask_blend_ps(take_tr, tl, tr),
    );
    let (zb, xb) = (
        _mm512_mask_blend_ps(take_br, zbl, zbr),
        _mm512_mask_blend_ps(take_br, bl, br),
    );
    let bottom = later_wins(zt, zb);
    Won {
        z: _mm512_mask_blend_ps(bottom, zt, zb),
        x: _mm512_mask_blend_ps(bottom, xt, xb),
        right: (bottom & take_br) | (!bottom & take_tr),
        bottom,
    }
}

impl Won {
    /// With each window's top-left index in the plane (`left`, per lane) and the row length
    /// w: (z, the winner's index, x).
    #[inline(always)]
    unsafe fn at(&self, left: __m512i, w: usize) -> (__m512, __m512i, __m512) {
        let mut at = _mm512_mask_add_epi32(left, self.right, left, _mm512_set1_epi32(1));
        at = _mm512_mask_add_epi32(at, self.bottom, at, _mm512_set1_epi32(w as i32));
        (self.z, at, self.x)
    }
}

/// One plane's y, argmax and x_at.
struct PlaneOut<'a> {
    y: &'a mut [f32],
    argmax: &'a mut [u32],
    x_at: &'a mut [f32],
}

impl PlaneOut<'_> {
    /// The first `len` lanes of (y, argmax, x_at) to outputs o .. o + len.
    #[inline(always)]
    unsafe fn store(&mut self, o: usize, len: usize, v: (__m512, __m512i, __m512)) {
        let (keep, outs) = (first(len), o..o + len);
        _mm512_mask_storeu_ps(self.y[outs.clone()].as_mut_ptr(), keep, v.0);
        _mm512_mask_storeu_epi32(self.argmax[outs.clone()].as_mut_ptr().cast(), keep, v.1);
        _mm512_mask_storeu_ps(self.x_at[outs].as_mut_ptr(), keep, v.2);
    }

    /// The lanes `lanes` (`len` of them) packed in lane order, to outputs o .. o + len.
    #[inline(always)]
    unsafe fn store_packed(
        &mut self,
        o: usize,
        len: usize,
        lanes: __mmask16,
        v: (__m512, __m512i, __m512),
    ) {
        let packed = (
            _mm512_maskz_compress_ps(lanes, v.0),
            _mm512_maskz_compress_epi32(lanes, v.1),
            _mm512_maskz_compress_ps(lanes, v.2),
        );
        self.store(o, len, packed)
    }
}

/// `backward_planes` (in `backward.rs`) with batch statistics, for every plane of a group:
/// dx = k1 (g - k2 - (x - mean) k3) (`+=` unless `overwrite`), g being `dy` at each window's
/// argmax where `y > 0` and zero elsewhere, made per pair of rows in registers (no scatter into
/// a dense plane, no fill).
///
/// # Safety
/// The CPU has AVX-512F (`available`).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn backward_planes(
    dx: &mut [f32],
    overwrite: bool,
    x: &[f32],
    dy: &[f32],
    y: &[f32],
    argmax: &[u32],
    mean: &[f32],
    k: [&[f32]; 3],
    first_plane: usize,
    h: usize,
    w: usize,
) {
    let (c, ho, wo) = (mean.len(), pooled(h), pooled(w));
    let planes = dx.chunks_exact_mut(h * w).zip(x.chunks_exact(h * w));
    let outs = dy
        .chunks_exact(ho * wo)
        .zip(y.chunks_exact(ho * wo))
        .zip(argmax.chunks_exact(ho * wo));
    for (i, ((dxp, xp), ((dyp, yp), ap))) in planes.zip(outs).enumerate() {
        let ch = (first_plane + i) % c;
        let coef = Coef::new([k[0][ch], k[1][ch], k[2][ch], mean[ch]]);
        for oy in 0..ho {
            prefetch_ahead(x, (i + AHEAD) * h * w + 2 * oy * w, 2 * w);
            for ox in (0..wo).step_by(LANES) {
                let lanes = (wo - ox).min(LANES);
                let (o, keep) = (oy * wo + ox, first(lanes));
                let dyv = _mm512_maskz_loadu_ps(keep, dyp[o..o + lanes].as_ptr());
                let yv = _mm512_maskz_loadu_ps(keep, yp[o..o + lanes].as_ptr());
                let at = _mm512_maskz_loadu_epi32(keep, ap[o..o + lanes].as_ptr().cast());
                // g = dy where y > 0 (false for NaN), else +0.0
                let g = _mm512_maskz_mov_ps(
                    _mm512_cmp_ps_mask::<_CMP_GT_OQ>(yv, _mm512_setzero_ps()),
                    dyv,
                );
                // the argmax's place in its window: 0, 1 (top row), w, w + 1 (bottom row)
                let left = 2 * oy * w + 2 * ox;
                let base = _mm512_add_epi32(_mm512_set1_epi32(left as i32), index(TWICE));
                let off = _mm512_sub_epi32(at, base);
                let at_off = |d: usize| {
                    _mm512_maskz_mov_ps(
                        _mm512_cmpeq_epi32_mask(off, _mm512_set1_epi32(d as i32)),
                        g,
                    )
                };
                let (tl, tr, bl, br) = (at_off(0), at_off(1), at_off(w), at_off(w + 1));
                let n = 2 * lanes;
                coef.row(
                    &mut dxp[left..left + n],
                    &xp[left..left + n],
                    tl,
                    tr,
                    overwrite,
                );
                let below = left + w;
                coef.row(
                    &mut dxp[below..below + n],
                    &xp[below..below + n],
                    bl,
                    br,
                    overwrite,
                );
            }
        }
        // inputs in no window (an odd last column, an odd last row): g = 0
        let odd_rows = if w % 2 == 1 { 2 * ho } else { 0 };
        let last_column = (0..odd_rows).map(|r| r * w + w - 1);
        for i in last_column.chain(2 * ho * w..h * w) {
            let v = coef.scalar(0.0, xp[i]);
            dxp[i] = if overwrite { v } else { dxp[i] + v };
        }
    }
}

/// One plane's coefficients k1, k2, k3 and mean, in every lane and as they are.
struct Coef {
    k1: __m512,
    k2: __m512,
    k3: __m512,
    mean: __m512,
    scalars: [f32; 4],
}

impl Coef {
    #[inline(always)]
    unsafe fn new(scalars: [f32; 4]) -> Coef {
        let [k1, k2, k3, mean] = scalars.map(|v| _mm512_set1_ps(v));
        Coef {
            k1,
            k2,
            k3,
            mean,
            scalars,
        }
    }

    /// k1 (g - k2 - (x - mean) k3), in `backward_planes`'s order of operations.
    #[inline(always)]
    unsafe fn term(&self, g: __m512, x: __m512) -> __m512 {
        let shifted = _mm512_mul_ps(_mm512_sub_ps(x, self.mean), self.k3);
        _mm512_mul_ps(self.k1, _mm512_sub_ps(_mm512_sub_ps(g, self.k2), shifted))
    }

    /// The same for one value (the inputs in no window).
    #[inline(always)]
    fn scalar(&self, g: f32, x: f32) -> f32 {
        let [k1, k2, k3, mean] = self.scalars;
        k1 * (g - k2 - (x - mean) * k3)
    }

    /// dx over one row's stretch (up to 32 values) of windows, from g at the lefts and rights of
    /// its pairs.
    #[inline(always)]
    unsafe fn row(&self, dx: &mut [f32], x: &[f32], left: __m512, right: __m512, overwrite: bool) {
        let n = dx.len();
        let g = [
            _mm512_permutex2var_ps(left, index(MIX_LO), right),
            _mm512_permutex2var_ps(left, index(MIX_HI), right),
        ];
        let masks = [first(n.min(LANES)), first(n.saturating_sub(LANES))];
        for (half, (g, m)) in g.into_iter().zip(masks).enumerate() {
            // masked lanes are neither read nor written (the pointers may pass the row's end)
            let (xp, dp) = (
                x.as_ptr().wrapping_add(half * LANES),
                dx.as_mut_ptr().wrapping_add(half * LANES),
            );
            let mut d = self.term(g, _mm512_maskz_loadu_ps(m, xp));
            if !overwrite {
                d = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dp), d);
            }
            _mm512_mask_storeu_ps(dp, m, d);
        }
    }
}

/// One plane's `[sum g, sum g (x_at - mean)]` as `plane_sums` (in `backward.rs`) adds them:
/// output j into accumulator j % 8 in the order of j (eight lanes of one 256-bit register),
/// then the eight summed in order.
///
/// # Safety
/// The CPU has AVX-512F (`available`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn plane_sums(dy: &[f32], y: &[f32], x_at: &[f32], mean: f32) -> [f32; 2] {
    let n = dy.len();
    let (y, x_at) = (&y[..n], &x_at[..n]);
    let full = n / 8 * 8;
    let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mu = _mm256_set1_ps(mean);
    for j in (0..full).step_by(8) {
        let d = _mm256_loadu_ps(dy[j..j + 8].as_ptr());
        let v = _mm256_loadu_ps(y[j..j + 8].as_ptr());
        let xv = _mm256_loadu_ps(x_at[j..j + 8].as_ptr());
        // g = dy where y > 0 (false for NaN), else +0.0
        let g = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_setzero_ps()), d);
        a = _mm256_add_ps(a, g);
        b = _mm256_add_ps(b, _mm256_mul_ps(g, _mm256_sub_ps(xv, mu)));
    }
    let (mut sa, mut sb) = ([0.0f32; 8], [0.0f32; 8]);
    _mm256_storeu_ps(sa.as_mut_ptr(), a);
    _mm256_storeu_ps(sb.as_mut_ptr(), b);
    for (k, j) in (full..n).enumerate() {
        let g = if y[j] > 0.0 { dy[j] } else { 0.0 };
        sa[k] += g;
        sb[k] += g * (x_at[j] - mean);
    }
    [sa.iter().sum(), sb.iter().sum()]
}
