//! Conv2d by im2col and one matrix product per batch.
//!
//! Shapes: x (N, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout), y (N, Cout, Ho, Wo),
//! K = Cin * kh * kw, P = Ho * Wo; Ho = (H + 2 pad - kh) / stride + 1.
//!
//! The input patches of the whole batch are laid out as one matrix cols (K, N * P): column
//! n * P + p holds the patch under output position p of sample n. The convolution is then one
//! large product, y' (Cout, N * P) = w (Cout, K) . cols, which the GEMM crate runs near its peak
//! on all threads (one small product per sample ran at a fraction of it); y' is then permuted to
//! PyTorch's (N, Cout, P) layout, a copy of contiguous runs of P values.

use crate::matmul::{matmul, Mat};
use multiversion::multiversion;
use rayon::prelude::*;

/// The geometry of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Rows of the column matrix: one per (input channel, kernel row, kernel column).
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    /// Output positions per sample.
    pub fn p(&self) -> usize {
        self.ho() * self.wo()
    }
    /// Columns of the column matrix.
    pub fn np(&self) -> usize {
        self.n * self.p()
    }
    /// Values of the column matrix (K, N * P).
    pub fn cols_len(&self) -> usize {
        self.k() * self.np()
    }
    /// Values of the output (or of its (Cout, N * P) permutation).
    pub fn out_len(&self) -> usize {
        self.cout * self.np()
    }
}

/// One row of cols: row k = (ci, ky, kx), for every sample and output position:
/// cols[k, n * P + oy * Wo + ox] = x[n, ci, oy * s + ky - pad, ox * s + kx - pad] (0 outside).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn im2col_row(row: &mut [f32], x: &[f32], k: usize, g: &ConvGeom) {
    let (ho, wo, p) = (g.ho(), g.wo(), g.p());
    let (ci, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
    let x_len = g.cin * g.h * g.w;
    for (n, out) in row.chunks_exact_mut(p).enumerate() {
        let plane = &x[n * x_len + ci * g.h * g.w..][..g.h * g.w];
        for oy in 0..ho {
            let out = &mut out[oy * wo..(oy + 1) * wo];
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy >= g.h as isize {
                out.fill(0.0);
                continue;
            }
            let src = &plane[iy as usize * g.w..][..g.w];
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
/// back to the pixel it was copied from. dx_n[ci, iy, ix] += every dcols[k, n * P + p] that read it.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn col2im_sample(dx: &mut [f32], dcols: &[f32], n: usize, g: &ConvGeom) {
    let (ho, wo, p, np) = (g.ho(), g.wo(), g.p(), g.np());
    for k in 0..g.k() {
        let (ci, ky, kx) = (k / (g.kh * g.kw), (k / g.kw) % g.kh, k % g.kw);
        let plane = &mut dx[ci * g.h * g.w..][..g.h * g.w];
        let row = &dcols[k * np + n * p..][..p];
        for oy in 0..ho {
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let dst = &mut plane[iy as usize * g.w..][..g.w];
            for (ox, &d) in row[oy * wo..][..wo].iter().enumerate() {
                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                if ix >= 0 && (ix as usize) < g.w {
                    dst[ix as usize] += d;
                }
            }
        }
    }
}

/// (Cout, N, P) -> (N, Cout, P), plus a per-channel bias. Contiguous runs of P values.
fn channels_to_samples(y: &mut [f32], t: &[f32], b: Option<&[f32]>, g: &ConvGeom) {
    let (p, np) = (g.p(), g.np());
    y.par_chunks_mut(g.cout * p)
        .enumerate()
        .for_each(|(n, yn)| {
            for (co, run) in yn.chunks_exact_mut(p).enumerate() {
                run.copy_from_slice(&t[co * np + n * p..][..p]);
                if let Some(b) = b {
                    run.iter_mut().for_each(|v| *v += b[co]);
                }
            }
        });
}

/// (N, Cout, P) -> (Cout, N, P).
fn samples_to_channels(t: &mut [f32], y: &[f32], g: &ConvGeom) {
    let (p, np) = (g.p(), g.np());
    t.par_chunks_mut(np).enumerate().for_each(|(co, tc)| {
        for (n, run) in tc.chunks_exact_mut(p).enumerate() {
            run.copy_from_slice(&y[n * g.cout * p + co * p..][..p]);
        }
    });
}

/// Forward. cols (K, N * P) is filled and kept for the backward; t (Cout, N * P) is scratch.
/// y' (Cout, N P) = w (Cout, K) . cols (K, N P);  y[n, co, p] = y'[co, n P + p] + b[co]
#[allow(clippy::too_many_arguments)]
pub fn forward(
    y: &mut [f32],
    cols: &mut [f32],
    t: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    g: &ConvGeom,
) {
    let (k, np) = (g.k(), g.np());
    cols.par_chunks_mut(np)
        .enumerate()
        .for_each(|(row, out)| im2col_row(out, x, row, g));
    matmul(t, Mat::new(w, g.cout, k), Mat::new(cols, k, np), false);
    channels_to_samples(y, t, b, g);
}

/// Backward. dy (N, Cout, P). Gradients are accumulated. t (Cout, N P) and dcols (K, N P) are
/// scratch. From y' = w . cols + b:
///   dy' (Cout, N P)  = dy permuted to channels first
///   dw (Cout, K)    += dy' . cols^T              (a sum over every sample and position)
///   db[co]          += sum of dy'[co, :]
///   dcols (K, N P)   = w^T (K, Cout) . dy',  then dx_n += col2im(dcols, n) for every sample
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dy: &[f32],
    cols: &[f32],
    w: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    g: &ConvGeom,
    t: &mut [f32],
    dcols: &mut [f32],
) {
    let (k, np) = (g.k(), g.np());
    samples_to_channels(t, dy, g);
    if let Some(db) = db {
        for (d, row) in db.iter_mut().zip(t.chunks_exact(np)) {
            *d += row.iter().sum::<f32>();
        }
    }
    if let Some(dw) = dw {
        matmul(dw, Mat::new(t, g.cout, np), Mat::new(cols, k, np).t(), true);
    }
    if let Some(dx) = dx {
        matmul(
            dcols,
            Mat::new(w, g.cout, k).t(),
            Mat::new(t, g.cout, np),
            false,
        );
        let x_len = g.cin * g.h * g.w;
        dx.par_chunks_mut(x_len)
            .enumerate()
            .for_each(|(n, dxn)| col2im_sample(dxn, dcols, n, g));
    }
}
