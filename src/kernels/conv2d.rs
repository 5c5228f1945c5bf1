//! Conv2d by im2col, one sample at a time, so every buffer stays in the core's cache.
//!
//! Shapes: x (N, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout), y (N, Cout, Ho, Wo),
//! K = Cin * kh * kw, P = Ho * Wo; Ho = (H + 2 pad - kh) / stride + 1.
//!
//! For one sample, the input patches form a column matrix cols_n (K, P): column p holds the
//! patch under output position p. The convolution of that sample is one product,
//! y_n (Cout, P) = w (Cout, K) . cols_n, and (Cout, P) is already PyTorch's layout for y_n, so no
//! permutation is needed. cols_n is 225 KB for the cnn preset's second layer: it is built, used
//! and dropped while it sits in L2. (An earlier version built the whole batch's (K, N P) matrix
//! in one go: 58 MB, which the GEMM crate then had to pack from memory; packing took 18% of an
//! epoch.) Samples are split into a fixed number of chunks, each run by one thread with
//! single-threaded products; the backward never stores cols: it rebuilds cols_n from x_n, which
//! costs far less than reading it back from memory.
//!
//! Determinism: the chunks depend on N only, and the per-chunk partial sums of dw and db are
//! added in chunk order, so results do not depend on the thread count or on scheduling.

use super::batch_norm::{lane_sum, run_stats};
use crate::matmul::{matmul_serial, Mat};
use multiversion::multiversion;
use rayon::prelude::*;
use std::cell::RefCell;

/// The geometry of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Samples in the batch (N).
    pub n: usize,
    /// Input channels (Cin).
    pub cin: usize,
    /// Input height, before padding (H).
    pub h: usize,
    /// Input width, before padding (W).
    pub w: usize,
    /// Output channels (Cout), the number of filters.
    pub cout: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between windows along both height and width (at least 1).
    pub stride: usize,
    /// Zeros added on each side of the input, along both height and width.
    pub pad: usize,
}

impl ConvGeom {
    /// Output height: Ho = (H + 2 pad - kh) / stride + 1.
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    /// Output width: Wo = (W + 2 pad - kw) / stride + 1.
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Rows of a sample's column matrix: one per (input channel, kernel row, kernel column).
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    /// Output positions per sample (the columns of its column matrix).
    pub fn p(&self) -> usize {
        self.ho() * self.wo()
    }
    /// Values of one input sample (Cin, H, W).
    fn x_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    /// Values of one output sample (Cout, P).
    fn y_len(&self) -> usize {
        self.cout * self.p()
    }
}

/// Samples are processed in this many chunks (fewer if N is smaller): enough for two to eight
/// threads to balance, few enough that the per-chunk weight-gradient partials stay small.
const CHUNKS: usize = 16;

fn chunk_len(n: usize) -> usize {
    n.div_ceil(CHUNKS.min(n).max(1)).max(1)
}

