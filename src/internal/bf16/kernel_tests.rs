//! Every fast kernel this CPU has, against the emulation ([`matmul_emulated`]), and the choice of
//! kernel against the CPU's capabilities. The emulation runs through the same shape tests on
//! every CPU (on one without a fast kernel it is all they test), against the exact sum.
//!
//! Tolerance: the kernels add the same exact products (a product of two bfloat16s is exact in
//! float32) in another order, so they differ from the emulation by float32 summation error:
//! `|fast - emu| <= 2 (k + 1) 2^-24 (|dst before| + sum_p |a_bf(i,p) b_bf(p,j)|)`; and both
//! differ from the exact sum of those terms (in float64) by no more than that bound either.
//!
//! Denormals: `VDPBF16PS` and `TDPBF16PS` treat denormal inputs as zero and flush denormal
//! results; the emulation does not. The shapes' values keep every product and partial sum far
//! above 2^-126 (the "tiny" case goes down to 2^-100), and one test feeds denormal inputs
//! against operands of magnitude <= 1, where flushing loses at most 2^-126 per product: that
//! bound is added there.

use super::detect::{caps, choose, Caps};
use super::*;

/// A small deterministic generator (xorshift), uniform in [-1, 1).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.next() * scale).collect()
    }
}

/// How an operand is stored: row-major, transposed (the view is `.t()` of the stored matrix), a
/// strided sub-view of a larger buffer (rows 3 elements apart beyond twice their length, every
/// other column), or the transpose of such a sub-view.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    Transposed,
    Strided,
    StridedTransposed,
}

/// A (rows, cols) view over `buf` in `layout`; `buf` is made large enough by `storage`.
fn storage(rows: usize, cols: usize, layout: Layout) -> usize {
    match layout {
        Layout::RowMajor | Layout::Transposed => rows * cols,
        Layout::Strided => rows * (2 * cols + 3) + 1,
        Layout::StridedTransposed => storage(cols, rows, Layout::Strided),
    }
}

fn view(buf: &[f32], rows: usize, cols: usize, layout: Layout) -> Mat<'_> {
    match layout {
        Layout::RowMajor => Mat::new(buf, rows, cols),
        Layout::Transposed => Mat::new(buf, cols, rows).t(),
        Layout::Strided => Mat {
            data: &buf[1..],
            rows,
            cols,
            row_stride: 2 * cols + 3,
            col_stride: 2,
        },
        Layout::StridedTransposed => view(buf, cols, rows, Layout::Strided).t(),
    }
}

/// What a test runs: a fast kernel, or the emulation itself.
#[derive(Clone, Copy, Debug)]
enum Under {
    Kernel(Bf16Kernel),
    Emulation,
}

impl Under {
    fn run(self, dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, on_pool: bool) {
        match self {
            Under::Kernel(k) => matmul_on(k, dst, a, b, accumulate, on_pool),
            Under::Emulation => matmul_emulated(dst, a, b, accumulate),
        }
    }
}

/// Checks `fast` against the emulation and the exact (float64) sum element by element, with
/// the bound above (+ `floor`).
fn assert_close(
    fast: &[f32],
    a: Mat,
    b: Mat,
    before: &[f32],
    accumulate: bool,
    floor: f64,
    what: &str,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut emu = before.to_vec();
    matmul_emulated(&mut emu, a, b, accumulate);
    for i in 0..m {
        for j in 0..n {
            let start = if accumulate {
                before[i * n + j] as f64
            } else {
                0.0
            };
            let (mut exact, mut mag) = (start, start.abs());
            for p in 0..k {
                let x = round_bf16(a.data[i * a.row_stride + p * a.col_stride]) as f64;
                let y = round_bf16(b.data[p * b.row_stride + j * b.col_stride]) as f64;
                exact += x * y;
                mag += (x * y).abs();
            }
            let bound = 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag + floor;
            let (f, e) = (fast[i * n + j] as f64, emu[i * n + j] as f64);
            assert!(
                (f - e).abs() <= bound && (f - exact).abs() <= bound,
                "{what}: ({i}, {j}) fast {f} emulated {e} exact {exact} bound {bound}"
            );
        }
    }
}

