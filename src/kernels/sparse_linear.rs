//! Linear on a sparse input: y = x W^T + b where most of x is exactly zero (81% of MNIST's
//! pixels are). Only the nonzeros of x are touched, so the first layer of the seed's model,
//! 83% of its arithmetic, costs a fraction of a dense product.
//!
//! Forward: x in CSR form (per row, the columns and values of its nonzeros) against the weight
//! transposed, wt = W^T (I, O), so that each nonzero scales one contiguous row of wt.
//! Backward: x in CSC form (per column k, the rows and values of its nonzeros), so that the
//! gradient of each weight column is one sum over the nonzeros of one column of x.
//! Both accumulate blocks of outputs in registers and store each block once.

use multiversion::multiversion;
use rayon::prelude::*;

/// Outputs accumulated in registers at a time: 8 AVX-512 registers, enough independent sums
/// to hide the latency of each addition (with 4, the kernel waited on its own additions).
const BLOCK: usize = 128;

/// A sparse matrix by rows (CSR) or by columns (CSC): `ptr` (lines + 1) indexes `idx` and `vals`.
#[derive(Default, Debug, Clone)]
pub struct Compressed {
    /// Where each line starts in `idx` and `vals`: line l is `ptr[l]..ptr[l + 1]`, so the last
    /// entry is the number of nonzeros.
    pub ptr: Vec<u32>,
    /// The column (CSR) or row (CSC) of each nonzero, ascending within a line.
    pub idx: Vec<u32>,
    /// The value of each nonzero.
    pub vals: Vec<f32>,
    /// Scratch for building this form from the other, kept to be reused.
    cursor: Vec<u32>,
}

impl Compressed {
    /// The (index, value) pairs of line `l`.
    #[inline(always)]
    fn line(&self, l: usize) -> impl Iterator<Item = (usize, f32)> + Clone + '_ {
        let (lo, hi) = (self.ptr[l] as usize, self.ptr[l + 1] as usize);
        self.idx[lo..hi]
            .iter()
            .zip(&self.vals[lo..hi])
            .map(|(&k, &v)| (k as usize, v))
    }

    fn lines(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }
}

/// The CSR form of a row-major (N, I) matrix. Each block of 16 values becomes a bit mask of its
/// nonzeros in one vectorised comparison; only the set bits are then visited, so the cost
/// follows the number of nonzeros rather than of values.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
pub fn to_csr(x: &[f32], i: usize, csr: &mut Compressed) {
    const B: usize = 16;
    csr.ptr.clear();
    csr.ptr.push(0);
    csr.idx.clear();
    csr.vals.clear();
    for row in x.chunks_exact(i) {
        for (b, block) in row.chunks(B).enumerate() {
            let mut mask = 0u32;
            for (j, &v) in block.iter().enumerate() {
                mask |= ((v != 0.0) as u32) << j;
            }
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                csr.idx.push((b * B + j) as u32);
                csr.vals.push(block[j]);
            }
        }
        csr.ptr.push(csr.idx.len() as u32);
    }
}

/// The CSC form (i columns) of a CSR matrix, by counting sort: rows stay ascending within each
/// column, so every sum over a column has a fixed order.
pub fn csr_to_csc(csr: &Compressed, i: usize, csc: &mut Compressed) {
    csc.ptr.clear();
    csc.ptr.resize(i + 1, 0);
    for &k in &csr.idx {
        csc.ptr[k as usize + 1] += 1;
    }
    for k in 0..i {
        csc.ptr[k + 1] += csc.ptr[k];
    }
    let nnz = csr.idx.len();
    csc.idx.resize(nnz, 0);
    csc.vals.resize(nnz, 0.0);
    let mut next = std::mem::take(&mut csc.cursor);
    next.clear();
    next.extend_from_slice(&csc.ptr[..i]);
    for n in 0..csr.lines() {
        for (k, v) in csr.line(n) {
            let at = next[k] as usize;
            csc.idx[at] = n as u32;
            csc.vals[at] = v;
            next[k] += 1;
        }
    }
    csc.cursor = next;
}

/// The fraction of nonzero values.
pub fn density(x: &[f32]) -> f32 {
    let nnz = x.iter().filter(|&&v| v != 0.0).count();
    nnz as f32 / x.len().max(1) as f32
}

/// dst (C, R) = src (R, C)^T. Each task owns a band of 64 rows of dst (64 columns of src).
pub fn transpose(dst: &mut [f32], src: &[f32], r: usize, c: usize) {
    const BAND: usize = 64;
    assert!(
        dst.len() == r * c && src.len() == r * c,
        "transpose: sizes differ"
    );
    dst.par_chunks_mut(BAND * r)
        .enumerate()
        .for_each(|(band, out)| transpose_band(out, src, r, c, band * BAND));
}

