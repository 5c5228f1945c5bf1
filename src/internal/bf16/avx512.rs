//! The AVX512-BF16 kernel: `VDPBF16PS` (`_mm512_dpbf16_ps`) on register blocks of 8 x 32 (8 x 16 at
//! the right edge).
//!
//! `VDPBF16PS acc, x, y` treats `x` and `y` as 16 lanes of bfloat16 PAIRS and does, per lane,
//!
//! ```text
//! acc[l] += x[l].lo * y[l].lo + x[l].hi * y[l].hi      (float32 lanes, bfloat16 inputs)
//! ```
//!
//! So with B packed as (panel, q, 32) pairs `(b[2q][j], b[2q+1][j])` (two registers hold one q
//! for 32 columns) and A's pair `(a[i][2q], a[i][2q+1])` broadcast to every lane, one instruction
//! adds `a[i][2q] b[2q][j] + a[i][2q+1] b[2q+1][j]` into 16 columns of row i. The microkernel
//! keeps an 8 x 32 block of C in 16 registers (of 32), and per pair q reads 2 registers of B
//! and 8 pairs of A: 16 instructions of 32 multiply-adds each.
//!
//! The reference is [`super::matmul_emulated`]: the same products, summed in another order.
//! The instruction treats denormal inputs as zero and flushes denormal results (it ignores
//! MXCSR), which the emulation does not: the results differ by less than 2^-126 per product.

use super::blocks::{block_shape, for_each_block, Block, Dst};
use super::pack::{pack_panels, padded_pairs, with_scratch};
use crate::matmul::Mat;
use std::arch::x86_64::*;

/// Rows of the register block (A's pairs broadcast per q).
const MR: usize = 8;
/// Columns of the register block: two registers of 16 float32.
const NR: usize = 32;
/// Pairs of k per pass over a block: a B micro-panel is KC x 32 pairs = 32 KiB, so it stays in
/// the level 1 cache while the rows of a block stream past it.
const KC: usize = 256;
/// The largest block one task computes (rows, columns).
const BLOCK: (usize, usize) = (128, 256);

/// `dst (m, n) = a (m, k) * b (k, n)` (`+=` when `accumulate`), bfloat16 operands, on the pool
/// (`on_pool`) or the calling thread. The caller checked the shapes, views and that k > 0, and
/// that this CPU has AVX512-BF16.
pub(super) fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, on_pool: bool) {
    with_scratch(|s| {
        let pa = pack_lhs(a, on_pool, &mut s.a);
        matmul_packed(dst, pa, a.rows, b, accumulate, on_pool, &mut s.b)
    })
}

/// A (m, k) packed for [`matmul_packed`] into `out` (grown if needed); the packed values are
/// returned: A^T as panels, `pa[ip][q][r]` is row (ip*8 + r)'s pair q.
pub(super) fn pack_lhs<'o>(a: Mat, on_pool: bool, out: &'o mut Vec<u32>) -> &'o [u32] {
    pack_panels(a.t(), MR, padded_pairs(a.cols, 1), on_pool, out)
}

/// [`matmul`] with A (m rows) already packed by [`pack_lhs`]; B is packed into `pb_buf`.
pub(super) fn matmul_packed(
    dst: &mut [f32],
    pa: &[u32],
    m: usize,
    b: Mat,
    accumulate: bool,
    on_pool: bool,
    pb_buf: &mut Vec<u32>,
) {
    let (k, n) = (b.rows, b.cols);
    let pairs = padded_pairs(k, 1);
    assert_eq!(
        pa.len(),
        m.div_ceil(MR) * pairs * MR,
        "avx512: packed A has the wrong size"
    );
    // pb[jp][q][c] is column (jp*32 + c)'s pair q
    let pb = pack_panels(b, NR, pairs, on_pool, pb_buf);
    let threads = if on_pool {
        crate::runtime::threads()
    } else {
        1
    };
    let shape = block_shape((m, n), (MR, NR), BLOCK, threads);
    for_each_block(dst, (m, n), shape, on_pool, |d, blk| {
        block(d, blk, pa, pb, pairs, accumulate)
    });
}