thread_local! {
    /// A thread's column matrix, its gradient and one sample's output gradient, reused from
    /// sample to sample and step to step.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

fn fit(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// Stride 1 with "same" padding (the cnn presets' 3x3, padding 1): the output plane has the
/// input's size, and row k = (ci, ky, kx) of the column matrix is the input plane shifted by
/// (ky - pad) rows and (kx - pad) columns. Read as flat arrays, that is one contiguous copy,
/// cols[k, q] = x[ci, q + shift] with shift = (ky - pad) W + (kx - pad), instead of one short
/// copy per output row: positions whose source row is outside the plane fall outside the flat
/// range, and those whose source column is outside it wrap into the neighbouring row and are
/// zeroed afterwards (`zero_wrapped_columns`).
fn is_same_size(g: &ConvGeom) -> bool {
    g.stride == 1 && g.ho() == g.h && g.wo() == g.w && g.pad < g.kw && g.pad < g.kh
}

/// For row (ky, kx) in the same-size case: the output positions [lo, hi) whose flat source
/// q + shift lies inside the plane, and where that range starts in the plane (0 if it is
/// empty: a kernel row or column that reaches past a plane smaller than the kernel).
fn same_size_range(g: &ConvGeom, ky: usize, kx: usize) -> (usize, usize, usize) {
    let p = g.p() as isize;
    let shift = (ky as isize - g.pad as isize) * g.w as isize + kx as isize - g.pad as isize;
    let lo = (-shift).clamp(0, p);
    let hi = (p - shift).clamp(lo, p);
    let src = if hi > lo { (lo + shift) as usize } else { 0 };
    (lo as usize, hi as usize, src)
}

/// Zero the output columns ox whose source column ox + kx - pad is outside [0, W).
fn zero_wrapped_columns(row: &mut [f32], g: &ConvGeom, kx: usize) {
    let left = g.pad.saturating_sub(kx); // ox < pad - kx
    let right = (kx + g.w).saturating_sub(g.pad + g.w).min(g.w); // ox >= W + pad - kx
    if left == 0 && right == 0 {
        return;
    }
    // column by column: a fill of each line's one or two values would be a memset call each
    for ox in (0..left).chain(g.w - right..g.w) {
        for line in row.chunks_exact_mut(g.w) {
            line[ox] = 0.0;
        }
    }
}

/// The column matrix of one sample: cols[k, oy * Wo + ox] = x[ci, oy s + ky - pad, ox s + kx - pad]
/// with k = (ci, ky, kx), and 0 where the patch hangs over the padding.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn im2col_sample(cols: &mut [f32], x: &[f32], g: &ConvGeom) {
    let (ho, wo, p) = (g.ho(), g.wo(), g.p());
    if is_same_size(g) {
        for (k, row) in cols.chunks_exact_mut(p).enumerate() {
            let (ci, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
            let plane = &x[ci * p..][..p];
            let (lo, hi, src) = same_size_range(g, ky, kx);
            row[..lo].fill(0.0);
            row[lo..hi].copy_from_slice(&plane[src..][..hi - lo]);
            row[hi..].fill(0.0);
            zero_wrapped_columns(row, g, kx);
        }
        return;
    }
    for (k, row) in cols.chunks_exact_mut(p).enumerate() {
        let (ci, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
        let plane = &x[ci * g.h * g.w..][..g.h * g.w];
        for oy in 0..ho {
            let out = &mut row[oy * wo..(oy + 1) * wo];
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy >= g.h as isize {
                out.fill(0.0);
                continue;
            }
            let src = &plane[iy as usize * g.w..][..g.w];
            if g.stride == 1 {
                // ix = ox + kx - pad: a shifted copy with zeros at either end
                let shift = kx as isize - g.pad as isize;
                let lo = (-shift).clamp(0, wo as isize) as usize;
                let hi = (g.w as isize - shift).clamp(lo as isize, wo as isize) as usize;
                out[..lo].fill(0.0);
                out[lo..hi].copy_from_slice(&src[(lo as isize + shift) as usize..][..hi - lo]);
                out[hi..].fill(0.0);
                continue;
            }
            for (ox, o) in out.iter_mut().enumerate() {
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                *o = if ix < 0 || ix >= g.w as isize {
                    0.0
                } else {
                    src[ix as usize]
                };
            }
        }
    }
}

/// The adjoint of im2col for one sample: each entry of the column matrix sends its gradient
/// back to the pixel it was copied from. dx[ci, iy, ix] += every dcols[k, p] that read it.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn col2im_sample(dx: &mut [f32], dcols: &mut [f32], g: &ConvGeom) {
    let (ho, wo, p) = (g.ho(), g.wo(), g.p());
    if is_same_size(g) {
        for (k, row) in dcols.chunks_exact_mut(p).enumerate() {
            let (ci, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
            let plane = &mut dx[ci * p..][..p];
            let (lo, hi, src) = same_size_range(g, ky, kx);
            // the wrapped columns read padding, not the neighbouring row: they send nothing
            zero_wrapped_columns(row, g, kx);
            let dst = &mut plane[src..][..hi - lo];
            for (d, &v) in dst.iter_mut().zip(&row[lo..hi]) {
                *d += v;
            }
        }
        return;
    }
    for (k, row) in dcols.chunks_exact(p).enumerate() {
        let (ci, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
        let plane = &mut dx[ci * g.h * g.w..][..g.h * g.w];
        for oy in 0..ho {
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let dst = &mut plane[iy as usize * g.w..][..g.w];
            let src = &row[oy * wo..][..wo];
            if g.stride == 1 {
                let shift = kx as isize - g.pad as isize;
                let lo = (-shift).clamp(0, wo as isize) as usize;
                let hi = (g.w as isize - shift).clamp(lo as isize, wo as isize) as usize;
                let dst = &mut dst[(lo as isize + shift) as usize..][..hi - lo];
                for (d, &s) in dst.iter_mut().zip(&src[lo..hi]) {
                    *d += s;
                }
                continue;
            }
            for (ox, &d) in src.iter().enumerate() {
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                if ix >= 0 && (ix as usize) < g.w {
                    dst[ix as usize] += d;
                }
            }
        }
    }
}

/// Forward. y_n (Cout, P) = w (Cout, K) . cols_n (K, P) + b, for every sample n.
/// `out_stats` (N, Cout, 2), if given, receives each output run's mean and sum of squared
/// deviations (`batch_norm::run_stats`), taken while the run is in cache, for a BatchNorm that
/// follows (the same numbers `batch_norm::batch_stats` would read back from memory).
pub fn forward(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    g: &ConvGeom,
    out_stats: Option<&mut [f32]>,
) {
    let cl = chunk_len(g.n);
    let chunks = y
        .par_chunks_mut(cl * g.y_len())
        .zip(x.par_chunks(cl * g.x_len()));
    match out_stats {
        Some(stats) => chunks
            .zip(stats.par_chunks_mut(cl * g.cout * 2))
            .for_each(|((ys, xs), st)| forward_chunk(ys, xs, w, b, g, Some(st))),
        None => chunks.for_each(|(ys, xs)| forward_chunk(ys, xs, w, b, g, None)),
    }
}

/// The forward of one chunk of samples, on the calling thread.
fn forward_chunk(
    ys: &mut [f32],
    xs: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    g: &ConvGeom,
    mut stats: Option<&mut [f32]>,
) {
    let (k, p) = (g.k(), g.p());
    SCRATCH.with_borrow_mut(|(cols, _, _)| {
        fit(cols, k * p);
        let cols = &mut cols[..k * p];
        let samples = ys
            .chunks_exact_mut(g.y_len())
            .zip(xs.chunks_exact(g.x_len()));
        for (i, (yn, xn)) in samples.enumerate() {
            im2col_sample(cols, xn, g);
            matmul_serial(yn, Mat::new(w, g.cout, k), Mat::new(cols, k, p), false);
            if let Some(b) = b {
                for (run, &bc) in yn.chunks_exact_mut(p).zip(b) {
                    run.iter_mut().for_each(|v| *v += bc);
                }
            }
            if let Some(stats) = stats.as_deref_mut() {
                let dst = stats[2 * i * g.cout..2 * (i + 1) * g.cout].chunks_exact_mut(2);
                for (d, run) in dst.zip(yn.chunks_exact(p)) {
                    d.copy_from_slice(&run_stats(run));
                }
            }
        }
    })
}

/// Where the backward finds the gradient of the output.
pub enum Upstream<'a> {
    /// dy (N, Cout, P) in memory.
    Dense(&'a [f32]),
    /// dy_n computed on demand, sample by sample, into a (Cout, P) buffer: a fused layer's
    /// backward that would otherwise write all of dy to memory for this one to read back.
    PerSample(&'a (dyn Fn(usize, &mut [f32]) + Sync)),
}

/// Backward. dy (N, Cout, P). Gradients are accumulated. From y_n = w . cols_n + b:
///   dw (Cout, K)      += sum over n of dy_n (Cout, P) . cols_n^T (P, K)
///   `db[co]`          += sum over n and p of `dy_n[co, p]`
///   dcols_n (K, P)     = w^T (K, Cout) . dy_n (Cout, P),  then dx_n += col2im(dcols_n)
/// Each chunk of samples sums its own dw and db into `partials` (scratch the caller keeps from
/// step to step); the partials are then added in chunk order.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dy: Upstream,
    x: &[f32],
    w: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    g: &ConvGeom,
    partials: &mut Vec<f32>,
) {
    let (k, cl) = (g.k(), chunk_len(g.n));
    let want = (dw.is_some(), db.is_some());
    // per chunk: dw partial (Cout K), then db partial (Cout)
    let part_len = g.cout * k + g.cout;
    partials.clear();
    partials.resize(g.n.div_ceil(cl) * part_len, 0.0);
    let parts = partials.par_chunks_mut(part_len).enumerate();
    let chunk = |c: usize, part: &mut [f32], dxs: Option<&mut [f32]>| {
        let samples = c * cl..((c + 1) * cl).min(g.n);
        backward_chunk(&dy, x, w, samples, part, dxs, want, g)
    };
    match dx {
        Some(dx) => parts
            .zip(dx.par_chunks_mut(cl * g.x_len()))
            .for_each(|((c, part), dxs)| chunk(c, part, Some(dxs))),
        None => parts.for_each(|(c, part)| chunk(c, part, None)),
    }
    let (mut dw, mut db) = (dw, db);
    for part in partials.chunks_exact(part_len) {
        let (pw, pb) = part.split_at(g.cout * k);
        if let Some(dw) = dw.as_deref_mut() {
            dw.iter_mut().zip(pw).for_each(|(d, s)| *d += s);
        }
        if let Some(db) = db.as_deref_mut() {
            db.iter_mut().zip(pb).for_each(|(d, s)| *d += s);
        }
    }
}

/// The backward of one chunk of samples, on the calling thread: its dw and db partials in
/// `part` (when `want` says they are needed) and, if given, dx of its samples.
#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    dy: &Upstream,
    x: &[f32],
    w: &[f32],
    samples: std::ops::Range<usize>,
    part: &mut [f32],
    mut dxs: Option<&mut [f32]>,
    (want_w, want_b): (bool, bool),
    g: &ConvGeom,
) {
    let (k, p, n0) = (g.k(), g.p(), samples.start);
    let (pw, pb) = part.split_at_mut(g.cout * k);
    SCRATCH.with_borrow_mut(|(cols, dcols, dy_buf)| {
        fit(cols, k * p);
        fit(dcols, k * p);
        fit(dy_buf, g.y_len());
        let (cols, dcols) = (&mut cols[..k * p], &mut dcols[..k * p]);
        for n in samples {
            let dyn_: &[f32] = match dy {
                Upstream::Dense(dy) => &dy[n * g.y_len()..][..g.y_len()],
                Upstream::PerSample(f) => {
                    f(n, &mut dy_buf[..g.y_len()]);
                    &dy_buf[..g.y_len()]
                }
            };
            let d = Mat::new(dyn_, g.cout, p);
            if want_w {
                im2col_sample(cols, &x[n * g.x_len()..][..g.x_len()], g);
                matmul_serial(pw, d, Mat::new(cols, k, p).t(), true);
            }
            if want_b {
                for (s, run) in pb.iter_mut().zip(dyn_.chunks_exact(p)) {
                    *s += lane_sum(run, |v| v);
                }
            }
            if let Some(dxs) = dxs.as_deref_mut() {
                matmul_serial(dcols, Mat::new(w, g.cout, k).t(), d, false);
                let dxn = &mut dxs[(n - n0) * g.x_len()..][..g.x_len()];
                col2im_sample(dxn, dcols, g);
            }
        }
    })
}
