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
//! Each task loads the configuration on its own thread (tile state is per thread) and releases
//! the tiles when done, so a thread that runs other work keeps no 8 KiB tile state.

use super::blocks::{block_shape, for_each_block, Block, Dst};
use super::pack::{pack_a_tiles, pack_panels, padded_pairs};
use crate::matmul::Mat;
use std::arch::asm;

/// Rows and columns of the output one microkernel call computes (2 x 2 tiles of 16 x 16).
const MR: usize = 32;
const NR: usize = 32;
/// Pairs of k per tile (32 bfloat16 = 64 bytes a row).
const GROUP: usize = 16;
/// Pairs of k per pass over a block: A's and B's micro-panels are 32 KiB each.
const KC: usize = 256;
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
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let pairs = padded_pairs(k, GROUP);
    // pa[ip][g][r][qq]: row (ip*32 + r)'s pair (16g + qq)
    let pa = pack_a_tiles(a, pairs, on_pool);
    // pb[jp][q][c]: column (jp*32 + c)'s pair q
    let pb = pack_panels(b, NR, pairs, on_pool);
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
        block(d, blk, &pa, &pb, pairs, accumulate);
        // SAFETY: releases this thread's tile state (loaded above)
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    });
}

/// One block of the output, K in slices of `KC` pairs; every slice after the first adds.
fn block(d: Dst, blk: Block, pa: &[u32], pb: &[u32], pairs: usize, accumulate: bool) {
    let mut c = Tile32([0.0; MR * NR]);
    for q0 in (0..pairs).step_by(KC) {
        let kq = KC.min(pairs - q0);
        let add = accumulate || q0 > 0;
        for j in (blk.j0..blk.j1).step_by(NR) {
            let bp = &pb[(j / NR) * pairs * NR + q0 * NR..][..kq * NR];
            for i in (blk.i0..blk.i1).step_by(MR) {
                let ap = &pa[(i / MR) * pairs * MR + q0 * MR..][..kq * MR];
                let (rows, cols) = (MR.min(blk.i1 - i), NR.min(blk.j1 - j));
                // SAFETY: the tiles are configured (see `matmul`); ap and bp hold kq pairs
                unsafe { micro(ap, bp, kq / GROUP, &mut c, rows, cols) };
                for r in 0..rows {
                    let src = &c.0[r * NR..r * NR + cols];
                    // SAFETY: (i + r, j..j + cols) lies in this task's block of dst
                    let out = unsafe { std::slice::from_raw_parts_mut(d.at(i + r, j), cols) };
                    if add {
                        out.iter_mut().zip(src).for_each(|(o, s)| *o += s);
                    } else {
                        out.copy_from_slice(src);
                    }
                }
            }
        }
    }
}

/// A 32 x 32 float32 block, 64-byte aligned for `TILESTORED`.
#[repr(C, align(64))]
struct Tile32([f32; MR * NR]);

/// `c = a . b` over `groups` groups of 16 pairs, on the tiles that hold output: all four when
/// the block has more than 16 rows and columns, else only the top row of tiles (`rows <= 16`)
/// and/or the left column (`cols <= 16`), so an edge block does no work for its padding.
///
/// ```text
/// a: (groups, 32, 16) pairs   (two A tiles per group: rows 0..16, rows 16..32)
/// b: (groups * 16, 32) pairs  (B0 = columns 0..16, B1 = columns 16..32 of each row)
/// c: 32 x 32 float32, row-major (only the tiles computed are written)
/// ```
///
/// Reference, per element: `for q in 0..16 groups { s += a[r][q].lo * b[q][c].lo + a[r][q].hi * b[q][c].hi }`.
///
/// # Safety
/// The tile configuration `CONFIG` must be loaded on this thread.
unsafe fn micro(a: &[u32], b: &[u32], groups: usize, c: &mut Tile32, rows: usize, cols: usize) {
    assert!(a.len() >= groups * GROUP * MR && b.len() >= groups * GROUP * NR);
    let (two_rows, two_cols) = (rows > 16, cols > 16);
    // SAFETY (every block below): the tiles are configured; each load reads 16 rows of 64
    // bytes inside `a` or `b` (checked above); each store writes 16 rows of 64 bytes inside `c`
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
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
        // the tiles not computed are still zero: storing them costs little and keeps one store
        let p = c.0.as_mut_ptr();
        asm!(
            "tilestored [{c00} + {s}*1], tmm0",
            "tilestored [{c01} + {s}*1], tmm1",
            "tilestored [{c10} + {s}*1], tmm2",
            "tilestored [{c11} + {s}*1], tmm3",
            c00 = in(reg) p,
            c01 = in(reg) p.add(16),
            c10 = in(reg) p.add(16 * NR),
            c11 = in(reg) p.add(16 * NR + 16),
            s = in(reg) NR * 4,
            options(nostack)
        );
    }
}
