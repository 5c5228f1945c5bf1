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

/// A left operand made ready once for many products in one precision ([`matmul_lhs_serial`]):
/// in bfloat16 it is rounded and packed once (`bf16::PackedLhs`); in float32 it is the view
/// itself and every product is [`matmul_serial`]'s, unchanged.
pub enum Lhs<'a> {
    /// Float32: the operand as given.
    F32(Mat<'a>),
    /// bfloat16: the operand packed for this CPU's kernel.
    Bf16(bf16::PackedLhs),
}

impl<'a> Lhs<'a> {
    /// `a` made ready for products in precision `p`.
    pub fn new(p: Precision, a: Mat<'a>) -> Lhs<'a> {
        match p {
            Precision::F32 => Lhs::F32(a),
            Precision::Bf16 => Lhs::Bf16(bf16::PackedLhs::new(a)),
        }
    }
}

/// [`matmul_serial`] with a left operand made ready by [`Lhs::new`]: the same results (to the
/// bit) without preparing `a` again for every product.
#[inline]
pub fn matmul_lhs_serial(dst: &mut [f32], a: &Lhs, b: Mat, accumulate: bool) {
    match a {
        Lhs::F32(a) => matmul::matmul_serial(dst, *a, b, accumulate),
        Lhs::Bf16(a) => bf16::matmul_packed_serial(dst, a, b, accumulate),
    }
}
