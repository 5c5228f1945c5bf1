//! AvgPool2d without padding and with floor output sizes (PyTorch's defaults `padding = 0`,
//! `ceil_mode = False`; every window then lies inside the input, so `count_include_pad` changes
//! nothing): each output is the mean of its kh x kw window,
//!   `y[oy, ox] = sum_{ky < kh, kx < kw} x[oy * sh + ky, ox * sw + kx] / (kh * kw)`,
//! with Ho = (H - kh) / sh + 1 and Wo = (W - kw) / sw + 1 (`max_pool2d::out_size`).
//!
//! As PyTorch's CPU kernel does, the window is summed in row-major order in f32 and then divided
//! (not multiplied by a rounded 1 / (kh * kw)). Planes (one (n, c) each) are independent and
//! spread over threads, `PLANES` per task as in `max_pool2d`.

use super::max_pool2d::out_size;
use rayon::prelude::*;

/// Planes per parallel task.
const PLANES: usize = 64;

/// Window or stride sizes, (height, width).
pub type Size2 = (usize, usize);

/// Output (Ho, Wo) for an H x W input: floor((H - kh) / sh) + 1 each, 0 when the window does
/// not fit.
pub fn out_dims(h: usize, w: usize, kernel: Size2, stride: Size2) -> Size2 {
    (
        out_size(h, kernel.0, stride.0),
        out_size(w, kernel.1, stride.1),
    )
}

fn check(x_len: usize, y_len: usize, h: usize, w: usize, kernel: Size2, stride: Size2) -> Size2 {
    assert!(
        kernel.0 > 0 && kernel.1 > 0 && stride.0 > 0 && stride.1 > 0,
        "avg_pool2d: kernel and stride must be positive"
    );
    assert!(
        h > 0 && w > 0 && x_len.is_multiple_of(h * w),
        "avg_pool2d: {x_len} values are not {h} x {w} planes"
    );
    let (ho, wo) = out_dims(h, w, kernel, stride);
    assert_eq!(y_len, x_len / (h * w) * ho * wo, "avg_pool2d: output size");
    (ho, wo)
}

/// Forward. x: (N * C, H, W) planes; y: (N * C, Ho, Wo), overwritten.
pub fn forward(y: &mut [f32], x: &[f32], h: usize, w: usize, kernel: Size2, stride: Size2) {
    let (ho, wo) = check(x.len(), y.len(), h, w, kernel, stride);
    if y.is_empty() {
        return;
    }
    let ((kh, kw), (sh, sw)) = (kernel, stride);
    let count = (kh * kw) as f32;
    y.par_chunks_mut(ho * wo * PLANES)
        .zip(x.par_chunks(h * w * PLANES))
        .for_each(|(ys, xs)| {
            for (yp, xp) in ys.chunks_exact_mut(ho * wo).zip(xs.chunks_exact(h * w)) {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut sum = 0.0f32;
                        for ky in 0..kh {
                            let at = (oy * sh + ky) * w + ox * sw;
                            for &v in &xp[at..at + kw] {
                                sum += v;
                            }
                        }
                        yp[oy * wo + ox] = sum / count;
                    }
                }
            }
        });
}

