//! The AMX kernel: `TDPBF16PS` on 2 x 2 blocks of 16 x 16 float32 tiles (1 x 2, 2 x 1 or 1 x 1 at
//! the matrix's bottom and right edges), through `asm!` (stable Rust has no AMX intrinsics).
//!
//! AMX has eight tile registers `tmm0..tmm7` of up to 16 rows x 64 bytes, shaped by a 64-byte
//! configuration (`LDTILECFG`, palette 1). Here every tile is 16 rows x 64 bytes:
//!
//! ```text
//! tmm0..tmm3  C: 16 x 16 float32         (C00 C01 / C10 C11: a 32 x 32 block of the output)
//! tmm4, tmm5  A: 16 rows x 16 pairs      (rows i..i+16 and i+16..i+32, 32 k)
//! tmm6, tmm7  B: 16 pairs x 16 columns   (columns j..j+16 and j+16..j+32, the same 32 k)
//! ```
//!
//! `TDPBF16PS c, a, b` does, for every r < 16, c < 16, over the 16 pairs q:
//!
//! ```text
//! c[r][c] += a[r][q].lo * b[q][c].lo + a[r][q].hi * b[q][c].hi
//! ```
//!
//! i.e. a 16 x 32 by 32 x 16 product (8192 multiply-adds) per instruction. A is packed row by
//! row (`pack_a_tiles`), B as pair panels 32 columns wide (`pack_panels`, B0 and B1 are the two
//! halves of each 128-byte row); k is padded to 32 and m, n to 32 with zeros.
//!
//! The reference is [`super::matmul_emulated`]: the same exact products, summed in another
//! order. Like `VDPBF16PS`, the instruction treats denormal inputs as zero and flushes
//! denormal results.
//!
//! Whole output tiles go straight between dst and the accumulator tiles (`TILELOADD`/
//! `TILESTORED` at dst's row stride); only the tiles at the matrix's edge pass through a buffer.
//!
//! Each task loads the configuration on its own thread (tile state is per thread) and releases
//! the tiles when done, so a thread that runs other work keeps no 8 KiB tile state.

use super::blocks::{block_shape, for_each_block, Block, Dst};
use super::pack::{pack_a_tiles, pack_panels, padded_pairs, with_scratch};
use crate::matmul::Mat;
use std::arch::asm;

/// Rows and columns of the output one microkernel call computes (2 x 2 tiles of 16 x 16).
const MR: usize = 32;
const NR: usize = 32;
/// Pairs of k per tile (32 bfloat16 = 64 bytes a row).
const GROUP: usize = 16;
/// Pairs of k per pass over a block. The accumulators stay in the tiles for a whole pass, so
/// the longer the pass the fewer times each 32 x 32 block of dst is loaded, stored and the
/// tile pipeline drained: measured on Emerald Rapids (`benches/bf16_matmul`, one thread),
/// 1024 pairs (every product of the models in one pass) against 256 gave 643 against 495
/// GFLOP/s at 2048^3 and 690 against 603 for 1024^3, although A's and B's micro-panels
/// (128 KiB each) then come from L2, not L1. 512 pairs was as fast as 1024.
const KC: usize = 1024;
/// The largest block one task computes (rows, columns).
const BLOCK: (usize, usize) = (128, 256);

/// Palette 1, every tile 16 rows x 64 bytes (the layout `LDTILECFG` reads).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut t = 0;
    while t < 8 {
        colsb[t] = 64;
        rows[t] = 16;
        t += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

/// `dst (m, n) = a (m, k) * b (k, n)` (`+=` when `accumulate`), bfloat16 operands, on the pool
/// (`on_pool`) or the calling thread. The caller checked the shapes, views and that k > 0, and
/// that this process may run AMX.
pub(super) fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, on_pool: bool) {
    with_scratch(|s| {
        let pa = pack_lhs(a, on_pool, &mut s.a);
        matmul_packed(dst, pa, a.rows, b, accumulate, on_pool, &mut s.b)
    })
}

/// A (m, k) packed for [`matmul_packed`] into `out` (grown if needed); the packed values are
/// returned: `pa[ip][g][r][qq]` is row (ip*32 + r)'s pair (16g + qq).
pub(super) fn pack_lhs<'o>(a: Mat, on_pool: bool, out: &'o mut Vec<u32>) -> &'o [u32] {
    pack_a_tiles(a, padded_pairs(a.cols, GROUP), on_pool, out)
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
    let pairs = padded_pairs(k, GROUP);
    assert_eq!(
        pa.len(),
        m.div_ceil(MR) * pairs * MR,
        "amx: packed A has the wrong size"
    );
    // pb[jp][q][c]: column (jp*32 + c)'s pair q
    let pb = pack_panels(b, NR, pairs, on_pool, pb_buf);
    let threads = if on_pool {
        crate::runtime::threads()
    } else {
        1
    };
    let shape = block_shape((m, n), (MR, NR), BLOCK, threads);
    for_each_block(dst, (m, n), shape, on_pool, |d, blk| {
        // SAFETY: the caller checked that this process may use the tiles; the configuration
        // is 64 aligned bytes of palette 1
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        block(d, blk, pa, pb, pairs, accumulate);
        // SAFETY: releases this thread's tile state (loaded above)
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    });
}

