//! gemm against matrixmultiply on the seed's matrix shapes, float32, with the thread count the
//! rayon pool / RAYON_NUM_THREADS gives (matrixmultiply reads MATMUL_NUM_THREADS).
//!   MATMUL_NUM_THREADS=2 cargo bench --bench gemm_choice
//!   MATMUL_NUM_THREADS=1 cargo bench --bench gemm_choice   (the convolutions' setting)
//! Prints GFLOP/s (median of repeated runs) for each library and shape.

#[path = "common/timing.rs"]
mod timing;
use timing::median_secs;

/// (name, m, k, n, a transposed, b transposed)
const SHAPES: [(&str, usize, usize, usize, bool, bool); 18] = [
    ("x W1^T: 256 x 784 x 256", 256, 784, 256, false, true),
    ("x W2^T: 256 x 256 x 128", 256, 256, 128, false, true),
    (
        "dy^T x: 256 x 256 x 784 (A^T B)",
        256,
        256,
        784,
        true,
        false,
    ),
    ("dy W2: 256 x 128 x 256", 256, 128, 256, false, false),
    ("batch 32: 32 x 784 x 256", 32, 784, 256, false, true),
    // the seed's model with hidden layers 4x wider, batch 1024: layer 2's three products
    ("4x x W2^T: 1024 x 1024 x 512", 1024, 1024, 512, false, true),
    (
        "4x dy^T x: 512 x 1024 x 1024 (A^T B)",
        512,
        1024,
        1024,
        true,
        false,
    ),
    ("4x dy W2: 1024 x 512 x 1024", 1024, 512, 1024, false, false),
    // the size PyTorch's rate is quoted at (issue 23: 331 GFLOP/s on 2 Xeon cores)
    ("square: 2048 x 2048 x 2048", 2048, 2048, 2048, false, false),
    // the cnn preset's per-sample convolution products (forward W cols, weight gradient
    // dy cols^T, column gradient W^T dy), each run on one thread inside the loop over samples:
    // compare them at MATMUL_NUM_THREADS=1
    ("conv1 fwd: 32 x 9 x 784", 32, 9, 784, false, false),
    ("conv1 dW: 32 x 784 x 9", 32, 784, 9, false, true),
    ("conv1 dcols: 9 x 32 x 784 (A^T B)", 9, 32, 784, true, false),
    ("conv2 fwd: 64 x 288 x 196", 64, 288, 196, false, false),
    ("conv2 dW: 64 x 196 x 288", 64, 196, 288, false, true),
    (
        "conv2 dcols: 288 x 64 x 196 (A^T B)",
        288,
        64,
        196,
        true,
        false,
    ),
    // the same for four samples in one product (the batch's columns side by side): whether
    // batching the convolution's products would pay (BENCHMARKS.md, session 7: by 5% at most)
    ("conv2 fwd x4: 64 x 288 x 784", 64, 288, 784, false, false),
    ("conv2 dW x4: 64 x 784 x 288", 64, 784, 288, false, true),
    (
        "conv2 dcols x4: 288 x 64 x 784 (A^T B)",
        288,
        64,
        784,
        true,
        false,
    ),
];

fn main() {
    let threads = std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    bnlab::internal::alloc_tuning::keep_freed_memory(); // as the bnlab command runs
    bnlab::runtime::set_threads(threads).expect("a global thread pool");
    println!("{threads} threads; GFLOP/s, median of 50 runs");
    println!(
        "{:<40} {:>10} {:>16}",
        "shape (m x k x n)", "gemm", "matrixmultiply"
    );
    for (name, m, k, n, at, bt) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        // strides of a (m x k) and b (k x n) stored transposed or not
        let (ars, acs) = if at { (1, m) } else { (k, 1) };
        let (brs, bcs) = if bt { (1, k) } else { (n, 1) };
        let flops = 2.0 * (m * k * n) as f64;
        let amat = bnlab::internal::matmul::Mat {
            data: &a,
            rows: m,
            cols: k,
            row_stride: ars,
            col_stride: acs,
        };
        let bmat = bnlab::internal::matmul::Mat {
            data: &b,
            rows: k,
            cols: n,
            row_stride: brs,
            col_stride: bcs,
        };
        let g = median_secs(50, || {
            bnlab::internal::matmul::matmul(&mut c, amat, bmat, false)
        });
        let mm = median_secs(50, || unsafe {
            // SAFETY: the strides describe a, b and c, which outlive the call
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                ars as isize,
                acs as isize,
                b.as_ptr(),
                brs as isize,
                bcs as isize,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        });
        println!(
            "{name:<40} {:>10.0} {:>16.0}",
            flops / g / 1e9,
            flops / mm / 1e9
        );
    }
}