/// Backward. dy: (N * C, Ho, Wo); dx: (N * C, H, W), accumulated (see `kernels/mod.rs`).
///
/// y_o = sum_{i in window(o)} x_i / (kh kw), so dy_o/dx_i = 1 / (kh kw) when i is in window(o)
/// and 0 otherwise, and dL/dx_i = sum over the windows o that contain i of dy_o / (kh kw):
/// each output spreads dy_o / (kh kw) over its window, adding where windows overlap
/// (stride < kernel), and inputs in no window (stride > kernel, or the rows and columns past
/// the last window) get nothing. `dx += that`.
pub fn backward(dx: &mut [f32], dy: &[f32], h: usize, w: usize, kernel: Size2, stride: Size2) {
    let (ho, wo) = check(dx.len(), dy.len(), h, w, kernel, stride);
    if dy.is_empty() {
        return;
    }
    let ((kh, kw), (sh, sw)) = (kernel, stride);
    let count = (kh * kw) as f32;
    dx.par_chunks_mut(h * w * PLANES)
        .zip(dy.par_chunks(ho * wo * PLANES))
        .for_each(|(gs, ds)| {
            for (gp, dp) in gs.chunks_exact_mut(h * w).zip(ds.chunks_exact(ho * wo)) {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let share = dp[oy * wo + ox] / count;
                        for ky in 0..kh {
                            let at = (oy * sh + ky) * w + ox * sw;
                            for g in &mut gp[at..at + kw] {
                                *g += share;
                            }
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::layer_norm::tests::{assert_close, central_differences, draws};

    /// f64 average pooling straight from the definition, over `planes` planes.
    fn reference(x: &[f64], planes: usize, h: usize, w: usize, k: Size2, st: Size2) -> Vec<f64> {
        let (ho, wo) = out_dims(h, w, k, st);
        let mut y = Vec::new();
        for p in 0..planes {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = 0.0;
                    for iy in oy * st.0..oy * st.0 + k.0 {
                        for ix in ox * st.1..ox * st.1 + k.1 {
                            sum += x[(p * h + iy) * w + ix];
                        }
                    }
                    y.push(sum / (k.0 * k.1) as f64);
                }
            }
        }
        y
    }

    /// (planes, H, W, kernel, stride): square and not, overlapping windows (stride < kernel),
    /// gaps (stride > kernel), leftover rows and columns, a 1 x 1 window, and more than
    /// `PLANES` planes (several tasks).
    const CASES: [(usize, usize, usize, Size2, Size2); 7] = [
        (3, 6, 6, (2, 2), (2, 2)),
        (2, 7, 5, (3, 2), (2, 1)),
        (2, 8, 9, (2, 3), (3, 4)),
        (1, 5, 5, (5, 5), (1, 1)),
        (2, 4, 3, (1, 1), (1, 1)),
        (1, 7, 8, (3, 3), (1, 1)),
        (130, 5, 4, (2, 2), (1, 2)),
    ];

    #[test]
    fn forward_matches_the_definition() {
        for (planes, h, w, k, st) in CASES {
            let x = draws(planes * h * w, 1, -3.0, 3.0);
            let (ho, wo) = out_dims(h, w, k, st);
            let mut y = vec![f32::NAN; planes * ho * wo];
            forward(&mut y, &x, h, w, k, st);
            let want = reference(
                &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                planes,
                h,
                w,
                k,
                st,
            );
            let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            assert_close(
                &y,
                &want,
                1e-6,
                1e-6,
                &format!("{h}x{w}, kernel {k:?}, stride {st:?}"),
            );
        }
    }

    #[test]
    fn backward_matches_central_differences_of_sum_y_r() {
        for (planes, h, w, k, st) in CASES {
            let (ho, wo) = out_dims(h, w, k, st);
            let (x, r) = (
                draws(planes * h * w, 2, -3.0, 3.0),
                draws(planes * ho * wo, 3, -1.0, 1.0),
            );
            let want = central_differences(&[&x], |p| {
                let y = reference(&p[0], planes, h, w, k, st);
                y.iter().zip(&r).map(|(y, &r)| y * r as f64).sum()
            });
            let mut dx = vec![0.25; x.len()]; // backward adds onto what is there
            backward(&mut dx, &r, h, w, k, st);
            let want: Vec<f32> = want[0].iter().map(|v| v + 0.25).collect();
            assert_close(
                &dx,
                &want,
                1e-6,
                1e-5,
                &format!("{h}x{w}, kernel {k:?}, stride {st:?}"),
            );
        }
    }

    #[test]
    fn a_window_larger_than_the_input_gives_an_empty_output() {
        assert_eq!(out_dims(2, 5, (3, 3), (1, 1)), (0, 3));
        let (x, mut y, mut dx) = (vec![1.0; 10], Vec::<f32>::new(), vec![0.0; 10]);
        forward(&mut y, &x, 2, 5, (3, 3), (1, 1));
        backward(&mut dx, &y, 2, 5, (3, 3), (1, 1));
        assert_eq!(dx, vec![0.0; 10]);
    }
}
