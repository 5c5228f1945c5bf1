//! The sparse Linear's weight gradient, from x by columns (CSC): for W (O, I) by bands of
//! output rows, or for W stored transposed by rows of W^T, two columns of x at a time.

use super::{register_block, sparse_combination, Compressed, Start, SMALL_BLOCK, TINY_BLOCK};
use multiversion::multiversion;
use rayon::prelude::*;

/// Scratch for the weight-gradient kernels, one piece per parallel task, kept by the caller
/// from step to step (so that a step allocates nothing). Its contents mean nothing between
/// calls.
#[derive(Default)]
pub struct Scratch {
    /// `backward_weight`: per band, the gradients of K weight columns (K * band width).
    blocks: Vec<f32>,
    /// `backward_weight_t`: per task, the union of two columns' nonzeros (at most 2 N).
    unions: Vec<(u32, f32, f32)>,
}

/// The first `len` values of `v`, grown if it is shorter (contents left as they are).
fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Weight columns whose gradients `backward_band` gathers at a time.
const K: usize = 16;

/// dw rows [o0, o0 + band.len() / i) of the weight gradient: the gradients of K weight columns
/// at a time for this band of outputs, gathered in `block` (K * width values, scratch), then
/// added to dw in one pass.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_band(
    band: &mut [f32],
    block: &mut [f32],
    o0: usize,
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    i: usize,
) {
    const B: usize = register_block(multiversion::target::selected_target!());
    let width = band.len() / i;
    let block = &mut block[..K * width];
    for k0 in (0..i).step_by(K) {
        let k1 = (k0 + K).min(i);
        for k in k0..k1 {
            sparse_combination::<B>(
                &mut block[(k - k0) * width..(k - k0 + 1) * width],
                Start::Zero,
                csc.line(k),
                dy,
                o,
                o0,
            );
        }
        for (oo, row) in band.chunks_exact_mut(i).enumerate() {
            for k in k0..k1 {
                row[k] += block[(k - k0) * width + oo];
            }
        }
    }
}

/// The weight gradient, accumulated into dw (O, I). From y[n, o] = sum_k x[n, k] w[o, k]:
///   dw[o, k] += sum_n dy[n, o] x[n, k] = sum over the nonzeros (n, v) of column k of x of v * dy[n, o]
/// Rows of dw are split across threads; every sum runs over a column's nonzeros in row order,
/// so the result does not depend on the split. `scratch`: kept by the caller (see `Scratch`).
pub fn backward_weight(
    dw: &mut [f32],
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    i: usize,
    scratch: &mut Scratch,
) {
    let parts = crate::runtime::threads().max(1);
    // bands of whole register blocks where possible
    let per = (o.div_ceil(parts).div_ceil(16) * 16).max(1);
    let blocks = grow(&mut scratch.blocks, o.div_ceil(per) * K * per);
    dw.par_chunks_mut(per * i)
        .zip(blocks.par_chunks_mut(K * per))
        .enumerate()
        .for_each(|(p, (band, block))| {
            backward_band(band, block, p * per, dy, csc, o, i);
        });
}

/// The weight gradient for a weight stored transposed, into dwt (I, O), row k of which is
/// column k of dw:
///   dwt[k, :] (+)= sum over the nonzeros (n, v) of column k of x of v * dy[n, :]
/// Each row is one sparse combination of rows of dy, written contiguously: no transpose and
/// no scattered adds. `overwrite`: dwt holds no gradient yet, so every row is written, not
/// added to (rows of columns without nonzeros become zeros). Rows are split across threads;
/// each sum runs over its column's nonzeros in row order, so the split changes nothing.
/// `scratch`: kept by the caller (see `Scratch`).
pub fn backward_weight_t(
    dwt: &mut [f32],
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    overwrite: bool,
    scratch: &mut Scratch,
) {
    const ROWS: usize = 16;
    // a column has at most one nonzero per row of x (N = dy's rows), so a union at most 2 N
    let union_len = (2 * (dy.len() / o.max(1))).max(1);
    let tasks = (dwt.len() / o.max(1)).div_ceil(ROWS);
    let unions = grow(&mut scratch.unions, tasks * union_len);
    dwt.par_chunks_mut(o * ROWS)
        .zip(unions.par_chunks_mut(union_len))
        .enumerate()
        .for_each(|(chunk, (rows, u))| {
            backward_rows_t(rows, chunk * ROWS, dy, csc, o, overwrite, u)
        });
}

/// Rows [first, first + rows.len() / o) of `backward_weight_t`, two rows of dwt (two adjacent pixels) at a time. Adjacent pixels of
/// MNIST are mostly nonzero in the same images: over a batch the union of two columns' nonzeros
/// is 58% of their sum, so reading each row of dy once for both cuts the reads by 42% (this
/// kernel is bound by them) for 17% more multiplies. (A function of its own so that it is
/// compiled for AVX2 / AVX-512: a closure would not inherit the target features.)
/// `union`: scratch for the merged lines (2 N entries).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_rows_t(
    rows: &mut [f32],
    first: usize,
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    overwrite: bool,
    union: &mut [(u32, f32, f32)],
) {
    const B: usize = register_block(multiversion::target::selected_target!());
    const PAIR_B: usize = pair_block(multiversion::target::selected_target!());
    let start = if overwrite {
        Start::Zero
    } else {
        Start::AddToOut
    };
    let last = first + rows.len() / o - 1;
    let mut pairs = rows.chunks_exact_mut(2 * o);
    for (p, pair) in pairs.by_ref().enumerate() {
        let k = first + 2 * p;
        let len = merge_lines(csc.line(k), csc.line(k + 1), union);
        let (a, b) = pair.split_at_mut(o);
        pair_combination::<PAIR_B>(a, b, start, &union[..len], dy, o);
    }
    let rest = pairs.into_remainder();
    if !rest.is_empty() {
        sparse_combination::<B>(rest, start, csc.line(last), dy, o, 0);
    }
}

