//! The bfloat16 kernels against gemm's float32 product: GFLOP/s (median of repeated runs).
//!   cargo bench --bench bf16_matmul                  (2 threads; THREADS=n, REPS=n to change)
//!   cargo bench --bench bf16_matmul -- --smoke       (one small shape once: does it run?)
//!   cargo bench --bench bf16_matmul -- --amx mlp     (AMX only, shapes whose name has "mlp")
//!
//! The large products run on the pool (`matmul`); the cnn-bn preset's per-sample convolution
//! products (MNIST, 28 x 28: conv 1->32 then 32->64, 3x3, padding 1) run on one thread
//! (`matmul_serial`), as the conv kernel calls them inside its loop over samples. A kernel this
//! CPU lacks prints "-".

use bnlab::internal::bf16::{self, Bf16Kernel};
use bnlab::internal::matmul::{self, Mat};
#[path = "common/timing.rs"]
mod timing;
use timing::median_secs;

/// A product: its name, (m, k, n), whether a and b are stored transposed, whether it runs on
/// the pool (else on the calling thread, as the conv kernel does).
struct Shape {
    name: &'static str,
    mkn: (usize, usize, usize),
    a_t: bool,
    b_t: bool,
    pool: bool,
}

const fn shape(
    name: &'static str,
    mkn: (usize, usize, usize),
    a_t: bool,
    b_t: bool,
    pool: bool,
) -> Shape {
    Shape {
        name,
        mkn,
        a_t,
        b_t,
        pool,
    }
}

const SHAPES: [Shape; 15] = [
    shape("2048 x 2048 x 2048", (2048, 2048, 2048), false, false, true),
    shape("1024 x 1024 x 512", (1024, 1024, 512), false, false, true),
    shape("1024 x 512 x 256", (1024, 512, 256), false, false, true),
    shape(
        "x W1^T: 256 x 784 x 256",
        (256, 784, 256),
        false,
        true,
        true,
    ),
    // the seed model 4x wider (784 -> 1024 -> 1024 -> 10) at batch 1024, as `kernels::linear`
    // calls them: forward x W^T (W stored (O, I)), weight gradient dy^T x, input gradient dy W
    shape(
        "mlp fwd1: 1024 x 784 x 1024",
        (1024, 784, 1024),
        false,
        true,
        true,
    ),
    shape(
        "mlp fwd2: 1024 x 1024 x 1024",
        (1024, 1024, 1024),
        false,
        true,
        true,
    ),
    shape(
        "mlp dW1: 1024 x 1024 x 784",
        (1024, 1024, 784),
        true,
        false,
        true,
    ),
    shape(
        "mlp dW2: 1024 x 1024 x 1024",
        (1024, 1024, 1024),
        true,
        false,
        true,
    ),
    shape(
        "mlp dX2: 1024 x 1024 x 1024",
        (1024, 1024, 1024),
        false,
        false,
        true,
    ),
    // cnn-bn, per sample: forward W (cout, k) x cols (k, P); weight gradient dy (cout, P) x
    // cols^T (P, k); input gradient W^T (k, cout) x dy (cout, P)
    shape("conv1 fwd: 32 x 9 x 784", (32, 9, 784), false, false, false),
    shape("conv1 dW: 32 x 784 x 9", (32, 784, 9), false, true, false),
    shape(
        "conv2 fwd: 64 x 288 x 196",
        (64, 288, 196),
        false,
        false,
        false,
    ),
    shape(
        "conv2 dW: 64 x 196 x 288",
        (64, 196, 288),
        false,
        true,
        false,
    ),
    shape(
        "conv2 dcols: 288 x 64 x 196",
        (288, 64, 196),
        true,
        false,
        false,
    ),
    shape(
        "conv1 dcols: 9 x 32 x 784",
        (9, 32, 784),
        true,
        false,
        false,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let amx_only = args.iter().any(|a| a == "--amx");
    // cargo passes --bench; any other word selects the shapes whose name contains it
    let words: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let threads = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    bnlab::internal::alloc_tuning::keep_freed_memory(); // as the bnlab command runs
    bnlab::runtime::set_threads(threads).expect("a global thread pool");
    let kernels = bf16::cpu_kernels();
    // REPS=n: more runs per median (a short product's 21 runs can all fall in one stretch of
    // another process's work on a 2-core machine)
    let reps = if smoke {
        1
    } else {
        std::env::var("REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(21)
    };
    println!(
        "{threads} threads; GFLOP/s, median of {reps} runs; bf16 kernels here: {kernels:?}; chosen: {:?}",
        bf16::kernel()
    );
    println!(
        "{:<30} {:>7} {:>12} {:>12} {:>12}",
        "shape (m x k x n)", "threads", "f32 gemm", "AVX512-BF16", "AMX"
    );
    let shapes: Vec<&Shape> = if smoke {
        vec![&SHAPES[3]]
    } else {
        SHAPES
            .iter()
            .filter(|s| words.is_empty() || words.iter().any(|w| s.name.contains(w.as_str())))
            .collect()
    };
    for s in shapes {
        let (m, k, n) = s.mkn;
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
        let am = if s.a_t {
            Mat::new(&a, k, m).t()
        } else {
            Mat::new(&a, m, k)
        };
        let bm = if s.b_t {
            Mat::new(&b, n, k).t()
        } else {
            Mat::new(&b, k, n)
        };
        let mut c = vec![0.0f32; m * n];
        // the per-sample products are short: time a batch of 64 of them
        let calls = if s.pool || smoke { 1 } else { 64 };
        let flops = 2.0 * (m * k * n * calls) as f64;
        let f32_secs = if amx_only {
            f64::NAN
        } else {
            median_secs(reps, || {
                for _ in 0..calls {
                    if s.pool {
                        matmul::matmul(&mut c, am, bm, false)
                    } else {
                        matmul::matmul_serial(&mut c, am, bm, false)
                    }
                }
            })
        };
        let mut bf16_rate = |kernel: Bf16Kernel| -> String {
            if !kernels.contains(&kernel) || (amx_only && kernel != Bf16Kernel::Amx) {
                return "-".to_string();
            }
            let secs = median_secs(reps, || {
                for _ in 0..calls {
                    bf16::matmul_on(kernel, &mut c, am, bm, false, s.pool);
                }
            });
            format!("{:.0}", flops / secs / 1e9)
        };
        let (avx, amx) = (
            bf16_rate(Bf16Kernel::Avx512Bf16),
            bf16_rate(Bf16Kernel::Amx),
        );
        println!(
            "{:<30} {:>7} {:>12.0} {:>12} {:>12}",
            s.name,
            if s.pool { threads } else { 1 },
            flops / f32_secs / 1e9,
            avx,
            amx
        );
    }
}
