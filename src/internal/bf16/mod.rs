//! bfloat16 matrix products for `--precision bf16` (PyTorch's autocast split): the operands are
//! rounded to bfloat16, every product and sum is done in float32, and the result stays float32.
//!
//! - [`round_bf16`] rounds a float32 to the nearest bfloat16 (ties to even), as the CPU's
//!   conversion instructions do;
//! - [`matmul_emulated`] is the oracle: the instructions' arithmetic written out plainly, so it
//!   runs on every CPU and every fast kernel is tested against it;
//! - [`kernel`] says which fast kernel this CPU runs (AMX tiles, else AVX512-BF16), or in one
//!   line what it lacks;
//! - [`matmul`] and [`matmul_serial`] have `internal::matmul`'s contract and run that kernel;
//!   [`matmul_on`] runs a kernel named by the caller (the tests and the benchmark);
//! - [`PackedLhs`] is a left operand packed once for many products ([`matmul_packed_serial`]):
//!   the conv kernel's weight, multiplied by every sample's columns.
//!
//! `BNLAB_BF16_KERNEL=amx|avx512|none` forces a kernel (see [`detect`]).
//!
//! Files: [`detect`] (which kernel), `pack` (bfloat16 pairs in the instructions' layouts),
//! `blocks` (the output split over threads), `avx512` and `amx` (the microkernels).

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocks;
pub mod detect;
mod pack;

pub use detect::{cpu_has, cpu_kernels, kernel, KERNEL_ENV};

use crate::matmul::Mat;

/// The fast bfloat16 kernels, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// Intel AMX tiles (`TDPBF16PS`): Sapphire Rapids and later.
    Amx,
    /// AVX512-BF16 (`VDPBF16PS`): AMD Zen 4/5, Intel Cooper Lake and later.
    Avx512Bf16,
}

impl std::fmt::Display for Bf16Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Bf16Kernel::Amx => "AMX (TDPBF16PS)",
            Bf16Kernel::Avx512Bf16 => "AVX512-BF16 (VDPBF16PS)",
        })
    }
}

/// `x` rounded to the nearest bfloat16, ties to even, returned as the float32 of equal value.
/// NaN stays NaN (quiet); values beyond bfloat16's largest finite round to infinity.
pub fn round_bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return f32::from_bits(bits | 0x0040_0000);
    }
    // add half of the dropped 16 bits' weight, minus one unless the kept part is odd (ties to
    // even), then drop them; a carry into the exponent rounds up correctly, to infinity too
    let lsb = (bits >> 16) & 1;
    f32::from_bits((bits.wrapping_add(0x7fff + lsb)) & 0xffff_0000)
}

/// `dst (m, n) = a (m, k) * b (k, n)` (or `+=` when `accumulate`), the operands rounded to
/// bfloat16 first. Each product of two bfloat16s is exact in float32 (8-bit significands give a
/// 16-bit product); the sums are float32, over k in order. This is the oracle: a fast kernel
/// sums in another order, so it agrees within float32 summation error, not bit for bit.
pub fn matmul_emulated(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    a.check("lhs");
    if !crate::matmul::prepare(dst, (a.rows, a.cols), &b, accumulate) {
        return;
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for i in 0..m {
        for j in 0..n {
            let mut s = if accumulate { dst[i * n + j] } else { 0.0 };
            for p in 0..k {
                let x = round_bf16(a.data[i * a.row_stride + p * a.col_stride]);
                let y = round_bf16(b.data[p * b.row_stride + j * b.col_stride]);
                s += x * y;
            }
            dst[i * n + j] = s;
        }
    }
}

/// `internal::matmul::matmul` with bfloat16 operands, on this CPU's fast kernel and the pool's
/// threads. Panics when [`kernel`] is an error: callers check it once, before training.
pub fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_on(chosen(), dst, a, b, accumulate, true)
}

/// [`matmul`] on the calling thread only (inside a parallel loop that keeps every thread busy).
pub fn matmul_serial(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_on(chosen(), dst, a, b, accumulate, false)
}

fn chosen() -> Bf16Kernel {
    match kernel() {
        Ok(k) => k,
        Err(why) => panic!("bf16 matmul called without a kernel: {why}"),
    }
}

