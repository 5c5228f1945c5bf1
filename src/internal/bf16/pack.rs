//! Packing: float32 operands rounded to bfloat16 and laid out the way the instructions read them.
//!
//! Both instructions multiply PAIRS along k: a 32-bit lane holds two bfloat16s, element 2q in
//! its low half and 2q+1 in its high half, and the instruction adds both products into one
//! float32 lane. So every packed buffer is made of such pairs (`u32`), k padded with zeros to an
//! even length (and to the tile's 32 for AMX), and the rows/columns past the matrix's edge are
//! zeros too, so the microkernels never test an edge while they multiply.
//!
//! The packed buffers are the caller's (kept from call to call in a thread's [`Scratch`]), so a
//! call neither allocates nor zeroes whole buffers: each panel's writer zeroes only its own
//! padding.
//!
//! Packing runs once per call (weights change every step): O(mk + kn) against O(mkn) products,
//! but at bfloat16 speed the products are fast enough that a slow packing would show, so each
//! source is read in its memory order (row by row when its rows are contiguous, column by
//! column when it is a transposed view), the contiguous cases are vectorised (`multiversion`),
//! and the panels are packed in parallel on the pool.
//!
//! The rounding is [`super::round_bf16`]'s (nearest, ties to even), done here in software, so the
//! packed values are exactly the emulation's operands (`VCVTNE2PS2BF16` would also flush
//! denormal inputs to zero, which the emulation does not).

use crate::matmul::Mat;
use multiversion::multiversion;
use rayon::prelude::*;

/// The bfloat16 of `x` (nearest, ties to even) as its 16 bits: [`super::round_bf16`] without a
/// branch, so that loops of it vectorise.
#[inline(always)]
fn bf16_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    let quiet_nan = (bits >> 16) | 0x40;
    if x.is_nan() {
        quiet_nan
    } else {
        rounded
    }
}

/// The pair (x, y): x's bfloat16 in the low half, y's in the high half.
#[inline(always)]
fn pair(x: f32, y: f32) -> u32 {
    bf16_bits(x) | bf16_bits(y) << 16
}

/// Number of k pairs once k is padded to a multiple of `2 * pair_align`.
pub(super) fn padded_pairs(k: usize, pair_align: usize) -> usize {
    k.div_ceil(2).div_ceil(pair_align) * pair_align
}

/// The two packed operands' buffers of one thread, kept from call to call so that a product
/// does not allocate and zero them again (the conv kernel runs one product per sample).
#[derive(Default)]
pub(super) struct Scratch {
    pub a: Vec<u32>,
    pub b: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// Runs `f` with this thread's [`Scratch`]. The buffers are taken out for the call and put back
/// after it, so a nested call on the same thread (rayon may run another task while this one
/// waits) finds empty buffers and allocates its own instead of sharing these.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.with(|c| c.take());
    let r = f(&mut s);
    SCRATCH.with(|c| c.set(s));
    r
}

/// The first `len` values of `v`, grown if it is shorter. The contents are whatever an earlier
/// call left: the packers write every value, data or padding.
fn grown(v: &mut Vec<u32>, len: usize) -> &mut [u32] {
    if v.len() < len {
        v.resize(len, 0);
    }
    &mut v[..len]
}

/// Below this many packed pairs, packing stays on the calling thread.
const PARALLEL_PAIRS: usize = 1 << 16;

/// Runs `pack(index, chunk)` over `out`'s chunks of `len`, on the pool when `on_pool` and `out`
/// is large enough to pay for it.
fn over_chunks(
    out: &mut [u32],
    len: usize,
    on_pool: bool,
    pack: impl Fn(usize, &mut [u32]) + Sync,
) {
    if on_pool && out.len() >= PARALLEL_PAIRS && crate::runtime::threads() > 1 {
        out.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| pack(i, c));
    } else {
        out.chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| pack(i, c));
    }
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
///
/// Written into the first values of `out` (grown if needed), which are returned.
pub(super) fn pack_panels<'o>(
    m: Mat,
    width: usize,
    pairs: usize,
    on_pool: bool,
    out: &'o mut Vec<u32>,
) -> &'o [u32] {
    let n = m.cols;
    let out = grown(out, n.div_ceil(width) * pairs * width);
    over_chunks(out, pairs * width, on_pool, |jp, panel| {
        let j0 = jp * width;
        let cols = width.min(n - j0);
        pack_panel(m, j0, cols, panel, width);
        zero_panel_padding(panel, m.rows.div_ceil(2), cols, width);
    });
    out
}

