//! Conv2d by im2col: each sample's input patches are laid out as the columns of a matrix, so the
//! convolution becomes one matrix product per sample on the GEMM crate.
//!
//! Shapes: x (N, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout), y (N, Cout, Ho, Wo),
//! K = Cin * kh * kw rows of cols, P = Ho * Wo columns; Ho = (H + 2 pad - kh) / stride + 1.
//! Samples are processed in parallel (rayon), each with single-threaded matrix products.

use crate::matmul::{matmul_serial, Mat};
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
    /// Rows of a sample's column matrix.
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    /// Columns of a sample's column matrix (output positions).
    pub fn p(&self) -> usize {
        self.ho() * self.wo()
    }
    pub fn cols_len(&self) -> usize {
        self.n * self.k() * self.p()
    }
}

/// cols (K, P) of one sample: cols[(ci, ky, kx), (oy, ox)] = x[ci, oy*s + ky - pad, ox*s + kx - pad]
/// (zero outside the image).
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn im2col(cols: &mut [f32], x: &[f32], g: &ConvGeom) {
    let (ho, wo, p) = (g.ho(), g.wo(), g.p());
    for ci in 0..g.cin {
        let plane = &x[ci * g.h * g.w..][..g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &mut cols[((ci * g.kh + ky) * g.kw + kx) * p..][..p];
                for oy in 0..ho {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    let out = &mut row[oy * wo..][..wo];
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
    }
}

/// The adjoint of im2col: each column entry's gradient goes back to the pixel it was copied from.
/// dx[ci, iy, ix] += sum of dcols entries that read x[ci, iy, ix].
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn col2im(dx: &mut [f32], dcols: &[f32], g: &ConvGeom) {
    let (ho, wo, p) = (g.ho(), g.wo(), g.p());
    for ci in 0..g.cin {
        let plane = &mut dx[ci * g.h * g.w..][..g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = &dcols[((ci * g.kh + ky) * g.kw + kx) * p..][..p];
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
    }
}

/// Forward. cols (N, K, P) is filled and kept for the backward.
/// y_n (Cout, P) = w (Cout, K) . cols_n (K, P) + b
pub fn forward(
    y: &mut [f32],
    cols: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    g: &ConvGeom,
) {
    let (k, p) = (g.k(), g.p());
    let x_len = g.cin * g.h * g.w;
    y.par_chunks_exact_mut(g.cout * p)
        .zip(cols.par_chunks_exact_mut(k * p))
        .zip(x.par_chunks_exact(x_len))
        .for_each(|((yn, cn), xn)| {
            im2col(cn, xn, g);
            if let Some(b) = b {
                for (row, &bias) in yn.chunks_exact_mut(p).zip(b) {
                    row.fill(bias);
                }
            }
            matmul_serial(yn, Mat::new(w, g.cout, k), Mat::new(cn, k, p), b.is_some());
        });
}

/// Backward. dy (N, Cout, P). Gradients are accumulated.
/// From y_n = w . cols_n + b:
///   dw (Cout, K)   += sum_n dy_n (Cout, P) . cols_n^T (P, K)
///   dcols_n (K, P)  = w^T (K, Cout) . dy_n (Cout, P),  then dx_n += col2im(dcols_n)
///   db[co]         += sum_n sum_p dy_n[co, p]
/// dw is summed per fixed group of samples, then the groups in order, so that the result does
/// not depend on how rayon schedules the groups.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dy: &[f32],
    cols: &[f32],
    w: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    g: &ConvGeom,
    groups: usize,
) {
    let (k, p) = (g.k(), g.p());
    let y_len = g.cout * p;
    if let Some(db) = db {
        for dyn_ in dy.chunks_exact(y_len) {
            for (d, row) in db.iter_mut().zip(dyn_.chunks_exact(p)) {
                *d += row.iter().sum::<f32>();
            }
        }
    }
    if let Some(dw) = dw {
        let per_group = g.n.div_ceil(groups.max(1)).max(1);
        let partials: Vec<Vec<f32>> = dy
            .par_chunks(per_group * y_len)
            .zip(cols.par_chunks(per_group * k * p))
            .map(|(dyg, cg)| {
                let mut part = vec![0.0f32; g.cout * k];
                for (dyn_, cn) in dyg.chunks_exact(y_len).zip(cg.chunks_exact(k * p)) {
                    matmul_serial(
                        &mut part,
                        Mat::new(dyn_, g.cout, p),
                        Mat::new(cn, k, p).t(),
                        true,
                    );
                }
                part
            })
            .collect();
        for part in partials {
            for (d, v) in dw.iter_mut().zip(part) {
                *d += v;
            }
        }
    }
    if let Some(dx) = dx {
        let x_len = g.cin * g.h * g.w;
        dx.par_chunks_exact_mut(x_len)
            .zip(dy.par_chunks_exact(y_len))
            .for_each_init(
                || vec![0.0f32; k * p],
                |dcols, (dxn, dyn_)| {
                    matmul_serial(
                        dcols,
                        Mat::new(w, g.cout, k).t(),
                        Mat::new(dyn_, g.cout, p),
                        false,
                    );
                    col2im(dxn, dcols, g);
                },
            );
    }
}
