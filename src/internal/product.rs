//! A layer's matrix product in the graph's [`Precision`]: one branch per product, to the float32
//! GEMM (`internal::matmul`) or the bfloat16 kernel (`internal::bf16`), both with the same
//! contract (`dst = a * b`, or `+=` when `accumulate`; any strides).
//!
//! The bfloat16 kernel panics on a CPU without one: [`crate::Graph::set_precision`] refuses
//! bfloat16 there, so a graph never reaches it.

use crate::internal::{bf16, matmul};
use crate::matmul::Mat;
use crate::precision::Precision;

/// `dst (m, n) = a (m, k) * b (k, n)` (or `+=` when `accumulate`) on the pool's threads.
#[inline]
pub fn matmul(p: Precision, dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    match p {
        Precision::F32 => matmul::matmul(dst, a, b, accumulate),
        Precision::Bf16 => bf16::matmul(dst, a, b, accumulate),
    }
}

/// [`matmul()`] on the calling thread only (inside a parallel loop that keeps every thread busy).
#[inline]
pub fn matmul_serial(p: Precision, dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    match p {
        Precision::F32 => matmul::matmul_serial(dst, a, b, accumulate),
        Precision::Bf16 => bf16::matmul_serial(dst, a, b, accumulate),
    }
}