/// Zeroes what [`pack_panel`] leaves: the columns past `cols` of the first `live` pairs, and
/// every pair after them.
fn zero_panel_padding(panel: &mut [u32], live: usize, cols: usize, width: usize) {
    if cols < width {
        for row in panel.chunks_exact_mut(width).take(live) {
            row[cols..].fill(0);
        }
    }
    panel[live * width..].fill(0);
}

/// One panel of [`pack_panels`]: columns `j0..j0 + cols` of `m` into `panel` (pairs x width).
#[multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn pack_panel(m: Mat, j0: usize, cols: usize, panel: &mut [u32], width: usize) {
    let (k, rs, cs) = (m.rows, m.row_stride, m.col_stride);
    if cs <= rs {
        // rows are the short stride: row 2q against row 2q+1, `cols` values at a time
        for (q, out) in panel
            .chunks_exact_mut(width)
            .take(k.div_ceil(2))
            .enumerate()
        {
            let lo = &m.data[2 * q * rs + j0 * cs..];
            let hi = (2 * q + 1 < k).then(|| &m.data[(2 * q + 1) * rs + j0 * cs..]);
            let out = &mut out[..cols];
            match (cs, hi) {
                (1, Some(hi)) => out
                    .iter_mut()
                    .zip(&lo[..cols])
                    .zip(&hi[..cols])
                    .for_each(|((o, &x), &y)| *o = pair(x, y)),
                (_, Some(hi)) => {
                    for (c, o) in out.iter_mut().enumerate() {
                        *o = pair(lo[c * cs], hi[c * cs]);
                    }
                }
                (_, None) => {
                    for (c, o) in out.iter_mut().enumerate() {
                        *o = pair(lo[c * cs], 0.0);
                    }
                }
            }
        }
    } else {
        // a transposed view: each column's run along k is the short stride; its pairs are made
        // in a row (vectorised when the run is contiguous), then stored down the panel
        // (the run is made RUN pairs at a time, on the stack: no allocation per panel)
        const RUN: usize = 256;
        let mut run = [0u32; RUN];
        for c in 0..cols {
            let col = &m.data[(j0 + c) * cs..];
            for q0 in (0..k.div_ceil(2)).step_by(RUN) {
                let kk = (k - 2 * q0).min(2 * RUN);
                let run = &mut run[..kk.div_ceil(2)];
                pairs_of_run(&col[2 * q0 * rs..], kk, rs, run);
                panel[q0 * width + c..]
                    .iter_mut()
                    .step_by(width)
                    .zip(run.iter())
                    .for_each(|(o, &v)| *o = v);
            }
        }
    }
}

/// `out[q] = pair(src[2q * stride], src[(2q + 1) * stride])` for the k values of a run (the last
/// pair's high half zero when k is odd).
#[inline(always)]
fn pairs_of_run(src: &[f32], k: usize, stride: usize, out: &mut [u32]) {
    if stride == 1 {
        out.iter_mut()
            .zip(src[..k - k % 2].chunks_exact(2))
            .for_each(|(o, xy)| *o = pair(xy[0], xy[1]));
    } else {
        for (q, o) in out.iter_mut().enumerate().take(k / 2) {
            *o = pair(src[2 * q * stride], src[(2 * q + 1) * stride]);
        }
    }
    if k % 2 == 1 {
        out[k / 2] = pair(src[(k - 1) * stride], 0.0);
    }
}

/// Rows of an AMX block of A (two tiles) and pairs per tile row.
const TILE_ROWS: usize = 32;
const GROUP: usize = 16;

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
///
/// Written into the first values of `out` (grown if needed), which are returned.
pub(super) fn pack_a_tiles<'o>(
    a: Mat,
    pairs: usize,
    on_pool: bool,
    out: &'o mut Vec<u32>,
) -> &'o [u32] {
    debug_assert_eq!(pairs % GROUP, 0);
    let m = a.rows;
    let out = grown(out, m.div_ceil(TILE_ROWS) * pairs * TILE_ROWS);
    over_chunks(out, pairs * TILE_ROWS, on_pool, |ip, block| {
        let i0 = ip * TILE_ROWS;
        let rows = TILE_ROWS.min(m - i0);
        pack_a_block(a, i0, rows, block);
        zero_a_block_padding(block, a.cols.div_ceil(2), rows);
    });
    out
}

