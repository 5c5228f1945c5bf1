//! Dropout, inverted: in training each value is kept with probability 1 - p and scaled by
//! 1 / (1 - p), so that eval mode is the identity.

use crate::rng::Rng;

/// Forward. mask receives the factor each value was multiplied by (0 or 1 / (1 - p)).
/// y = x * mask
pub fn forward(y: &mut [f32], mask: &mut [f32], x: &[f32], p: f32, rng: &mut Rng) {
    // p = 1 drops everything (PyTorch returns zeros rather than dividing by zero)
    let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
    for ((y, m), &x) in y.iter_mut().zip(mask.iter_mut()).zip(x) {
        *m = if rng.next_f32() < p { 0.0 } else { scale };
        *y = x * *m;
    }
}

/// Backward: dx += dy * mask (the mask is the derivative of y = x * mask).
pub fn backward(dx: &mut [f32], dy: &[f32], mask: &[f32]) {
    for ((dx, &dy), &m) in dx.iter_mut().zip(dy).zip(mask) {
        *dx += dy * m;
    }
}