/// The union of two lines with ascending indices: (index, value in a, value in b), 0 where a
/// line has none, ascending, into the start of `out` (long enough for both lines); returns
/// its length.
#[inline(always)]
fn merge_lines(
    a: impl Iterator<Item = (usize, f32)>,
    b: impl Iterator<Item = (usize, f32)>,
    out: &mut [(u32, f32, f32)],
) -> usize {
    let mut len = 0;
    let (mut a, mut b) = (a.peekable(), b.peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&(i, va)), Some(&(j, vb))) => {
                if i == j {
                    a.next();
                    b.next();
                    (i, va, vb)
                } else if i < j {
                    a.next();
                    (i, va, 0.0)
                } else {
                    b.next();
                    (j, 0.0, vb)
                }
            }
            (Some(&(i, va)), None) => {
                a.next();
                (i, va, 0.0)
            }
            (None, Some(&(j, vb))) => {
                b.next();
                (j, 0.0, vb)
            }
            (None, None) => break,
        };
        out[len] = (next.0 as u32, next.1, next.2);
        len += 1;
    }
    len
}

/// Two sparse combinations of the rows of `mat` (stride = out_a.len()) that read each row once:
/// out_a[j] = start + sum over the union (n, va, vb) of va * mat[n, j], out_b likewise with vb.
/// The zeros a line has where only the other is nonzero add exact zeros (for finite values),
/// so each result is `sparse_combination`'s over its own line, to the bit. `start`: Zero or
/// AddToOut (a bias has no place in a gradient).
#[inline(always)]
fn pair_combination<const B: usize>(
    out_a: &mut [f32],
    out_b: &mut [f32],
    start: Start,
    union: &[(u32, f32, f32)],
    mat: &[f32],
    stride: usize,
) {
    debug_assert!(
        !matches!(start, Start::Bias(_)),
        "pair_combination takes no bias"
    );
    let width = out_a.len();
    // a width below B (784-100, say) gets blocks of SMALL_BLOCK, not one column at a time
    let j0 = pair_blocks::<B>(out_a, out_b, 0, start, union, mat, stride);
    let j0 = pair_blocks::<SMALL_BLOCK>(out_a, out_b, j0, start, union, mat, stride);
    let j0 = pair_blocks::<TINY_BLOCK>(out_a, out_b, j0, start, union, mat, stride);
    for j in j0..width {
        let (mut sa, mut sb) = (0.0f32, 0.0f32);
        for &(n, va, vb) in union {
            let m = mat[n as usize * stride + j];
            sa += va * m;
            sb += vb * m;
        }
        start.finish(&mut out_a[j..j + 1], &[sa]);
        start.finish(&mut out_b[j..j + 1], &[sb]);
    }
}

/// Outputs per register block of `pair_combination` compiled for `target`, each with two sums
/// (one per line): 128 with AVX-512 (16 of its 32 registers), 48 with AVX2 (12 of its 16; at
/// 128, 64 registers' worth of sums lived on the stack, `perf annotate`, AMD Zen 3; 48 against
/// 32: `SHAPE=1024,1024 cargo bench --bench kernels`, dW^T 8.7 against 10.3 ms, median of 4
/// alternating runs, and the same at 256 x 256). 16 elsewhere. The block changes no bit (each
/// output is summed in the union's order).
const fn pair_block(target: multiversion::target::Target) -> usize {
    if target.supports_feature_str("avx512f") {
        128
    } else if target.supports_feature_str("avx") {
        48
    } else {
        16
    }
}

/// `pair_combination` from output `j0` in blocks of L while L outputs remain; returns where it
/// stopped.
#[inline(always)]
fn pair_blocks<const L: usize>(
    out_a: &mut [f32],
    out_b: &mut [f32],
    mut j0: usize,
    start: Start,
    union: &[(u32, f32, f32)],
    mat: &[f32],
    stride: usize,
) -> usize {
    while j0 + L <= out_a.len() {
        let (mut acc_a, mut acc_b) = ([0.0f32; L], [0.0f32; L]);
        for &(n, va, vb) in union {
            let at = n as usize * stride + j0;
            let row: &[f32; L] = mat[at..at + L].try_into().expect("a block");
            for j in 0..L {
                acc_a[j] += va * row[j];
                acc_b[j] += vb * row[j];
            }
        }
        start.finish(&mut out_a[j0..j0 + L], &acc_a);
        start.finish(&mut out_b[j0..j0 + L], &acc_b);
        j0 += L;
    }
    j0
}
