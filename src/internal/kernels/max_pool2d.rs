//! MaxPool2d without padding: output size floor((H - k) / s) + 1; the gradient goes to the
//! first maximum of each window (in row-major scan order), as PyTorch's CPU kernel does.

use multiversion::multiversion;
use rayon::prelude::*;

/// Output spatial size for one dimension.
pub fn out_size(size: usize, k: usize, stride: usize) -> usize {
    if size < k {
        0
    } else {
        (size - k) / stride + 1
    }
}

/// Forward. x: (N * C, H, W) planes; y: (N * C, Ho, Wo); argmax: (N * C, Ho, Wo) receives
/// the index of each output's maximum inside its input plane. Planes are independent: spread
/// over threads.
pub fn forward(
    y: &mut [f32],
    argmax: &mut [u32],
    x: &[f32],
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
) {
    let (ho, wo) = (out_size(h, k, stride), out_size(w, k, stride));
    const PLANES: usize = 64;
    let xs = x.par_chunks(h * w * PLANES);
    let outs = y
        .par_chunks_mut(ho * wo * PLANES)
        .zip(argmax.par_chunks_mut(ho * wo * PLANES));
    xs.zip(outs)
        .for_each(|(xp, (yp, ap))| forward_planes(yp, ap, xp, h, w, k, stride));
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn forward_planes(
    y: &mut [f32],
    argmax: &mut [u32],
    x: &[f32],
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
) {
    let (ho, wo) = (out_size(h, k, stride), out_size(w, k, stride));
    let planes = x.chunks_exact(h * w);
    let outs = y
        .chunks_exact_mut(ho * wo)
        .zip(argmax.chunks_exact_mut(ho * wo));
    for (xp, (yp, ap)) in planes.zip(outs) {
        if k == 2 && stride == 2 {
            pool_2x2(yp, ap, xp, w, ho, wo);
            continue;
        }
        for oy in 0..ho {
            for ox in 0..wo {
                let mut best = f32::NEG_INFINITY;
                let mut best_at = (oy * stride) * w + ox * stride;
                for ky in 0..k {
                    for kx in 0..k {
                        let at = (oy * stride + ky) * w + ox * stride + kx;
                        let v = xp[at];
                        // strictly greater keeps the first maximum; NaN wins, as in PyTorch
                        if v > best || v.is_nan() {
                            best = v;
                            best_at = at;
                            if v.is_nan() {
                                break;
                            }
                        }
                    }
                    if best.is_nan() {
                        break;
                    }
                }
                yp[oy * wo + ox] = best;
                ap[oy * wo + ox] = best_at as u32;
            }
        }
    }
}

/// The CNN's case, 2 x 2 windows with stride 2, without the general loop's bookkeeping: the
/// four candidates in scan order (top-left, top-right, bottom-left, bottom-right), each taking
/// over only when strictly greater, or NaN (as the general loop decides).
#[inline(always)]
fn pool_2x2(y: &mut [f32], argmax: &mut [u32], x: &[f32], w: usize, ho: usize, wo: usize) {
    for oy in 0..ho {
        let (top, bottom) = (
            &x[2 * oy * w..2 * oy * w + w],
            &x[(2 * oy + 1) * w..(2 * oy + 1) * w + w],
        );
        let (yr, ar) = (
            &mut y[oy * wo..(oy + 1) * wo],
            &mut argmax[oy * wo..(oy + 1) * wo],
        );
        for ox in 0..wo {
            let at = 2 * oy * w + 2 * ox;
            let (mut best, mut best_at) = (top[2 * ox], at);
            for (v, a) in [
                (top[2 * ox + 1], at + 1),
                (bottom[2 * ox], at + w),
                (bottom[2 * ox + 1], at + w + 1),
            ] {
                if !best.is_nan() && (v > best || v.is_nan()) {
                    best = v;
                    best_at = a;
                }
            }
            yr[ox] = best;
            ar[ox] = best_at as u32;
        }
    }
}

/// Backward: `y = x[argmax]`, so `dx[argmax] += dy`, and every other input gets nothing.
pub fn backward(dx: &mut [f32], dy: &[f32], argmax: &[u32], plane_in: usize, plane_out: usize) {
    dx.par_chunks_mut(plane_in)
        .zip(dy.par_chunks(plane_out))
        .zip(argmax.par_chunks(plane_out))
        .for_each(|((gp, dp), ap)| {
            for (&d, &a) in dp.iter().zip(ap) {
                gp[a as usize] += d;
            }
        });
}
