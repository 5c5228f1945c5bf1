//! Linear: y = x W^T + b.

use crate::matmul::{matmul, Mat};

/// Forward.
/// x: (N, I), w: (O, I), b: (O) or none; y: (N, O), fully overwritten.
/// y[n, o] = sum_i x[n, i] * w[o, i] + b[o]
pub fn forward(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    n: usize,
    i: usize,
    o: usize,
) {
    match b {
        Some(b) => {
            // start from the bias in every row, then add the product onto it
            for row in y.chunks_exact_mut(o) {
                row.copy_from_slice(b);
            }
            matmul(y, Mat::new(x, n, i), Mat::new(w, o, i).t(), true);
        }
        None => matmul(y, Mat::new(x, n, i), Mat::new(w, o, i).t(), false),
    }
}

/// Backward. dy: (N, O). Each gradient is accumulated when asked for.
/// From y[n, o] = sum_i x[n, i] w[o, i] + b[o]:
///   dL/dx[n, i] = sum_o dy[n, o] * w[o, i]      => dx (N, I) += dy (N, O) . w (O, I)
///   dL/dw[o, i] = sum_n dy[n, o] * x[n, i]      => dw (O, I) += dy^T (O, N) . x (N, I)
///   dL/db[o]    = sum_n dy[n, o]
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    n: usize,
    i: usize,
    o: usize,
) {
    if let Some(dx) = dx {
        matmul(dx, Mat::new(dy, n, o), Mat::new(w, o, i), true);
    }
    if let Some(dw) = dw {
        matmul(dw, Mat::new(dy, n, o).t(), Mat::new(x, n, i), true);
    }
    if let Some(db) = db {
        for row in dy.chunks_exact(o) {
            for (g, d) in db.iter_mut().zip(row) {
                *g += d;
            }
        }
    }
}
