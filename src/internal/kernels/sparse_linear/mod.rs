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

mod backward;
#[cfg(test)]
mod tests;

pub use backward::{backward_weight, backward_weight_t, Scratch};

/// Width of the bands `to_bands` cuts W^T into for `forward_rows_banded`: one AVX-512 register
/// block, two AVX2 ones.
const BAND: usize = 128;

/// Outputs accumulated in registers at a time by a kernel compiled for `target`: 8 vector
/// registers, enough independent sums to hide the latency of each addition (with 4, the
/// kernel waited on its own additions), and few enough to leave room for the broadcast value
/// and the loaded row. That is 128 outputs with AVX-512 (32 registers of 16), 64 with AVX2:
/// 128 would be all 16 of its registers, and the compiler kept 4 of those sums on the stack,
/// a store and a load per nonzero (`perf annotate`, AMD Zen 3, issue 23). 32 elsewhere.
/// Every output is summed in its pairs' order whatever the block, so this changes no bit.
const fn register_block(target: multiversion::target::Target) -> usize {
    if target.supports_feature_str("avx512f") {
        128
    } else if target.supports_feature_str("avx") {
        64
    } else {
        32
    }
}

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

/// The number of nonzero values.
pub fn count_nonzeros(x: &[f32]) -> usize {
    x.iter().filter(|&&v| v != 0.0).count()
}