/// [`matmul`] on the kernel named, over the pool's threads when `on_pool`, else on the calling
/// thread. Panics when this CPU cannot run that kernel (see [`cpu_has`]).
pub fn matmul_on(
    kernel: Bf16Kernel,
    dst: &mut [f32],
    a: Mat,
    b: Mat,
    accumulate: bool,
    on_pool: bool,
) {
    assert!(
        cpu_has(kernel),
        "bf16 matmul: this CPU cannot run the {kernel} kernel"
    );
    a.check("lhs");
    if !crate::matmul::prepare(dst, (a.rows, a.cols), &b, accumulate) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    match kernel {
        Bf16Kernel::Avx512Bf16 => avx512::matmul(dst, a, b, accumulate, on_pool),
        Bf16Kernel::Amx => amx::matmul(dst, a, b, accumulate, on_pool),
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no bfloat16 kernel outside x86-64 (cpu_kernels is empty): {on_pool}");
}

/// A left operand (m, k) rounded to bfloat16 and packed once for one kernel, for many products
/// with it ([`matmul_packed_serial`]): the conv kernel multiplies its weight by every sample's
/// columns, and packing the weight per product would repeat the same work once per sample.
/// The products are those of [`matmul_on`] on the same kernel, to the bit (the same packed
/// values through the same microkernel). It holds a copy: later changes to `a` are not seen.
pub struct PackedLhs {
    kernel: Bf16Kernel,
    rows: usize,
    cols: usize,
    data: Vec<u32>,
}

impl PackedLhs {
    /// `a` packed for this CPU's kernel ([`kernel`]); panics as [`matmul`] does without one.
    pub fn new(a: Mat) -> PackedLhs {
        PackedLhs::on(chosen(), a)
    }

    /// `a` packed for the kernel named. Panics when this CPU cannot run it (see [`cpu_has`]).
    pub fn on(kernel: Bf16Kernel, a: Mat) -> PackedLhs {
        a.check("lhs");
        assert!(
            cpu_has(kernel),
            "bf16 matmul: this CPU cannot run the {kernel} kernel"
        );
        let mut data = Vec::new();
        if a.rows > 0 && a.cols > 0 {
            #[cfg(target_arch = "x86_64")]
            match kernel {
                Bf16Kernel::Avx512Bf16 => avx512::pack_lhs(a, true, &mut data),
                Bf16Kernel::Amx => amx::pack_lhs(a, true, &mut data),
            };
        }
        PackedLhs {
            kernel,
            rows: a.rows,
            cols: a.cols,
            data,
        }
    }

    /// Rows of the operand (m).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the operand (k).
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// [`matmul_serial`] with a left operand packed beforehand: `dst (m, n) = a (m, k) * b (k, n)`
/// (or `+=` when `accumulate`), on the calling thread and `a`'s kernel.
pub fn matmul_packed_serial(dst: &mut [f32], a: &PackedLhs, b: Mat, accumulate: bool) {
    let m = a.rows;
    if !crate::matmul::prepare(dst, (m, a.cols), &b, accumulate) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    pack::with_scratch(|s| match a.kernel {
        Bf16Kernel::Avx512Bf16 => {
            avx512::matmul_packed(dst, &a.data, m, b, accumulate, false, &mut s.b)
        }
        Bf16Kernel::Amx => amx::matmul_packed(dst, &a.data, m, b, accumulate, false, &mut s.b),
    });
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no bfloat16 kernel outside x86-64: {:?}", a.kernel);
}

#[cfg(test)]
mod kernel_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_with_ties_to_even() {
        // bfloat16 keeps 7 fraction bits: next to 1.0 the step is 2^-7
        let step = 2f32.powi(-7);
        assert_eq!(round_bf16(1.0), 1.0);
        assert_eq!(round_bf16(1.0 + step / 2.0), 1.0); // tie, 1.0 is even
        assert_eq!(round_bf16(1.0 + 3.0 * step / 2.0), 1.0 + 2.0 * step); // tie, to even
        assert_eq!(round_bf16(1.0 + step / 2.0 + 2f32.powi(-20)), 1.0 + step);
        assert_eq!(round_bf16(-1.0 - step / 4.0), -1.0);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
        assert_eq!(round_bf16(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(0.0).to_bits(), 0);
        assert_eq!(round_bf16(-0.0).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn emulation_matches_a_double_product_of_the_rounded_operands() {
        let (m, k, n) = (5, 37, 6);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 101) as f32 / 13.0 - 3.7)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104729) % 97) as f32 / 11.0 - 4.1)
            .collect();
        let mut d = vec![0.0; m * n];
        matmul_emulated(&mut d, Mat::new(&a, m, k), Mat::new(&b, k, n), false);
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut mag) = (0f64, 0f64);
                for p in 0..k {
                    let t = round_bf16(a[i * k + p]) as f64 * round_bf16(b[p * n + j]) as f64;
                    s += t;
                    mag += t.abs();
                }
                // float32 sums of k terms: error below k * 2^-24 * sum |terms|
                let bound = k as f64 * 2f64.powi(-24) * mag;
                assert!((d[i * n + j] as f64 - s).abs() <= bound, "({i}, {j})");
            }
        }
    }
}