/// One block of the output, K in slices of `KC` pairs; every slice after the first adds.
fn block(d: Dst, blk: Block, pa: &[u32], pb: &[u32], pairs: usize, accumulate: bool) {
    // where edge tiles are stored before their live part is copied to dst; left uninitialised
    // (a block of a small product is not much larger than this buffer, so zeroing it showed):
    // only values a `tilestored` just wrote are read
    let mut edge = std::mem::MaybeUninit::<Tile32>::uninit();
    for q0 in (0..pairs).step_by(KC) {
        let kq = KC.min(pairs - q0);
        let add = accumulate || q0 > 0;
        for j in (blk.j0..blk.j1).step_by(NR) {
            let bp = &pb[(j / NR) * pairs * NR + q0 * NR..][..kq * NR];
            for i in (blk.i0..blk.i1).step_by(MR) {
                let ap = &pa[(i / MR) * pairs * MR + q0 * MR..][..kq * MR];
                let (rows, cols) = (MR.min(blk.i1 - i), NR.min(blk.j1 - j));
                // SAFETY: the tiles are configured (see `matmul`); ap and bp hold kq pairs;
                // (i..i + rows, j..j + cols) lies in this task's block of dst
                unsafe { micro(ap, bp, kq / GROUP, d, (i, j), (rows, cols), add, &mut edge) };
            }
        }
    }
}

/// The accumulator tiles that hold output for a 32 x 32 block with more than 16 rows
/// (`two_rows`) and more than 16 columns (`two_cols`) live; tile t = 2 ti + tj covers rows
/// 16 ti.. and columns 16 tj.. of the block.
fn computed_tiles(two_rows: bool, two_cols: bool) -> &'static [usize] {
    match (two_rows, two_cols) {
        (true, true) => &[0, 1, 2, 3],
        (false, true) => &[0, 1],
        (true, false) => &[0, 2],
        (false, false) => &[0],
    }
}

/// A 32 x 32 float32 block, 64-byte aligned for `TILESTORED`.
#[repr(C, align(64))]
struct Tile32([f32; MR * NR]);

/// The output's `rows x cols` block at (i, j) `=` (or `+=` when `add`) `a . b` over `groups`
/// groups of 16 pairs, on the tiles that hold output: all four when the block has more than 16
/// rows and columns, else only the top row of tiles (`rows <= 16`) and/or the left column
/// (`cols <= 16`), so an edge block does no work for its padding.
///
/// A tile wholly inside the output is loaded from dst (`add`) or zeroed, and stored back to dst
/// at dst's row stride: no copy. A tile at the matrix's edge is zeroed, stored to `edge`, and
/// its live part added or copied to dst. So a whole tile sums `dst + products`, an edge tile
/// `dst + (products)`: the same exact terms, in orders both within float32 summation error of
/// the emulation. (Loading dst into the accumulator, `TDPBF16PS` may flush a denormal dst value
/// to zero: a change below 2^-126.)
///
/// # Safety
/// The tile configuration `CONFIG` must be loaded on this thread; (i..i + rows, j..j + cols)
/// must lie in dst, written by no other thread meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn micro(
    a: &[u32],
    b: &[u32],
    groups: usize,
    d: Dst,
    (i, j): (usize, usize),
    (rows, cols): (usize, usize),
    add: bool,
    edge: &mut std::mem::MaybeUninit<Tile32>,
) {
    let (two_rows, two_cols) = (rows > 16, cols > 16);
    let tiles = computed_tiles(two_rows, two_cols);
    let live = |t: usize| {
        let (ti, tj) = (t / 2, t % 2);
        (
            rows.saturating_sub(16 * ti).min(16),
            cols.saturating_sub(16 * tj).min(16),
        )
    };
    let whole = |t: usize| live(t) == (16, 16);
    let at = |t: usize| d.at(i + 16 * (t / 2), j + 16 * (t % 2));
    let ld = d.ld * 4;
    // SAFETY (every block below): the tiles are configured; dst loads and stores touch a whole
    // tile's 16 rows of 16 floats, inside the block (the caller's promise); `edge` stores stay
    // in `edge`; `products` checks a and b
    unsafe {
        for &t in tiles {
            if add && whole(t) {
                tile_load(t, at(t), ld);
            } else {
                tile_zero(t);
            }
        }
        products(a, b, groups, two_rows, two_cols);
        for &t in tiles {
            if whole(t) {
                tile_store(t, at(t), ld);
                continue;
            }
            let e = edge
                .as_mut_ptr()
                .cast::<f32>()
                .add(16 * (t / 2) * NR + 16 * (t % 2));
            tile_store(t, e, NR * 4);
            let (lr, lc) = live(t);
            for r in 0..lr {
                let src = std::slice::from_raw_parts(e.add(r * NR), lc);
                let out = std::slice::from_raw_parts_mut(at(t).add(r * d.ld), lc);
                if add {
                    out.iter_mut().zip(src).for_each(|(o, s)| *o += s);
                } else {
                    out.iter_mut().zip(src).for_each(|(o, &s)| *o = s);
                }
            }
        }
    }
}

