//! Packing: float32 operands rounded to bfloat16 and laid out the way the instructions read them.
//!
//! Both instructions multiply PAIRS along k: a 32-bit lane holds two bfloat16s, element 2q in
//! its low half and 2q+1 in its high half, and the instruction adds both products into one
//! float32 lane. So every packed buffer is made of such pairs (`u32`), k padded with zeros to an
//! even length (and to the tile's 32 for AMX), and the rows/columns past the matrix's edge are
//! zeros too, so the microkernels never test an edge while they multiply.
//!
//! Packing runs once per call (weights change every step): O(mk + kn) against O(mkn) products.
//! The rounding is [`super::round_bf16`]'s (nearest, ties to even), done here in software, so the
//! packed values are exactly the emulation's operands (`VCVTNE2PS2BF16` would also flush
//! denormal inputs to zero, which the emulation does not).

use super::round_bf16;
use crate::matmul::Mat;

/// The bfloat16 of `x` (nearest, ties to even) as its 16 bits.
#[inline]
fn bf16_bits(x: f32) -> u32 {
    round_bf16(x).to_bits() >> 16
}

/// Number of k pairs once k is padded to a multiple of `2 * pair_align`.
pub(super) fn padded_pairs(k: usize, pair_align: usize) -> usize {
    k.div_ceil(2).div_ceil(pair_align) * pair_align
}

/// `m` (k, n) packed into column panels of `width` columns, VNNI pairs along k:
///
/// ```text
/// out[jp][q][c] = bf16(m[2q][jp*width + c]) | bf16(m[2q+1][jp*width + c]) << 16
///   shape (ceil(n / width), pairs, width), zero past k and past n
/// ```
///
/// This is B's layout for both kernels (for AMX, a tile of B is 16 consecutive q of half a
/// panel). It is A's layout for the AVX512 kernel too, applied to A's transpose: then the
/// `width` "columns" are A's rows, and `out[ip][q][r]` is row `r`'s pair `q`.
pub(super) fn pack_panels(m: Mat, width: usize, pairs: usize) -> Vec<u32> {
    let (k, n) = (m.rows, m.cols);
    let panels = n.div_ceil(width);
    let mut out = vec![0u32; panels * pairs * width];
    for (jp, panel) in out.chunks_exact_mut(pairs * width).enumerate() {
        let j0 = jp * width;
        let cols = width.min(n - j0);
        for (q, row) in panel
            .chunks_exact_mut(width)
            .enumerate()
            .take(k.div_ceil(2))
        {
            let (p0, p1) = (2 * q, 2 * q + 1);
            let lo = &m.data[p0 * m.row_stride + j0 * m.col_stride..];
            for (c, v) in row[..cols].iter_mut().enumerate() {
                *v = bf16_bits(lo[c * m.col_stride]);
            }
            if p1 < k {
                let hi = &m.data[p1 * m.row_stride + j0 * m.col_stride..];
                for (c, v) in row[..cols].iter_mut().enumerate() {
                    *v |= bf16_bits(hi[c * m.col_stride]) << 16;
                }
            }
        }
    }
    out
}

/// A (m, k) packed for AMX: blocks of 32 rows, and in each, for each group of 16 pairs (32 k),
/// the two A tiles of 16 rows x 16 pairs, row after row:
///
/// ```text
/// out[ip][g][r][qq] = bf16(a[ip*32 + r][2(16g+qq)]) | bf16(a[ip*32 + r][2(16g+qq) + 1]) << 16
///   shape (ceil(m / 32), pairs / 16, 32, 16), zero past k and past m
/// ```
///
/// so a tile is 1 KiB of consecutive memory (rows 64 bytes apart) and the second tile of a
/// block follows the first.
pub(super) fn pack_a_tiles(a: Mat, pairs: usize) -> Vec<u32> {
    const ROWS: usize = 32;
    const GROUP: usize = 16;
    debug_assert_eq!(pairs % GROUP, 0);
    let (m, k) = (a.rows, a.cols);
    let blocks = m.div_ceil(ROWS);
    let mut out = vec![0u32; blocks * pairs * ROWS];
    for (ip, block) in out.chunks_exact_mut(pairs * ROWS).enumerate() {
        for r in 0..ROWS.min(m - ip * ROWS) {
            let row = &a.data[(ip * ROWS + r) * a.row_stride..];
            for q in 0..k.div_ceil(2) {
                let (p0, p1) = (2 * q, 2 * q + 1);
                let mut v = bf16_bits(row[p0 * a.col_stride]);
                if p1 < k {
                    v |= bf16_bits(row[p1 * a.col_stride]) << 16;
                }
                block[(q / GROUP) * ROWS * GROUP + r * GROUP + q % GROUP] = v;
            }
        }
    }
    out
}