/// One product on `kernel` against the emulation, every combination of layouts and both modes.
fn check_shape(
    kernel: Under,
    on_pool: bool,
    (m, k, n): (usize, usize, usize),
    scale: f32,
    g: &mut Gen,
) {
    use Layout::*;
    for (la, lb) in [
        (RowMajor, RowMajor),
        (Transposed, RowMajor),
        (RowMajor, Transposed),
        (Strided, Strided),
        (StridedTransposed, StridedTransposed),
        (Transposed, Strided),
    ] {
        let abuf = g.vec(storage(m, k, la), scale);
        let bbuf = g.vec(storage(k, n, lb), scale);
        let (a, b) = (view(&abuf, m, k, la), view(&bbuf, k, n, lb));
        for accumulate in [false, true] {
            let before = g.vec(m * n, scale * scale);
            let mut fast = before.clone();
            kernel.run(&mut fast, a, b, accumulate, on_pool);
            let what = format!(
                "{kernel:?} pool={on_pool} {m}x{k}x{n} {la:?}/{lb:?} acc={accumulate} scale={scale}"
            );
            assert_close(&fast, a, b, &before, accumulate, 0.0, &what);
        }
    }
}

/// The kernels this CPU runs, then the emulation, printed so that a run shows what was tested.
fn kernels_under_test() -> Vec<Under> {
    let kernels = cpu_kernels();
    if kernels.is_empty() {
        println!(
            "bf16: no fast kernel on this CPU ({}); only the emulation is tested",
            kernel().unwrap_err()
        );
    } else {
        println!("bf16: testing {kernels:?} and the emulation");
    }
    kernels
        .into_iter()
        .map(Under::Kernel)
        .chain([Under::Emulation])
        .collect()
}

#[test]
fn every_kernel_matches_the_emulation_on_odd_shapes() {
    let sizes = [1, 3, 15, 17, 31, 33, 64];
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for kernel in kernels_under_test() {
        for &m in &sizes {
            for &k in &sizes {
                for &n in &sizes {
                    check_shape(kernel, m * n > 1000, (m, k, n), 1.0, &mut g);
                }
            }
        }
    }
}

#[test]
fn every_kernel_matches_the_emulation_on_large_and_uneven_shapes() {
    let shapes = [
        (100, 257, 33),
        (257, 100, 100),
        (33, 1100, 65),
        // more than one K pass of either kernel (AVX512: 256 pairs, AMX: 1024 pairs)
        (40, 2100, 33),
        (300, 600, 200),
        (1, 784, 256),
        (256, 9, 784),
    ];
    let mut g = Gen(42);
    for kernel in kernels_under_test() {
        for shape in shapes {
            for on_pool in [false, true] {
                check_shape(kernel, on_pool, shape, 1.0, &mut g);
            }
        }
    }
}

#[test]
fn every_kernel_keeps_large_and_tiny_magnitudes() {
    // 2^40 (products 2^80, sums below 2^90) and 2^-50 (products 2^-100): far from overflow and
    // from the denormals the instructions flush
    let mut g = Gen(7);
    for kernel in kernels_under_test() {
        for scale in [2f32.powi(40), 2f32.powi(-50)] {
            check_shape(kernel, true, (17, 67, 40), scale, &mut g);
        }
    }
}

#[test]
fn every_kernel_handles_an_empty_inner_dimension() {
    for kernel in kernels_under_test() {
        let (a, b) = (vec![0.0f32; 0], vec![0.0f32; 0]);
        let mut d = vec![3.0f32; 6];
        kernel.run(&mut d, Mat::new(&a, 2, 0), Mat::new(&b, 0, 3), true, false);
        assert_eq!(d, vec![3.0; 6], "{kernel:?}: k = 0 accumulates nothing");
        kernel.run(&mut d, Mat::new(&a, 2, 0), Mat::new(&b, 0, 3), false, true);
        assert_eq!(
            d,
            vec![0.0; 6],
            "{kernel:?}: k = 0 without accumulate is zero"
        );
    }
}

