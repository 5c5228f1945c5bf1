//! Matrix products through the `gemm` crate, behind a safe, checked interface.
//!
//! `gemm` computes `dst = alpha * dst + beta * lhs * rhs` over raw pointers with arbitrary
//! strides (column stride first), so transposed operands cost no copy. Here a matrix is a slice
//! with its row and column strides, and every call checks that each operand's last element lies
//! inside its slice before the unsafe call.

/// A read-only strided view of a row-major buffer.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    /// The buffer the matrix lies in; element (r, c) is `data[r * row_stride + c * col_stride]`.
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance in elements between one row and the next.
    pub row_stride: usize,
    /// Distance in elements between one column and the next.
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A (rows, cols) row-major matrix.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Mat<'a> {
        Mat {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Mat<'a> {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Panics unless the view's last element lies inside its slice.
    pub(crate) fn check(&self, what: &str) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matmul: {what} view out of bounds");
        }
    }
}

fn parallelism() -> gemm::Parallelism {
    match crate::runtime::threads() {
        1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// `dst (m, n) = a (m, k) * b (k, n)`, or `dst += a * b` when `accumulate`. `dst` is row-major.
pub fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_with(dst, a, b, accumulate, parallelism())
}

/// `matmul` on the calling thread only: for products small enough to sit in one core's cache,
/// run inside a parallel loop over samples that already keeps every thread busy.
pub fn matmul_serial(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_with(dst, a, b, accumulate, gemm::Parallelism::None)
}

/// Check a product's shapes and its right operand's view (a mismatch is the caller's bug:
/// panics), and finish the products with nothing to sum. `(m, k)`: the left operand's rows and
/// columns (a caller holding it as a `Mat` checks its view too). Returns whether the sums
/// remain to be done: false for an empty result, or for k = 0, where `dst` becomes zeros (or
/// stays as it is when `accumulate`). Every product in bnlab (float32, bfloat16 and its
/// emulation) starts here.
pub(crate) fn prepare(dst: &mut [f32], (m, k): (usize, usize), b: &Mat, accumulate: bool) -> bool {
    let n = b.cols;
    assert_eq!(b.rows, k, "matmul: inner dimensions differ");
    assert_eq!(dst.len(), m * n, "matmul: destination has the wrong size");
    b.check("rhs");
    if k == 0 && !accumulate {
        dst.fill(0.0);
    }
    m > 0 && n > 0 && k > 0
}

fn matmul_with(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, par: gemm::Parallelism) {
    a.check("lhs");
    if !prepare(dst, (a.rows, a.cols), &b, accumulate) {
        return;
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // SAFETY: every view was checked above to lie inside its slice, `dst` is exactly m * n
    // row-major, and `dst` is a unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: Mat, b: Mat) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0;
                for p in 0..a.cols {
                    s += a.data[i * a.row_stride + p * a.col_stride]
                        * b.data[p * b.row_stride + j * b.col_stride];
                }
                out[i * b.cols + j] = s;
            }
        }
        out
    }

    #[test]
    fn products_and_transposes_match_the_definition() {
        let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..20).map(|i| (i as f32).sin()).collect();
        let am = Mat::new(&a, 3, 4);
        let bm = Mat::new(&b, 4, 5);
        let mut d = vec![0.0; 15];
        matmul(&mut d, am, bm, false);
        for (x, y) in d.iter().zip(naive(am, bm)) {
            assert!((x - y).abs() < 1e-5);
        }
        // a^T (4x3) times c (3x5), accumulated onto ones
        let c: Vec<f32> = (0..15).map(|i| i as f32 * 0.1).collect();
        let cm = Mat::new(&c, 3, 5);
        let mut d2 = vec![1.0; 20];
        matmul(&mut d2, am.t(), cm, true);
        for (x, y) in d2.iter().zip(naive(am.t(), cm)) {
            assert!((x - (y + 1.0)).abs() < 1e-5);
        }
    }
}