/// Rows [c0, c0 + out.len() / r) of dst = src^T, moved in 16 x 16 tiles through a local array:
/// 16-wide loads from src and 16-wide stores to dst (whole cache lines) instead of one
/// scattered store per value.
/// (A function of its own so that the tile code is compiled for AVX2 / AVX-512: a closure
/// handed to rayon would not inherit the target features.)
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn transpose_band(out: &mut [f32], src: &[f32], r: usize, c: usize, c0: usize) {
    const T: usize = 16;
    for (sub, out) in out.chunks_mut(T * r).enumerate() {
        let c0 = c0 + sub * T;
        let width = out.len() / r;
        let mut r0 = 0;
        if width == T {
            while r0 + T <= r {
                let mut tile = [[0.0f32; T]; T];
                for (a, row) in tile.iter_mut().enumerate() {
                    let s: &[f32; T] = src[(r0 + a) * c + c0..(r0 + a) * c + c0 + T]
                        .try_into()
                        .expect("T values");
                    *row = *s;
                }
                for b in 0..T {
                    let d: &mut [f32; T] = (&mut out[b * r + r0..b * r + r0 + T])
                        .try_into()
                        .expect("T values");
                    for a in 0..T {
                        d[a] = tile[a][b];
                    }
                }
                r0 += T;
            }
        }
        for rr in r0..r {
            for j in 0..width {
                out[j * r + rr] = src[rr * c + c0 + j];
            }
        }
    }
}

/// acc[j] += sum over (k, v) of v * mat[k * stride + col0 + j], j < L: L outputs held in
/// registers while the pairs stream by.
#[inline(always)]
fn accumulate<const L: usize>(
    acc: &mut [f32; L],
    pairs: impl Iterator<Item = (usize, f32)>,
    mat: &[f32],
    stride: usize,
    col0: usize,
) {
    for (k, v) in pairs {
        let row: &[f32; L] = mat[k * stride + col0..k * stride + col0 + L]
            .try_into()
            .expect("L values");
        for j in 0..L {
            acc[j] += v * row[j];
        }
    }
}

/// Where a sparse combination starts from.
#[derive(Clone, Copy)]
enum Start<'a> {
    Zero,
    /// A bias added to every row.
    Bias(&'a [f32]),
    /// Zero, the finished sum then added to the output's values (accumulating a gradient:
    /// the new gradient is summed on its own, as when it is written fresh, then added).
    AddToOut,
}

impl Start<'_> {
    /// Store a finished block of sums (a bias, if any, is already in them).
    #[inline(always)]
    fn finish(self, out: &mut [f32], acc: &[f32]) {
        if let Start::AddToOut = self {
            out.iter_mut().zip(acc).for_each(|(o, a)| *o += a);
        } else {
            out.copy_from_slice(acc);
        }
    }
}

/// out[j] = start[j] + sum over (k, v) of v * mat[k * stride + col0 + j] for j < out.len(),
/// in register blocks of BLOCK with a scalar tail.
#[inline(always)]
fn sparse_combination(
    out: &mut [f32],
    start: Start,
    pairs: impl Iterator<Item = (usize, f32)> + Clone,
    mat: &[f32],
    stride: usize,
    col0: usize,
) {
    let width = out.len();
    let mut j0 = 0;
    while j0 + BLOCK <= width {
        let mut acc = [0.0f32; BLOCK];
        if let Start::Bias(b) = start {
            acc.copy_from_slice(&b[j0..j0 + BLOCK]);
        }
        accumulate(&mut acc, pairs.clone(), mat, stride, col0 + j0);
        start.finish(&mut out[j0..j0 + BLOCK], &acc);
        j0 += BLOCK;
    }
    for j in j0..width {
        let mut s = match start {
            Start::Bias(b) => b[j],
            _ => 0.0,
        };
        for (k, v) in pairs.clone() {
            s += v * mat[k * stride + col0 + j];
        }
        start.finish(&mut out[j..j + 1], &[s]);
    }
}

/// Rows [first, first + ys.len() / o) of the forward.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn forward_rows(
    ys: &mut [f32],
    first: usize,
    csr: &Compressed,
    wt: &[f32],
    b: Option<&[f32]>,
    o: usize,
) {
    for (r, yr) in ys.chunks_exact_mut(o).enumerate() {
        sparse_combination(
            yr,
            b.map_or(Start::Zero, Start::Bias),
            csr.line(first + r),
            wt,
            o,
            0,
        );
    }
}

/// Forward. y (N, O), fully overwritten; wt = W^T (I, O):
/// y[n, :] = b + sum over the nonzeros (k, v) of row n of x of v * wt[k, :]
/// Rows are independent, so any split across threads gives the same result.
pub fn forward(y: &mut [f32], csr: &Compressed, wt: &[f32], b: Option<&[f32]>, o: usize) {
    const ROWS: usize = 16;
    y.par_chunks_mut(o * ROWS)
        .enumerate()
        .for_each(|(chunk, ys)| {
            forward_rows(ys, chunk * ROWS, csr, wt, b, o);
        });
}

