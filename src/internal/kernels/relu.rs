//! ReLU: y = max(x, 0). Large tensors (a convolution's output) are split over threads.

use multiversion::multiversion;
use rayon::prelude::*;

/// Values per parallel task: below this a tensor is done on the calling thread.
const CHUNK: usize = 1 << 16;

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn forward_chunk(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        // NaN passes through, as torch.relu does
        *y = if x < 0.0 { 0.0 } else { x };
    }
}

/// Forward. x, y: any shape, same length.
pub fn forward(y: &mut [f32], x: &[f32]) {
    if y.len() <= CHUNK {
        forward_chunk(y, x);
    } else {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| forward_chunk(y, x));
    }
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2+fma"))]
fn backward_chunk(dx: &mut [f32], add: bool, dy: &[f32], y: &[f32]) {
    let terms = dx.iter_mut().zip(dy.iter().zip(y));
    if add {
        terms.for_each(|(dx, (&dy, &y))| {
            if y > 0.0 {
                *dx += dy;
            }
        });
    } else {
        terms.for_each(|(dx, (&dy, &y))| *dx = if y > 0.0 { dy } else { 0.0 });
    }
}

/// Backward: dy/dx = 1 where y > 0, else 0 (PyTorch's choice at x = 0 is 0).
/// `dx += dy * [y > 0]` when `add`, else `dx = dy * [y > 0]` (a gradient not started this
/// step: then dx is neither zeroed first nor read).
pub fn backward(dx: &mut [f32], add: bool, dy: &[f32], y: &[f32]) {
    if dx.len() <= CHUNK {
        backward_chunk(dx, add, dy, y);
    } else {
        dx.par_chunks_mut(CHUNK)
            .zip(dy.par_chunks(CHUNK))
            .zip(y.par_chunks(CHUNK))
            .for_each(|((dx, dy), y)| backward_chunk(dx, add, dy, y));
    }
}