/// The accumulators `+= a . b` over `groups` groups of 16 pairs: tmm0..tmm3 (the ones
/// [`computed_tiles`] names) hold a 32 x 32 block's sums.
///
/// ```text
/// a: (groups, 32, 16) pairs   (two A tiles per group: rows 0..16, rows 16..32)
/// b: (groups * 16, 32) pairs  (B0 = columns 0..16, B1 = columns 16..32 of each row)
/// ```
///
/// Reference, per element: `for q in 0..16 groups { s += a[r][q].lo * b[q][c].lo + a[r][q].hi * b[q][c].hi }`.
///
/// # Safety
/// The tile configuration `CONFIG` must be loaded on this thread.
unsafe fn products(a: &[u32], b: &[u32], groups: usize, two_rows: bool, two_cols: bool) {
    assert!(a.len() >= groups * GROUP * MR && b.len() >= groups * GROUP * NR);
    // SAFETY: the tiles are configured; each A or B load reads 16 rows of 64 bytes inside `a`
    // or `b` (checked above)
    unsafe {
        for g in 0..groups {
            let ag = a.as_ptr().add(g * GROUP * MR);
            let bg = b.as_ptr().add(g * GROUP * NR);
            let (a0, a1, b0, b1) = (ag, ag.add(GROUP * 16), bg, bg.add(16));
            let (sa, sb) = (GROUP * 4, NR * 4);
            match (two_rows, two_cols) {
                (true, true) => asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0, b1 = in(reg) b1,
                    sa = in(reg) sa, sb = in(reg) sb,
                    options(nostack, readonly)
                ),
                (false, true) => asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    a0 = in(reg) a0, b0 = in(reg) b0, b1 = in(reg) b1,
                    sa = in(reg) sa, sb = in(reg) sb,
                    options(nostack, readonly)
                ),
                (true, false) => asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    a0 = in(reg) a0, a1 = in(reg) a1, b0 = in(reg) b0,
                    sa = in(reg) sa, sb = in(reg) sb,
                    options(nostack, readonly)
                ),
                (false, false) => asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    a0 = in(reg) a0, b0 = in(reg) b0,
                    sa = in(reg) sa, sb = in(reg) sb,
                    options(nostack, readonly)
                ),
            }
        }
    }
}

/// `tileloadd tmm{t}`: 16 rows of 64 bytes from `p`, `stride` bytes apart.
///
/// # Safety
/// Tiles configured; the 16 rows are readable.
unsafe fn tile_load(t: usize, p: *const f32, stride: usize) {
    // SAFETY: the caller's promise
    unsafe {
        match t {
            0 => {
                asm!("tileloadd tmm0, [{p} + {s}*1]", p = in(reg) p, s = in(reg) stride, options(nostack, readonly))
            }
            1 => {
                asm!("tileloadd tmm1, [{p} + {s}*1]", p = in(reg) p, s = in(reg) stride, options(nostack, readonly))
            }
            2 => {
                asm!("tileloadd tmm2, [{p} + {s}*1]", p = in(reg) p, s = in(reg) stride, options(nostack, readonly))
            }
            _ => {
                asm!("tileloadd tmm3, [{p} + {s}*1]", p = in(reg) p, s = in(reg) stride, options(nostack, readonly))
            }
        }
    }
}

/// `tilestored`: tile `tmm{t}`'s 16 rows of 64 bytes to `p`, `stride` bytes apart.
///
/// # Safety
/// Tiles configured; the 16 rows are writable and written by no other thread meanwhile.
unsafe fn tile_store(t: usize, p: *mut f32, stride: usize) {
    // SAFETY: the caller's promise
    unsafe {
        match t {
            0 => {
                asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) p, s = in(reg) stride, options(nostack))
            }
            1 => {
                asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) p, s = in(reg) stride, options(nostack))
            }
            2 => {
                asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) p, s = in(reg) stride, options(nostack))
            }
            _ => {
                asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) p, s = in(reg) stride, options(nostack))
            }
        }
    }
}

/// `tilezero tmm{t}`.
///
/// # Safety
/// Tiles configured.
unsafe fn tile_zero(t: usize) {
    // SAFETY: the caller's promise
    unsafe {
        match t {
            0 => asm!("tilezero tmm0", options(nostack, nomem)),
            1 => asm!("tilezero tmm1", options(nostack, nomem)),
            2 => asm!("tilezero tmm2", options(nostack, nomem)),
            _ => asm!("tilezero tmm3", options(nostack, nomem)),
        }
    }
}
