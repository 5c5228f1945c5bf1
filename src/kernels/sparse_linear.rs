//! Linear on a sparse input: y = x W^T + b where most of x is exactly zero (81% of MNIST's
//! pixels are). Only the nonzeros of x are touched, so the first layer of the seed's model,
//! 83% of its arithmetic, costs about a fifth of a dense product.
//!
//! x is held in CSR form (per row: column indices and values of its nonzeros); the weight is
//! used transposed, wt = W^T (I, O), so that each nonzero is one contiguous axpy of O values.

use multiversion::multiversion;
use rayon::prelude::*;

/// The CSR form of a row-major (N, I) matrix.
/// row_ptr: (N + 1), cols and vals: (nnz). Returns nnz.
/// Blocks of 16 zeros (most of an MNIST image's border) are skipped with one vectorised test;
/// the rest is compacted without branches.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn to_csr(x: &[f32], i: usize, row_ptr: &mut Vec<u32>, cols: &mut Vec<u32>, vals: &mut Vec<f32>) -> usize {
    const B: usize = 16;
    row_ptr.clear();
    row_ptr.push(0);
    // room for every value (+1 for the branchless write past the last nonzero)
    cols.resize(x.len() + 1, 0);
    vals.resize(x.len() + 1, 0.0);
    let mut nnz = 0;
    for row in x.chunks_exact(i) {
        for (b, block) in row.chunks(B).enumerate() {
            if block.iter().fold(0u32, |acc, v| acc | (v.to_bits() << 1)) == 0 {
                continue; // all sixteen are +0.0 or -0.0
            }
            for (j, &v) in block.iter().enumerate() {
                cols[nnz] = (b * B + j) as u32;
                vals[nnz] = v;
                nnz += (v != 0.0) as usize;
            }
        }
        row_ptr.push(nnz as u32);
    }
    cols.truncate(nnz);
    vals.truncate(nnz);
    nnz
}

/// The fraction of nonzero values.
pub fn density(x: &[f32]) -> f32 {
    let nnz = x.iter().filter(|&&v| v != 0.0).count();
    nnz as f32 / x.len().max(1) as f32
}

/// dst (C, R) = src (R, C)^T, or dst += src^T with `add`. Each task owns a band of T rows of
/// dst (T columns of src) and walks src in T x T tiles, so both sides stay in cache.
fn transpose_bands(dst: &mut [f32], src: &[f32], r: usize, c: usize, add: bool) {
    const T: usize = 32;
    assert!(dst.len() == r * c && src.len() == r * c, "transpose: sizes differ");
    dst.par_chunks_mut(T * r).enumerate().for_each(|(band, out)| {
        let c0 = band * T;
        let width = out.len() / r;
        for r0 in (0..r).step_by(T) {
            for rr in r0..(r0 + T).min(r) {
                let src_row = &src[rr * c + c0..rr * c + c0 + width];
                if add {
                    for (j, &v) in src_row.iter().enumerate() {
                        out[j * r + rr] += v;
                    }
                } else {
                    for (j, &v) in src_row.iter().enumerate() {
                        out[j * r + rr] = v;
                    }
                }
            }
        }
    });
}

/// dst (C, R) = src (R, C)^T
pub fn transpose(dst: &mut [f32], src: &[f32], r: usize, c: usize) {
    transpose_bands(dst, src, r, c, false)
}

/// dst (C, R) += src (R, C)^T
pub fn transpose_add(dst: &mut [f32], src: &[f32], r: usize, c: usize) {
    transpose_bands(dst, src, r, c, true)
}

/// y += a * x (the inner loop of both kernels; inlined into their multiversioned bodies)
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Rows [first, first + ys.len() / o) of the forward.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn forward_rows(ys: &mut [f32], first: usize, row_ptr: &[u32], cols: &[u32], vals: &[f32], wt: &[f32], b: Option<&[f32]>, o: usize) {
    for (r, yr) in ys.chunks_exact_mut(o).enumerate() {
        let n = first + r;
        match b {
            Some(b) => yr.copy_from_slice(b),
            None => yr.fill(0.0),
        }
        let (lo, hi) = (row_ptr[n] as usize, row_ptr[n + 1] as usize);
        for (&k, &v) in cols[lo..hi].iter().zip(&vals[lo..hi]) {
            let k = k as usize;
            axpy(yr, v, &wt[k * o..(k + 1) * o]);
        }
    }
}

/// Rows [k0, k0 + part.len() / o) of the transposed weight gradient.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_rows(part: &mut [f32], k0: usize, dy: &[f32], row_ptr: &[u32], cols: &[u32], vals: &[f32], o: usize) {
    let k1 = k0 + part.len() / o;
    for n in 0..row_ptr.len() - 1 {
        let (lo, hi) = (row_ptr[n] as usize, row_ptr[n + 1] as usize);
        let dyr = &dy[n * o..(n + 1) * o];
        for (&k, &v) in cols[lo..hi].iter().zip(&vals[lo..hi]) {
            let k = k as usize;
            if k >= k0 && k < k1 {
                let row = (k - k0) * o;
                axpy(&mut part[row..row + o], v, dyr);
            }
        }
    }
}

/// Forward. y (N, O), fully overwritten:
/// y[n, :] = b + sum over nonzeros (k, v) of row n of v * wt[k, :]
/// Rows are independent, so any split across threads gives the same result.
#[allow(clippy::too_many_arguments)]
pub fn forward(y: &mut [f32], row_ptr: &[u32], cols: &[u32], vals: &[f32], wt: &[f32], b: Option<&[f32]>, o: usize) {
    const ROWS: usize = 16;
    y.par_chunks_mut(o * ROWS).enumerate().for_each(|(chunk, ys)| {
        forward_rows(ys, chunk * ROWS, row_ptr, cols, vals, wt, b, o);
    });
}

/// The weight gradient, transposed. From y[n, o] = sum_k x[n, k] w[o, k]:
///   dw[o, k] = sum_n dy[n, o] x[n, k]   =>   dwt[k, :] = sum over nonzeros (n, k, v) of v * dy[n, :]
/// dwt (I, O) is overwritten. Rows of dwt are split across threads by k; each thread scans
/// every nonzero in the same order, so the sums do not depend on the split.
pub fn backward_weight_t(dwt: &mut [f32], dy: &[f32], row_ptr: &[u32], cols: &[u32], vals: &[f32], o: usize) {
    dwt.fill(0.0);
    let i = dwt.len() / o.max(1);
    let parts = crate::matmul::threads().max(1);
    let per = i.div_ceil(parts).max(1);
    dwt.par_chunks_mut(per * o).enumerate().for_each(|(p, part)| {
        backward_rows(part, p * per, dy, row_ptr, cols, vals, o);
    });
}