/// Zeroes what [`pack_a_block`] leaves: in each group's tiles, the pairs past the first `live`
/// of the first `rows` rows, and the whole of the rows after them.
fn zero_a_block_padding(block: &mut [u32], live: usize, rows: usize) {
    for (g, tiles) in block.chunks_exact_mut(TILE_ROWS * GROUP).enumerate() {
        let here = live.saturating_sub(g * GROUP).min(GROUP);
        if here == GROUP && rows == TILE_ROWS {
            continue;
        }
        for (r, row) in tiles.chunks_exact_mut(GROUP).enumerate() {
            row[if r < rows { here } else { 0 }..].fill(0);
        }
    }
}

/// One block of [`pack_a_tiles`]: rows `i0..i0 + rows` of `a`.
#[multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn pack_a_block(a: Mat, i0: usize, rows: usize, block: &mut [u32]) {
    let (k, rs, cs) = (a.cols, a.row_stride, a.col_stride);
    // where pair q of row r goes
    let at = |r: usize, q: usize| (q / GROUP) * TILE_ROWS * GROUP + r * GROUP + q % GROUP;
    if cs <= rs {
        // each row read along k
        for r in 0..rows {
            let row = &a.data[(i0 + r) * rs..];
            if cs == 1 {
                // 16 pairs (32 values) of the row fill one tile row
                for (g, src) in row[..k - k % 2].chunks(2 * GROUP).enumerate() {
                    let dst = &mut block[at(r, g * GROUP)..][..src.len() / 2];
                    dst.iter_mut()
                        .zip(src.chunks_exact(2))
                        .for_each(|(o, xy)| *o = pair(xy[0], xy[1]));
                }
            } else {
                for q in 0..k / 2 {
                    block[at(r, q)] = pair(row[2 * q * cs], row[(2 * q + 1) * cs]);
                }
            }
            if k % 2 == 1 {
                block[at(r, k / 2)] = pair(row[(k - 1) * cs], 0.0);
            }
        }
    } else {
        // a transposed view: each k's run along the rows is the short stride; a pair of runs
        // (k = 2q and 2q + 1) gives pair q of every row (vectorised when contiguous), stored
        // down the tile's column q
        let base = &a.data[i0 * rs..];
        let mut run = [0u32; TILE_ROWS];
        let run = &mut run[..rows];
        for q in 0..k.div_ceil(2) {
            let lo = &base[2 * q * cs..];
            match (2 * q + 1 < k, rs) {
                (true, 1) => {
                    let hi = &base[(2 * q + 1) * cs..];
                    run.iter_mut()
                        .zip(&lo[..rows])
                        .zip(&hi[..rows])
                        .for_each(|((o, &x), &y)| *o = pair(x, y));
                }
                (true, _) => {
                    let hi = &base[(2 * q + 1) * cs..];
                    for (r, o) in run.iter_mut().enumerate() {
                        *o = pair(lo[r * rs], hi[r * rs]);
                    }
                }
                (false, _) => {
                    for (r, o) in run.iter_mut().enumerate() {
                        *o = pair(lo[r * rs], 0.0);
                    }
                }
            }
            block[at(0, q)..]
                .iter_mut()
                .step_by(GROUP)
                .zip(run.iter())
                .for_each(|(o, &v)| *o = v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_branchless_rounding_is_round_bf16() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
            f32::INFINITY,
        ];
        let mut x = 0x1234_5678u32;
        let values = (0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            f32::from_bits(x)
        });
        for v in values.chain(specials) {
            let want = super::super::round_bf16(v).to_bits() >> 16;
            assert_eq!(bf16_bits(v), want, "{v:e} ({:#x})", v.to_bits());
        }
        assert!(f32::from_bits(bf16_bits(f32::NAN) << 16).is_nan());
    }
}
