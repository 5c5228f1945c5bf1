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
/// 2 i in lane i: a window's left column, relative to its chunk's first.
const TWICE: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];

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
        let (a, b) = (_mm512_set1_ps(alpha[ch]), _mm512_set1_ps(beta[ch]));
        for oy in 0..ho {
            let (top, bottom) = (&xp[2 * oy * w..], &xp[(2 * oy + 1) * w..]);
            for ox in (0..wo).step_by(LANES) {
                let lanes = (wo - ox).min(LANES);
                let (tl, tr) = load_pairs(&top[2 * ox..], lanes);
                let (bl, br) = load_pairs(&bottom[2 * ox..], lanes);
                let (ztl, ztr) = (bn_relu(tl, a, b), bn_relu(tr, a, b));
                let (zbl, zbr) = (bn_relu(bl, a, b), bn_relu(br, a, b));
                // each pair's winner, then the top pair's against the bottom's
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
                let take_b = later_wins(zt, zb);
                let right = (take_b & take_br) | (!take_b & take_tr);
                // the winner's index in the plane: its window's top-left, + 1 on the right,
                // + w on the bottom
                let left = (2 * oy * w + 2 * ox) as i32;
                let mut at = _mm512_add_epi32(_mm512_set1_epi32(left), index(TWICE));
                at = _mm512_mask_add_epi32(at, right, at, _mm512_set1_epi32(1));
                at = _mm512_mask_add_epi32(at, take_b, at, _mm512_set1_epi32(w as i32));
                let o = oy * wo + ox;
                let keep = first(lanes);
                let outs = o..o + lanes;
                let (yo, ao) = (&mut yp[outs.clone()], &mut ap[outs.clone()]);
                let xo = &mut xap[outs];
                let (zw, xw) = (
                    _mm512_mask_blend_ps(take_b, zt, zb),
                    _mm512_mask_blend_ps(take_b, xt, xb),
                );
                _mm512_mask_storeu_ps(yo.as_mut_ptr(), keep, zw);
                _mm512_mask_storeu_epi32(ao.as_mut_ptr().cast(), keep, at);
                _mm512_mask_storeu_ps(xo.as_mut_ptr(), keep, xw);
            }
        }
    }
}