#[test]
fn denormal_inputs_lose_at_most_their_own_size() {
    // operands of magnitude <= 1, some denormal: a kernel that treats those as zero loses at
    // most 2^-126 per product (the emulation keeps them)
    let (m, k, n) = (9, 40, 35);
    let mut g = Gen(99);
    let mut a = g.vec(m * k, 1.0);
    let b = g.vec(k * n, 1.0);
    for (i, v) in a.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        *v = f32::from_bits(1 + (i as u32 * 7919) % 0x007f_ffff);
    }
    for kernel in kernels_under_test() {
        let mut d = vec![0.0; m * n];
        kernel.run(&mut d, Mat::new(&a, m, k), Mat::new(&b, k, n), false, false);
        let floor = k as f64 * 2f64.powi(-126);
        assert_close(
            &d,
            Mat::new(&a, m, k),
            Mat::new(&b, k, n),
            &vec![0.0; m * n],
            false,
            floor,
            "denormals",
        );
    }
}

#[test]
fn the_public_entry_points_run_the_chosen_kernel() {
    // matmul / matmul_serial: only where the process's choice is a kernel
    let Ok(chosen) = kernel() else {
        // no kernel: matmul refuses, naming why, rather than run slowly
        let why = kernel().unwrap_err();
        println!("bf16: no kernel chosen ({why}); matmul must refuse");
        let (a, b, mut d) = ([1.0f32; 4], [1.0f32; 4], [0.0f32; 4]);
        let refused = std::panic::catch_unwind(move || {
            matmul(&mut d, Mat::new(&a, 2, 2), Mat::new(&b, 2, 2), false)
        })
        .unwrap_err();
        let msg = refused
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(msg.contains(&why), "{msg}");
        return;
    };
    println!("bf16: matmul runs {chosen}");
    let mut g = Gen(5);
    let (m, k, n) = (70, 90, 110);
    let (a, b) = (g.vec(m * k, 1.0), g.vec(k * n, 1.0));
    let (am, bm) = (Mat::new(&a, m, k), Mat::new(&b, k, n));
    let zeros = vec![0.0; m * n];
    let mut d = zeros.clone();
    matmul(&mut d, am, bm, false);
    assert_close(&d, am, bm, &zeros, false, 0.0, "matmul");
    let mut d = zeros.clone();
    matmul_serial(&mut d, am, bm, false);
    assert_close(&d, am, bm, &zeros, false, 0.0, "matmul_serial");
}

#[test]
fn the_choice_follows_the_cpu_and_the_variable() {
    let caps_of = |amx: bool, avx: bool| Caps {
        amx: if amx {
            Ok(())
        } else {
            Err("no AMX tiles".into())
        },
        avx512_bf16: avx,
    };
    assert_eq!(choose(None, &caps_of(true, true)), Ok(Bf16Kernel::Amx));
    assert_eq!(
        choose(None, &caps_of(false, true)),
        Ok(Bf16Kernel::Avx512Bf16)
    );
    assert_eq!(
        choose(Some("avx512"), &caps_of(true, true)),
        Ok(Bf16Kernel::Avx512Bf16)
    );
    assert_eq!(
        choose(Some("amx"), &caps_of(true, false)),
        Ok(Bf16Kernel::Amx)
    );
    let neither = choose(None, &caps_of(false, false)).unwrap_err();
    assert!(
        neither.contains("neither AMX-BF16") && neither.contains("nor AVX512-BF16"),
        "{neither}"
    );
    assert!(!neither.contains('\n'));
    for (forced, needle) in [
        ("amx", "AMX cannot run here"),
        ("avx512", "no AVX512-BF16"),
        ("none", "switches the bfloat16 kernels off"),
        ("fast", "expected amx, avx512 or none"),
    ] {
        let why = choose(Some(forced), &caps_of(false, false)).unwrap_err();
        assert!(
            why.contains(KERNEL_ENV) && why.contains(needle),
            "{forced}: {why}"
        );
    }
}

