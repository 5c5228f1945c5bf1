//! Linear: y = x W^T + b.
//!
//! The weight W is PyTorch's (O, I), stored either that way or as its transpose W^T (I, O)
//! (a first layer with a sparse input keeps W^T; see `Graph::linear_wt`). The GEMM
//! takes any strides, so both layouts cost the same here.
//!
//! Every product runs in the given [`Precision`] (float32, or bfloat16 operands with float32
//! sums: `internal::product`); the bias and its gradient are float32 always.

use crate::internal::product::matmul;
use crate::matmul::Mat;
use crate::precision::Precision;

/// W as the (O, I) matrix of the formulas, whichever way it is stored.
fn weight(w: &[f32], o: usize, i: usize, transposed: bool) -> Mat<'_> {
    if transposed {
        Mat::new(w, i, o).t()
    } else {
        Mat::new(w, o, i)
    }
}

/// Forward.
/// x: (N, I), w: (O, I) or, `transposed`, (I, O); b: (O) or none; y: (N, O), fully overwritten.
/// `y[n, o] = sum_i x[n, i] * w[o, i] + b[o]`
#[allow(clippy::too_many_arguments)]
pub fn forward(
    p: Precision,
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    transposed: bool,
    b: Option<&[f32]>,
    n: usize,
    i: usize,
    o: usize,
) {
    let wt = weight(w, o, i, transposed).t();
    match b {
        Some(b) => {
            // start from the bias in every row, then add the product onto it
            for row in y.chunks_exact_mut(o) {
                row.copy_from_slice(b);
            }
            matmul(p, y, Mat::new(x, n, i), wt, true);
        }
        None => matmul(p, y, Mat::new(x, n, i), wt, false),
    }
}

/// Backward. dy: (N, O). dx and dw, when asked for, come with whether to add to them (`true`)
/// or overwrite them (`false`: a gradient not started this step, which then needs no pass that
/// zeroes it first and no reading back of those zeros); db is accumulated; dw is laid out as w is.
/// From `y[n, o] = sum_i x[n, i] w[o, i] + b[o]`:
///   `dL/dx[n, i] = sum_o dy[n, o] * w[o, i]`    => dx (N, I) += dy (N, O) . w (O, I)
///   `dL/dw[o, i] = sum_n dy[n, o] * x[n, i]`    => dw (O, I) += dy^T (O, N) . x (N, I)
///                                    transposed: dw^T (I, O) += x^T (I, N) . dy (N, O)
///   `dL/db[o] = sum_n dy[n, o]`
#[allow(clippy::too_many_arguments)]
pub fn backward(
    p: Precision,
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    transposed: bool,
    dx: Option<(&mut [f32], bool)>,
    dw: Option<(&mut [f32], bool)>,
    db: Option<&mut [f32]>,
    n: usize,
    i: usize,
    o: usize,
) {
    if let Some((dx, add)) = dx {
        matmul(p, dx, Mat::new(dy, n, o), weight(w, o, i, transposed), add);
    }
    if let Some((dw, add)) = dw {
        let (dy, x) = (Mat::new(dy, n, o), Mat::new(x, n, i));
        if transposed {
            matmul(p, dw, x.t(), dy, add);
        } else {
            matmul(p, dw, dy.t(), x, add);
        }
    }
    if let Some(db) = db {
        bias_grad(db, dy, o);
    }
}

/// db (O) += sum over rows of dy (N, O).
pub fn bias_grad(db: &mut [f32], dy: &[f32], o: usize) {
    for row in dy.chunks_exact(o) {
        for (g, d) in db.iter_mut().zip(row) {
            *g += d;
        }
    }
}