/// One block of the output, K in slices of `KC` pairs; every slice after the first adds.
fn block(d: Dst, blk: Block, pa: &[u32], pb: &[u32], pairs: usize, accumulate: bool) {
    for q0 in (0..pairs).step_by(KC) {
        let kq = KC.min(pairs - q0);
        let add = accumulate || q0 > 0;
        for j in (blk.j0..blk.j1).step_by(NR) {
            let bp = &pb[(j / NR) * pairs * NR + q0 * NR..][..kq * NR];
            for i in (blk.i0..blk.i1).step_by(MR) {
                let ap = &pa[(i / MR) * pairs * MR + q0 * MR..][..kq * MR];
                let (rows, cols) = (MR.min(blk.i1 - i), NR.min(blk.j1 - j));
                // SAFETY: the caller checked that this CPU has AVX512-BF16; (i, j) and the
                // rows x cols block lie inside dst's block, which only this task writes.
                unsafe {
                    if cols > 16 {
                        micro::<2>(ap, bp, kq, d.at(i, j), d.ld, rows, cols, add)
                    } else {
                        micro::<1>(ap, bp, kq, d.at(i, j), d.ld, rows, cols, add)
                    }
                };
            }
        }
    }
}

/// `c[r][c] (+)= sum_q a[q][r] . b[q][c]` for r < rows <= 8, c < cols <= 16 H, where `.` is
/// the pair product `lo*lo + hi*hi`; H = 2 register columns (32 columns of output), or 1 at the
/// matrix's right edge when at most 16 columns are left (no work for the padding):
///
/// ```text
/// a: (kq, 8) pairs      (A's rows, transposed)
/// b: (kq, 32) pairs     (B's columns; the first 16 H used)
/// c: rows x cols f32 at `c`, rows `ldc` apart
/// ```
///
/// Reference, per element: `for q in 0..kq { s += a[q][r].lo * b[q][c].lo + a[q][r].hi * b[q][c].hi }`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro<const H: usize>(
    a: &[u32],
    b: &[u32],
    kq: usize,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    assert!(a.len() >= kq * MR && b.len() >= kq * NR && H <= 2);
    let mut acc = [[_mm512_setzero_ps(); H]; MR];
    let mut bq = [as_bh(_mm512_setzero_si512()); H];
    for q in 0..kq {
        for h in 0..H {
            // SAFETY: q * 32 + 16 h + 16 <= b.len(), checked above
            bq[h] = as_bh(unsafe { _mm512_loadu_si512(b.as_ptr().add(q * NR + 16 * h).cast()) });
        }
        let ar = &a[q * MR..q * MR + MR];
        for r in 0..MR {
            let x = as_bh(_mm512_set1_epi32(ar[r] as i32));
            for h in 0..H {
                acc[r][h] = _mm512_dpbf16_ps(acc[r][h], x, bq[h]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(rows) {
        for (h, &v) in row.iter().enumerate() {
            // columns 16 h .. 16 h + 16 of the block, masked at the matrix's right edge
            let w = cols.saturating_sub(16 * h).min(16);
            let mask = ((1u32 << w) - 1) as __mmask16;
            // SAFETY: the caller guarantees rows x cols floats at c, rows ldc apart; masked
            // lanes are neither read nor written (wrapping: with cols <= 16 the second half's
            // address may lie past the buffer)
            unsafe {
                let p = c.add(r * ldc).wrapping_add(16 * h);
                let v = if add {
                    _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p))
                } else {
                    v
                };
                _mm512_mask_storeu_ps(p, mask, v);
            }
        }
    }
}

/// A register of 16 bfloat16 pairs, from its bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
fn as_bh(v: __m512i) -> __m512bh {
    // SAFETY: both are 512 bits of plain data
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
}
