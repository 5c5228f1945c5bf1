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
//!
//! The three products (forward, weight gradient, input gradient) run in the given
//! [`Precision`] (`internal::product`); im2col, col2im, the bias and the statistics are float32.
//! The weight, the left operand of the forward and input-gradient products of every sample, is
//! made ready once per call (`product::Lhs`: in bfloat16, rounded and packed once instead of
//! once per sample; in float32 nothing changes).

use super::batch_norm::{lane_sum, run_stats};
use crate::internal::product::{matmul_lhs_serial, matmul_serial, Lhs};
use crate::matmul::Mat;
use crate::precision::Precision;
use rayon::prelude::*;

mod im2col;

use im2col::{col2im_sample, im2col_sample};

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

fn chunks(n: usize) -> usize {
    n.div_ceil(chunk_len(n))
}

/// The first `len` values of the caller's scratch, grown if it is shorter (contents left as
/// they are: every user overwrites what it reads).
fn grow(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// Forward. y_n (Cout, P) = w (Cout, K) . cols_n (K, P) + b, for every sample n.
/// `out_stats` (N, Cout, 2), if given, receives each output run's mean and sum of squared
/// deviations (`batch_norm::run_stats`), taken while the run is in cache, for a BatchNorm that
/// follows (the same numbers `batch_norm::batch_stats` would read back from memory).
/// `scratch`: kept by the caller from step to step, one column matrix (K P) per chunk of
/// samples (each chunk runs on one thread).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    precision: Precision,
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    g: &ConvGeom,
    out_stats: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) {
    let (cl, kp) = (chunk_len(g.n), g.k() * g.p());
    let w = &Lhs::new(precision, Mat::new(w, g.cout, g.k()));
    let cols = grow(scratch, chunks(g.n) * kp).par_chunks_mut(kp.max(1));
    let chunks = y
        .par_chunks_mut(cl * g.y_len())
        .zip(x.par_chunks(cl * g.x_len()))
        .zip(cols);
    match out_stats {
        Some(stats) => chunks
            .zip(stats.par_chunks_mut(cl * g.cout * 2))
            .for_each(|(((ys, xs), cols), st)| forward_chunk(ys, xs, w, b, g, Some(st), cols)),
        None => chunks.for_each(|((ys, xs), cols)| forward_chunk(ys, xs, w, b, g, None, cols)),
    }
}

/// The forward of one chunk of samples, on the calling thread; `w` is the weight (Cout, K).
fn forward_chunk(
    ys: &mut [f32],
    xs: &[f32],
    w: &Lhs,
    b: Option<&[f32]>,
    g: &ConvGeom,
    mut stats: Option<&mut [f32]>,
    cols: &mut [f32],
) {
    let (k, p) = (g.k(), g.p());
    let cols = &mut cols[..k * p];
    let samples = ys
        .chunks_exact_mut(g.y_len())
        .zip(xs.chunks_exact(g.x_len()));
    for (i, (yn, xn)) in samples.enumerate() {
        im2col_sample(cols, xn, g);
        matmul_lhs_serial(yn, w, Mat::new(cols, k, p), false);
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
}

/// `grad(n, dy_n, scratch)` of `Upstream::PerSample`.
pub type SampleGrad<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) + Sync + 'a;

/// Where the backward finds the gradient of the output.
pub enum Upstream<'a> {
    /// dy (N, Cout, P) in memory.
    Dense(&'a [f32]),
    /// dy_n computed on demand, sample by sample, into a (Cout, P) buffer: a fused layer's
    /// backward that would otherwise write all of dy to memory for this one to read back.
    PerSample {
        /// `grad(n, dy_n, scratch)` writes sample n's dy_n, with `scratch` values of scratch
        /// (the calling thread's own).
        grad: &'a SampleGrad<'a>,
        /// How many scratch values `grad` needs.
        scratch: usize,
    },
}

impl Upstream<'_> {
    /// Scratch values one chunk of the backward needs: the column matrix and its gradient
    /// (K P each), and for `PerSample` one sample's dy_n (Cout P) and `grad`'s own.
    fn chunk_scratch(&self, g: &ConvGeom) -> usize {
        let extra = match self {
            Upstream::Dense(_) => 0,
            Upstream::PerSample { scratch, .. } => g.y_len() + scratch,
        };
        2 * g.k() * g.p() + extra
    }
}