/// dw rows [o0, o0 + band.len() / i) of the weight gradient, through a scratch block each
/// thread keeps (so that a step allocates nothing).
fn backward_band(band: &mut [f32], o0: usize, dy: &[f32], csc: &Compressed, o: usize, i: usize) {
    thread_local! {
        static BLOCK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCK.with_borrow_mut(|block| backward_band_into(band, block, o0, dy, csc, o, i));
}

/// The gradients of K weight columns at a time for this band of outputs, gathered in `block`,
/// then added to dw in one pass.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_band_into(
    band: &mut [f32],
    block: &mut Vec<f32>,
    o0: usize,
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    i: usize,
) {
    const K: usize = 16;
    let width = band.len() / i;
    block.resize(K * width, 0.0);
    for k0 in (0..i).step_by(K) {
        let k1 = (k0 + K).min(i);
        for k in k0..k1 {
            sparse_combination(
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
/// so the result does not depend on the split.
pub fn backward_weight(dw: &mut [f32], dy: &[f32], csc: &Compressed, o: usize, i: usize) {
    let parts = crate::runtime::threads().max(1);
    // bands of whole register blocks where possible
    let per = o.div_ceil(parts).div_ceil(16) * 16;
    dw.par_chunks_mut(per.max(1) * i)
        .enumerate()
        .for_each(|(p, band)| {
            backward_band(band, p * per, dy, csc, o, i);
        });
}

/// The weight gradient for a weight stored transposed, into dwt (I, O), row k of which is
/// column k of dw:
///   dwt[k, :] (+)= sum over the nonzeros (n, v) of column k of x of v * dy[n, :]
/// Each row is one sparse combination of rows of dy, written contiguously: no transpose and
/// no scattered adds. `overwrite`: dwt holds no gradient yet, so every row is written, not
/// added to (rows of columns without nonzeros become zeros). Rows are split across threads;
/// each sum runs over its column's nonzeros in row order, so the split changes nothing.
pub fn backward_weight_t(dwt: &mut [f32], dy: &[f32], csc: &Compressed, o: usize, overwrite: bool) {
    const ROWS: usize = 16;
    dwt.par_chunks_mut(o * ROWS)
        .enumerate()
        .for_each(|(chunk, rows)| backward_rows_t(rows, chunk * ROWS, dy, csc, o, overwrite));
}

/// Rows [first, first + rows.len() / o) of `backward_weight_t`, with the merge scratch this
/// thread keeps (so that a step allocates nothing).
fn backward_rows_t(
    rows: &mut [f32],
    first: usize,
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    overwrite: bool,
) {
    thread_local! {
        static UNION: std::cell::RefCell<Vec<(u32, f32, f32)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    UNION.with_borrow_mut(|u| backward_rows_t_with(rows, first, dy, csc, o, overwrite, u));
}

/// `backward_rows_t`, two rows of dwt (two adjacent pixels) at a time. Adjacent pixels of
/// MNIST are mostly nonzero in the same images: over a batch the union of two columns' nonzeros
/// is 58% of their sum, so reading each row of dy once for both cuts the reads by 42% (this
/// kernel is bound by them) for 17% more multiplies. (A function of its own so that it is
/// compiled for AVX2 / AVX-512: a closure would not inherit the target features.)
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_rows_t_with(
    rows: &mut [f32],
    first: usize,
    dy: &[f32],
    csc: &Compressed,
    o: usize,
    overwrite: bool,
    union: &mut Vec<(u32, f32, f32)>,
) {
    let start = if overwrite {
        Start::Zero
    } else {
        Start::AddToOut
    };
    let last = first + rows.len() / o - 1;
    let mut pairs = rows.chunks_exact_mut(2 * o);
    for (p, pair) in pairs.by_ref().enumerate() {
        let k = first + 2 * p;
        merge_lines(csc.line(k), csc.line(k + 1), union);
        let (a, b) = pair.split_at_mut(o);
        pair_combination(a, b, start, union, dy, o);
    }
    let rest = pairs.into_remainder();
    if !rest.is_empty() {
        sparse_combination(rest, start, csc.line(last), dy, o, 0);
    }
}

/// The union of two lines with ascending indices: (index, value in a, value in b), 0 where a
/// line has none, ascending.
#[inline(always)]
fn merge_lines(
    a: impl Iterator<Item = (usize, f32)>,
    b: impl Iterator<Item = (usize, f32)>,
    out: &mut Vec<(u32, f32, f32)>,
) {
    out.clear();
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
        out.push((next.0 as u32, next.1, next.2));
    }
}

/// Two sparse combinations of the rows of `mat` (stride = out_a.len()) that read each row once:
/// out_a[j] = start + sum over the union (n, va, vb) of va * mat[n, j], out_b likewise with vb.
/// The zeros a line has where only the other is nonzero add exact zeros (for finite values),
/// so each result is `sparse_combination`'s over its own line, to the bit. `start`: Zero or
/// AddToOut (a bias has no place in a gradient).
#[inline(always)]
fn pair_combination(
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
    let mut j0 = 0;
    while j0 + BLOCK <= width {
        let (mut acc_a, mut acc_b) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        for &(n, va, vb) in union {
            let at = n as usize * stride + j0;
            let row: &[f32; BLOCK] = mat[at..at + BLOCK].try_into().expect("a block");
            for j in 0..BLOCK {
                acc_a[j] += va * row[j];
                acc_b[j] += vb * row[j];
            }
        }
        start.finish(&mut out_a[j0..j0 + BLOCK], &acc_a);
        start.finish(&mut out_b[j0..j0 + BLOCK], &acc_b);
        j0 += BLOCK;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_the_definition_for_ragged_shapes() {
        for (r, c) in [(1, 1), (3, 5), (8, 8), (9, 17), (16, 67), (256, 784)] {
            let src: Vec<f32> = (0..r * c).map(|v| v as f32).collect();
            let mut dst = vec![-1.0; r * c];
            transpose(&mut dst, &src, r, c);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(dst[j * r + i], src[i * c + j], "({r}, {c}) at ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn the_transposed_weight_gradient_equals_the_column_by_column_one_to_the_bit() {
        // outputs: two register blocks and a tail; an odd number of columns (one left over
        // after the pairs); columns that share rows and columns that do not
        let (n, i, o) = (9, 37, 2 * BLOCK + 3);
        let mut rng = crate::rng::Rng::seed(11);
        let x: Vec<f32> = (0..n * i)
            .map(|_| {
                if rng.next_f32() < 0.6 {
                    0.0
                } else {
                    rng.next_f32() - 0.5
                }
            })
            .collect();
        let dy: Vec<f32> = (0..n * o).map(|_| rng.next_f32() - 0.5).collect();
        let (mut csr, mut csc) = (Compressed::default(), Compressed::default());
        to_csr(&x, i, &mut csr);
        csr_to_csc(&csr, i, &mut csc);
        // each column on its own (the natural layout's kernel), into dw (O, I), then transposed
        let mut dw = vec![0.0; o * i];
        backward_weight(&mut dw, &dy, &csc, o, i);
        let mut want = vec![0.0; o * i];
        transpose(&mut want, &dw, o, i);
        let mut dwt = vec![f32::NAN; i * o];
        backward_weight_t(&mut dwt, &dy, &csc, o, true);
        assert_eq!(dwt, want, "overwritten");
        // accumulating adds the same gradient again
        backward_weight_t(&mut dwt, &dy, &csc, o, false);
        let twice: Vec<f32> = want.iter().map(|v| v + v).collect();
        assert_eq!(dwt, twice, "accumulated");
    }

    #[test]
    fn sparse_kernels_match_dense_products() {
        let (n, i, o) = (5, 70, 67);
        let mut rng = crate::rng::Rng::seed(3);
        let x: Vec<f32> = (0..n * i)
            .map(|_| {
                if rng.next_f32() < 0.7 {
                    0.0
                } else {
                    rng.next_f32()
                }
            })
            .collect();
        let w: Vec<f32> = (0..o * i).map(|_| rng.next_f32() - 0.5).collect();
        let b: Vec<f32> = (0..o).map(|_| rng.next_f32()).collect();
        let dy: Vec<f32> = (0..n * o).map(|_| rng.next_f32() - 0.5).collect();
        let mut csr = Compressed::default();
        to_csr(&x, i, &mut csr);
        let mut wt = vec![0.0; o * i];
        transpose(&mut wt, &w, o, i);
        let mut y = vec![0.0; n * o];
        forward(&mut y, &csr, &wt, Some(&b), o);
        let mut csc = Compressed::default();
        csr_to_csc(&csr, i, &mut csc);
        let mut dw = vec![1.0; o * i];
        backward_weight(&mut dw, &dy, &csc, o, i);
        for nn in 0..n {
            for oo in 0..o {
                let want: f32 = b[oo] + (0..i).map(|k| x[nn * i + k] * w[oo * i + k]).sum::<f32>();
                assert!((y[nn * o + oo] - want).abs() < 1e-4);
            }
        }
        for oo in 0..o {
            for k in 0..i {
                let want: f32 = 1.0
                    + (0..n)
                        .map(|nn| dy[nn * o + oo] * x[nn * i + k])
                        .sum::<f32>();
                assert!((dw[oo * i + k] - want).abs() < 1e-4);
            }
        }
    }
}