#[test]
fn the_process_choice_is_the_best_kernel_or_names_what_is_missing() {
    // this CPU: the kernel list and the process's choice agree with the capabilities probed
    let forced = std::env::var(KERNEL_ENV).ok();
    assert_eq!(kernel(), choose(forced.as_deref(), caps()));
    let kernels = cpu_kernels();
    println!(
        "bf16: this CPU runs {kernels:?}; the choice is {:?}",
        kernel()
    );
    if forced.is_none() {
        match kernels.first() {
            Some(&best) => assert_eq!(kernel(), Ok(best)),
            None => {
                let why = kernel().unwrap_err();
                assert!(
                    why.contains("neither AMX-BF16") && why.contains("AVX512-BF16"),
                    "{why}"
                );
            }
        }
    }
}

#[test]
fn a_packed_lhs_gives_the_products_of_packing_per_call_to_the_bit() {
    // the same packed values through the same microkernel: equal bits, whatever A's layout,
    // with one packed A reused for several right operands (the conv kernel's use)
    use Layout::*;
    let kernels = cpu_kernels();
    println!("bf16: packed operands tested on {kernels:?}");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut g = Gen(2024);
    for kernel in kernels {
        let shapes = [
            (1, 1, 1),
            (17, 67, 40),
            (64, 288, 196),
            (288, 64, 196),
            (33, 9, 784),
            (5, 0, 3),
        ];
        for (m, k, n) in shapes {
            for la in [RowMajor, Transposed, Strided, StridedTransposed] {
                let abuf = g.vec(storage(m, k, la), 1.0);
                let a = view(&abuf, m, k, la);
                let packed = PackedLhs::on(kernel, a);
                assert_eq!((packed.rows(), packed.cols()), (m, k));
                for accumulate in [false, true] {
                    for _ in 0..2 {
                        let bbuf = g.vec(k * n, 1.0);
                        let b = Mat::new(&bbuf, k, n);
                        let before = g.vec(m * n, 1.0);
                        let (mut once, mut per_call) = (before.clone(), before.clone());
                        matmul_packed_serial(&mut once, &packed, b, accumulate);
                        matmul_on(kernel, &mut per_call, a, b, accumulate, false);
                        let what = format!("{kernel:?} {m}x{k}x{n} {la:?} acc={accumulate}");
                        assert_eq!(bits(&once), bits(&per_call), "{what}");
                        assert_close(&once, a, b, &before, accumulate, 0.0, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn values_left_in_the_packing_buffers_never_reach_a_later_product() {
    // the packing buffers are kept per thread and only their padding is zeroed: fill them with
    // NaNs through a large product, then smaller products of every other shape must not see
    // them (a NaN times a zero padding is still NaN, so a padding left unzeroed shows)
    let mut g = Gen(5);
    for kernel in cpu_kernels() {
        for (m, k, n) in [
            (3, 5, 7),
            (31, 33, 17),
            (64, 65, 33),
            (40, 300, 1),
            (1, 2, 90),
        ] {
            let nan = vec![f32::NAN; 70 * 301];
            let mut d = vec![0.0; 70 * 90];
            let (big_a, big_b) = (Mat::new(&nan, 70, 301), Mat::new(&nan[..301 * 70], 301, 70));
            matmul_on(kernel, &mut d[..70 * 70], big_a, big_b, false, false);
            for la in [Layout::RowMajor, Layout::Transposed] {
                let (abuf, bbuf) = (g.vec(m * k, 1.0), g.vec(k * n, 1.0));
                let (a, b) = (view(&abuf, m, k, la), view(&bbuf, k, n, la));
                let before = g.vec(m * n, 1.0);
                let mut fast = before.clone();
                matmul_on(kernel, &mut fast, a, b, true, false);
                let what = format!("{kernel:?} after NaNs {m}x{k}x{n} {la:?}");
                assert_close(&fast, a, b, &before, true, 0.0, &what);
            }
        }
    }
}
