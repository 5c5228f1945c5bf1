//! A sample's column matrix (im2col) and its adjoint (col2im): the data movement of the
//! convolution, with the stride 1 "same" case as whole shifted planes.

use super::ConvGeom;
use multiversion::multiversion;

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
pub(super) fn im2col_sample(cols: &mut [f32], x: &[f32], g: &ConvGeom) {
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
pub(super) fn col2im_sample(dx: &mut [f32], dcols: &mut [f32], g: &ConvGeom) {
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
