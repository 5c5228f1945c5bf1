//! Elementwise add and mul of two tensors of the same shape, for users' own model code.

/// y = a + b
pub fn add_forward(y: &mut [f32], a: &[f32], b: &[f32]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = a + b;
    }
}

/// y = a * b
pub fn mul_forward(y: &mut [f32], a: &[f32], b: &[f32]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = a * b;
    }
}

/// dx += dy (the backward of add for either operand)
pub fn accumulate(dx: &mut [f32], dy: &[f32]) {
    for (dx, &dy) in dx.iter_mut().zip(dy) {
        *dx += dy;
    }
}

/// For y = a * b: dL/da = dy * b. dx += dy * other
pub fn mul_backward(dx: &mut [f32], dy: &[f32], other: &[f32]) {
    for ((dx, &dy), &o) in dx.iter_mut().zip(dy).zip(other) {
        *dx += dy * o;
    }
}