/// Backward. dy (N, Cout, P). dw and db are accumulated; dx comes with whether to add to it
/// (`true`) or overwrite it (`false`: a gradient not started this step, each sample's part then
/// zeroed just before its col2im, while it is in cache, instead of in a pass of its own).
/// From y_n = w . cols_n + b:
///   dw (Cout, K)      += sum over n of dy_n (Cout, P) . cols_n^T (P, K)
///   `db[co]`          += sum over n and p of `dy_n[co, p]`
///   dcols_n (K, P)     = w^T (K, Cout) . dy_n (Cout, P),  then dx_n += col2im(dcols_n)
/// Each chunk of samples sums its own dw and db into `partials` (scratch the caller keeps from
/// step to step); the partials are then added in chunk order. `scratch`: also kept by the
/// caller, one piece per chunk (`Upstream::chunk_scratch`), as each chunk runs on one thread.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    precision: Precision,
    dy: Upstream,
    x: &[f32],
    w: &[f32],
    dx: Option<(&mut [f32], bool)>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    g: &ConvGeom,
    partials: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) {
    let (k, cl) = (g.k(), chunk_len(g.n));
    let want = (dw.is_some(), db.is_some());
    // per chunk: dw partial (Cout K), then db partial (Cout)
    let part_len = g.cout * k + g.cout;
    partials.clear();
    partials.resize(g.n.div_ceil(cl) * part_len, 0.0);
    let per_chunk = dy.chunk_scratch(g);
    // w^T (K, Cout), the left operand of every sample's dcols_n
    let wt = dx
        .is_some()
        .then(|| Lhs::new(precision, Mat::new(w, g.cout, k).t()));
    let wt = wt.as_ref();
    let work = grow(scratch, chunks(g.n) * per_chunk).par_chunks_mut(per_chunk.max(1));
    let parts = partials.par_chunks_mut(part_len).zip(work).enumerate();
    let chunk = |c: usize, part: &mut [f32], work: &mut [f32], dxs: Option<(&mut [f32], bool)>| {
        let samples = c * cl..((c + 1) * cl).min(g.n);
        backward_chunk(precision, &dy, x, wt, samples, part, work, dxs, want, g)
    };
    match dx {
        Some((dx, add)) => parts
            .zip(dx.par_chunks_mut(cl * g.x_len()))
            .for_each(|((c, (part, work)), dxs)| chunk(c, part, work, Some((dxs, add)))),
        None => parts.for_each(|(c, (part, work))| chunk(c, part, work, None)),
    }
    let (mut dw, mut db) = (dw, db);
    for part in partials.chunks_exact(part_len) {
        let (pw, pb) = part.split_at(g.cout * k);
        match dw.as_deref_mut() {
            Some(dw) if dw_partial_transposed(precision, g) => {
                // the partial is dw^T (K, Cout)
                for (co, row) in dw.chunks_exact_mut(k).enumerate() {
                    row.iter_mut()
                        .zip(pw[co..].iter().step_by(g.cout))
                        .for_each(|(d, s)| *d += s);
                }
            }
            Some(dw) => dw.iter_mut().zip(pw).for_each(|(d, s)| *d += s),
            None => {}
        }
        if let Some(db) = db.as_deref_mut() {
            db.iter_mut().zip(pb).for_each(|(d, s)| *d += s);
        }
    }
}

/// Whether a chunk's dw partial is kept as dw^T (K, Cout), summed as
/// `dw_n^T = cols_n (K, P) . dy_n^T (P, Cout)`, instead of `dw_n = dy_n . cols_n^T`: in bfloat16
/// when K > Cout. The bfloat16 kernel packs its right operand per product, and a transposed
/// source (cols_n^T, or dy_n^T) is its slow case: this way the transposed one has Cout columns
/// instead of K (64 instead of 288 for the cnn's second convolution). Float32 never changes.
fn dw_partial_transposed(precision: Precision, g: &ConvGeom) -> bool {
    precision == Precision::Bf16 && g.k() > g.cout
}

/// The backward of one chunk of samples, on the calling thread: its dw and db partials in
/// `part` (when `want` says they are needed) and, if given, dx of its samples, added to or
/// overwritten as its flag says (`wt`, the weight's transpose, is then given too). `work`: the
/// chunk's scratch (`Upstream::chunk_scratch`).
#[allow(clippy::too_many_arguments)]
fn backward_chunk(
    precision: Precision,
    dy: &Upstream,
    x: &[f32],
    wt: Option<&Lhs>,
    samples: std::ops::Range<usize>,
    part: &mut [f32],
    work: &mut [f32],
    mut dxs: Option<(&mut [f32], bool)>,
    (want_w, want_b): (bool, bool),
    g: &ConvGeom,
) {
    let (k, p, n0) = (g.k(), g.p(), samples.start);
    let (pw, pb) = part.split_at_mut(g.cout * k);
    let (cols, rest) = work.split_at_mut(k * p);
    let (dcols, rest) = rest.split_at_mut(k * p);
    for n in samples {
        let dyn_: &[f32] = match dy {
            Upstream::Dense(dy) => &dy[n * g.y_len()..][..g.y_len()],
            Upstream::PerSample { grad, .. } => {
                let (dy_buf, grad_scratch) = rest.split_at_mut(g.y_len());
                grad(n, dy_buf, grad_scratch);
                dy_buf
            }
        };
        let d = Mat::new(dyn_, g.cout, p);
        if want_w {
            im2col_sample(cols, &x[n * g.x_len()..][..g.x_len()], g);
            let cols = Mat::new(cols, k, p);
            if dw_partial_transposed(precision, g) {
                matmul_serial(precision, pw, cols, d.t(), true);
            } else {
                matmul_serial(precision, pw, d, cols.t(), true);
            }
        }
        if want_b {
            for (s, run) in pb.iter_mut().zip(dyn_.chunks_exact(p)) {
                *s += lane_sum(run, |v| v);
            }
        }
        if let (Some((dxs, add)), Some(wt)) = (dxs.as_mut(), wt) {
            matmul_lhs_serial(dcols, wt, d, false);
            let dxn = &mut dxs[(n - n0) * g.x_len()..][..g.x_len()];
            if !*add {
                dxn.fill(0.0); // col2im adds overlapping patches: it starts from zero
            }
            col2im_sample(dxn, dcols, g);
        }
    }
}
