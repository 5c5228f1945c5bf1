//! ReLU: y = max(x, 0).

/// Forward. x, y: any shape, same length.
pub fn forward(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        // NaN passes through, as torch.relu does
        *y = if x < 0.0 { 0.0 } else { x };
    }
}

/// Backward: dy/dx = 1 where y > 0, else 0 (PyTorch's choice at x = 0 is 0).
/// dx += dy * [y > 0]
pub fn backward(dx: &mut [f32], dy: &[f32], y: &[f32]) {
    for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
        if y > 0.0 {
            *dx += dy;
        }
    }
}