/// dst (C, R) = src (R, C)^T. Each task owns a band of 64 rows of dst (64 columns of src).
pub fn transpose(dst: &mut [f32], src: &[f32], r: usize, c: usize) {
    const BAND: usize = 64;
    assert!(
        dst.len() == r * c && src.len() == r * c,
        "transpose: sizes differ"
    );
    if dst.is_empty() {
        // (0, C) or (R, 0): nothing to move (and no band of zero length to cut)
        return;
    }
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
/// in register blocks of B (`register_block`), then of SMALL_BLOCK and TINY_BLOCK, then one by
/// one. Each output is summed in the pairs' order whatever its block, so the block sizes do not
/// change a bit of it.
#[inline(always)]
fn sparse_combination<const B: usize>(
    out: &mut [f32],
    start: Start,
    pairs: impl Iterator<Item = (usize, f32)> + Clone,
    mat: &[f32],
    stride: usize,
    col0: usize,
) {
    let width = out.len();
    let mut j0 = blocks::<B>(out, 0, start, pairs.clone(), mat, stride, col0);
    // without this, a width below B (784-100, say) was summed one column at a time,
    // striding through `mat`: 35x slower than the blocked sums (perf, issue 14)
    j0 = blocks::<SMALL_BLOCK>(out, j0, start, pairs.clone(), mat, stride, col0);
    j0 = blocks::<TINY_BLOCK>(out, j0, start, pairs.clone(), mat, stride, col0);
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

/// Outputs summed at a time after the register blocks: one AVX-512 register, two AVX2 ones.
pub(super) const SMALL_BLOCK: usize = 16;
/// Then four at a time (half an AVX2 register), so that at most 3 outputs are summed one by
/// one: 100 outputs are 6 x 16 + 4.
pub(super) const TINY_BLOCK: usize = 4;

/// `sparse_combination` from output `j0` in blocks of L while L outputs remain; returns where
/// it stopped.
#[inline(always)]
fn blocks<const L: usize>(
    out: &mut [f32],
    mut j0: usize,
    start: Start,
    pairs: impl Iterator<Item = (usize, f32)> + Clone,
    mat: &[f32],
    stride: usize,
    col0: usize,
) -> usize {
    while j0 + L <= out.len() {
        let mut acc = [0.0f32; L];
        if let Start::Bias(b) = start {
            acc.copy_from_slice(&b[j0..j0 + L]);
        }
        accumulate(&mut acc, pairs.clone(), mat, stride, col0 + j0);
        start.finish(&mut out[j0..j0 + L], &acc);
        j0 += L;
    }
    j0
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
    const B: usize = register_block(multiversion::target::selected_target!());
    for (r, yr) in ys.chunks_exact_mut(o).enumerate() {
        sparse_combination::<B>(
            yr,
            b.map_or(Start::Zero, Start::Bias),
            csr.line(first + r),
            wt,
            o,
            0,
        );
    }
}

/// Rows [first, first + ys.len() / o) of the forward of a wide layer, band by band: for each
/// BAND-wide band of columns, every row's sums for that band, then the next band. `bands`
/// holds the full bands of wt one after the other, each (I, BAND) contiguous (`to_bands`), so
/// that a band (400 KB for I = 784) stays in the level 2 cache while the rows pass; the columns
/// past the last full band are read from wt. Each output is summed in its row's pairs' order
/// whatever the loop order or layout, so the values are `forward_rows`' to the bit.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn forward_rows_banded(
    ys: &mut [f32],
    first: usize,
    csr: &Compressed,
    (wt, bands): (&[f32], &[f32]),
    b: Option<&[f32]>,
    o: usize,
) {
    const B: usize = register_block(multiversion::target::selected_target!());
    let start = |j0: usize| b.map_or(Start::Zero, |b| Start::Bias(&b[j0..]));
    let band_len = (wt.len() / o) * BAND;
    for (band, mat) in bands.chunks_exact(band_len).enumerate() {
        let j0 = band * BAND;
        for (r, yr) in ys.chunks_exact_mut(o).enumerate() {
            let out = &mut yr[j0..j0 + BAND];
            // whole register blocks fill the band (`blocks` leaves a remainder undone)
            const { assert!(BAND.is_multiple_of(B), "a register block divides a band") };
            blocks::<B>(out, 0, start(j0), csr.line(first + r), mat, BAND, 0);
        }
    }
    let done = bands.len() / band_len * BAND;
    if done < o {
        for (r, yr) in ys.chunks_exact_mut(o).enumerate() {
            let out = &mut yr[done..];
            sparse_combination::<B>(out, start(done), csr.line(first + r), wt, o, done);
        }
    }
}

/// Whether the forward of a batch of `n` rows through a layer of `o` outputs runs by bands
/// (`forward_rows_banded`), on W^T's bands (`to_bands`) beside W^T. At O = 1024 a row of W^T is
/// 4 KB, and the rows a batch reads, that far apart, map onto a few of the caches' sets, so row
/// by row they came from L3; a batch of 512 rows or more pays for the copy into bands (which
/// is made once per step, when the weight has changed). Measured (`SHAPE=n,o cargo bench
/// --bench kernels`, AMD Zen 4, the copy included): at 1024 x 1024 4.9-5.0 ms row by row against
/// 3.2-3.8 ms by bands; at 256 x 1024 1.19 against 1.48 ms (the copy not paid for); at
/// 1024 x 512 1.85 against 1.84-2.4 ms. (The weight gradient by bands of dy was slower:
/// 4.5-5.2 against 3.8-3.9 ms at 1024 x 1024.)
pub fn banded(n: usize, o: usize) -> bool {
    o >= 8 * BAND && n >= 512
}

/// The full BAND-wide bands of m (R, C) one after the other, each (R, BAND) contiguous, into
/// `out` (resized): `out[(band * R + r) * BAND + c] = m[r * C + band * BAND + c]`.
pub fn to_bands(m: &[f32], cols: usize, out: &mut Vec<f32>) {
    let rows = m.len() / cols.max(1);
    let bands = cols / BAND;
    out.resize(bands * rows * BAND, 0.0);
    out.par_chunks_mut((rows * BAND).max(1))
        .enumerate()
        .for_each(|(band, dst)| {
            for (r, d) in dst.chunks_exact_mut(BAND).enumerate() {
                d.copy_from_slice(&m[r * cols + band * BAND..][..BAND]);
            }
        });
}

/// Forward. y (N, O), fully overwritten; wt = W^T (I, O):
/// y[n, :] = b + sum over the nonzeros (k, v) of row n of x of v * wt[k, :]
/// Rows are independent, so any split across threads gives the same result.
/// `bands`: when [`banded`]`(n, o)`, wt's bands as [`to_bands`] makes them (kept by the caller
/// while the weight is unchanged); else ignored.
pub fn forward(
    y: &mut [f32],
    csr: &Compressed,
    (wt, bands): (&[f32], &[f32]),
    b: Option<&[f32]>,
    o: usize,
) {
    let n = y.len() / o.max(1);
    if !banded(n, o) {
        const ROWS: usize = 16;
        y.par_chunks_mut(o * ROWS)
            .enumerate()
            .for_each(|(chunk, ys)| forward_rows(ys, chunk * ROWS, csr, wt, b, o));
        return;
    }
    assert_eq!(
        bands.len(),
        wt.len() / o * (o / BAND * BAND),
        "sparse forward: a wide layer needs W^T's bands"
    );
    // enough rows per task that each band is read from L3 once for many of them, and two
    // tasks per thread or more
    let rows = n
        .div_ceil(2 * crate::runtime::threads().max(1))
        .clamp(1, 64);
    y.par_chunks_mut(o * rows)
        .enumerate()
        .for_each(|(chunk, ys)| forward_rows_banded(ys, chunk * rows, csr, (wt, bands), b, o));
}
