//! Kernel timings on the seed's shapes (batch 256), and the cnn preset's fused BatchNorm ->
//! ReLU -> MaxPool block on its two blocks' shapes, for profiling work:
//! `cargo bench --bench kernels` (`THREADS=1 cargo bench --bench kernels` for one thread;
//! `SHAPE=1024,1024` for another batch and first-layer width).
//! Prints the median of repeated runs of each kernel.

use bnlab::internal::kernels::{bn_relu_pool, linear, sparse_linear};
use bnlab::{Precision, Rng};
#[path = "common/timing.rs"]
mod timing;
use timing::median_secs;

/// The median of `reps` runs of `f`, in microseconds.
fn median_us(reps: usize, f: impl FnMut()) -> f64 {
    median_secs(reps, f) * 1e6
}

fn main() {
    // inside a pool with its workers kept awake, as the training loop runs (THREADS=1 for one)
    let threads = std::env::var("THREADS").map_or(0, |t| t.parse().expect("THREADS: a number"));
    bnlab::internal::alloc_tuning::keep_freed_memory(); // as the bnlab command runs
    bnlab::runtime::with_threads(threads, || bnlab::runtime::with_workers_awake(run))
        .expect("a thread pool");
}

/// One Adam step over the seed's model's parameters (the first layer's 200,704 weights and the
/// small tensors after it), with gradients from one training batch of `n` images.
fn adam_step_us(n: usize) -> f64 {
    use bnlab::nn::parameters;
    use bnlab::optim::{Adam, AdamConfig, Optimizer};
    use bnlab::train::{run_batch, Mode, StepBuffers};
    let train = bnlab::data::mnist(bnlab::data::Split::Train).expect("MNIST");
    let mut g = bnlab::Graph::new(1);
    let preset = bnlab::presets::Preset::Bn;
    let dims = [784, 256, 128, 64, 10];
    let mut net = bnlab::presets::mlp(&mut g.params, preset, &dims, &mut Rng::seed(0)).unwrap();
    let mut opt = Adam::new(parameters(&net), AdamConfig::default());
    let order: Vec<u32> = (0..n as u32).collect();
    let mut bufs = StepBuffers::default();
    let (loss, _) = run_batch(&mut net, &mut g, &train, &order, Mode::Multi, &mut bufs).unwrap();
    g.backward(loss).unwrap();
    median_us(2000, || opt.step(&mut g.params))
}

fn run() {
    println!(
        "adam step        {:8.1} us   (the seed's model)",
        adam_step_us(32)
    );
    // SHAPE=n,o: another batch and first-layer width (784 inputs), e.g. 1024,1024 for the
    // 4x-wide model at batch 1024
    let (n, o) = std::env::var("SHAPE").map_or((256, 256), |s| {
        let parsed = s.split_once(',').map(|(n, o)| (n.parse(), o.parse()));
        match parsed {
            Some((Ok(n), Ok(o))) => (n, o),
            _ => panic!("SHAPE={s}: expected two counts, rows and outputs, as n,o"),
        }
    });
    let i = 784;
    let mut rng = Rng::seed(0);
    // the first 256 MNIST training images (19% nonzeros, clustered as digits are)
    let idx = bnlab::data::read_idx("data/mnist/train-images-idx3-ubyte.gz")
        .expect("data/mnist in the repository");
    let x: Vec<f32> = idx.data[..n * i]
        .iter()
        .map(|&b| b as f32 / 255.0)
        .collect();
    let w: Vec<f32> = (0..o * i).map(|_| rng.next_f32() - 0.5).collect();
    let b: Vec<f32> = vec![0.1; o];
    let dy: Vec<f32> = (0..n * o).map(|_| rng.next_f32() - 0.5).collect();
    let mut y = vec![0.0; n * o];
    let mut dw = vec![0.0; o * i];
    let mut wt = vec![0.0; o * i];
    let mut csr = sparse_linear::Compressed::default();
    let mut csc = sparse_linear::Compressed::default();
    let mut scratch = sparse_linear::Scratch::default();
    let mut bands = Vec::new();
    let reps = 200;
    println!("threads: {}", bnlab::runtime::threads());
    println!(
        "dense  forward   {:8.1} us",
        median_us(reps, || linear::forward(
            Precision::F32,
            &mut y,
            &x,
            &w,
            false,
            Some(&b),
            n,
            i,
            o
        ))
    );
    println!(
        "dense  dW        {:8.1} us",
        median_us(reps, || linear::backward(
            Precision::F32,
            &dy,
            &x,
            &w,
            false,
            None,
            Some((&mut dw, false)),
            None,
            n,
            i,
            o
        ))
    );
    println!(
        "to_csr           {:8.1} us",
        median_us(reps, || sparse_linear::to_csr(&x, i, &mut csr))
    );
    println!(
        "csr_to_csc       {:8.1} us",
        median_us(reps, || sparse_linear::csr_to_csc(&csr, i, &mut csc))
    );
    println!(
        "transpose W      {:8.1} us",
        median_us(reps, || sparse_linear::transpose(&mut wt, &w, o, i))
    );
    println!(
        "sparse forward   {:8.1} us",
        median_us(reps, || {
            // a wide layer's weight is copied into bands once per step (it changes every step)
            if sparse_linear::banded(n, o) {
                sparse_linear::to_bands(&wt, o, &mut bands);
            }
            sparse_linear::forward(&mut y, &csr, (&wt, &bands), Some(&b), o)
        })
    );
    println!(
        "sparse dW        {:8.1} us",
        median_us(reps, || sparse_linear::backward_weight(
            &mut dw,
            &dy,
            &csc,
            o,
            i,
            &mut scratch
        ))
    );
    println!(
        "sparse dW^T      {:8.1} us   (weight stored transposed, overwritten)",
        median_us(reps, || sparse_linear::backward_weight_t(
            &mut wt,
            &dy,
            &csc,
            o,
            true,
            &mut scratch
        ))
    );

    // the second layer's backward, 256 -> 128: both products (dx and dW), as training runs it
    let (i2, o2) = (256, 128);
    let x2: Vec<f32> = (0..n * i2).map(|_| rng.next_f32() - 0.5).collect();
    let w2: Vec<f32> = (0..o2 * i2).map(|_| rng.next_f32() - 0.5).collect();
    let dy2: Vec<f32> = (0..n * o2).map(|_| rng.next_f32() - 0.5).collect();
    let (mut dx2, mut dw2, mut db2) = (vec![0.0; n * i2], vec![0.0; o2 * i2], vec![0.0; o2]);
    println!(
        "layer 2 backward {:8.1} us   (dx and dW, 256 x 256 -> 128)",
        median_us(reps, || linear::backward(
            Precision::F32,
            &dy2,
            &x2,
            &w2,
            false,
            Some((&mut dx2, false)),
            Some((&mut dw2, false)),
            Some(&mut db2),
            n,
            i2,
            o2
        ))
    );
    // a training batch: 256 shuffled MNIST images, dense and as nonzeros
    let ds = bnlab::data::load(
        bnlab::data::DatasetKind::Mnist,
        bnlab::data::Split::Train,
        std::path::Path::new("data/mnist"),
    )
    .expect("data/mnist in the repository");
    let mut order: Vec<u32> = (0..ds.len as u32).collect();
    let mut r = Rng::seed(1);
    for k in (1..order.len()).rev() {
        order.swap(k, (r.next_f32() * (k + 1) as f32) as usize % (k + 1));
    }
    let mut labels = vec![0u32; n];
    let mut batch = vec![0.0f32; n * i];
    let mut at = 0;
    let mut next = || {
        at = (at + n) % (order.len() - n);
        order[at..at + n].to_vec()
    };
    println!(
        "gather dense     {:8.1} us",
        median_us(reps, || {
            let idx = next();
            bnlab::data::gather_batch(&ds, &idx, &mut batch, &mut labels).unwrap()
        })
    );
    println!(
        "gather nonzeros  {:8.1} us",
        median_us(reps, || ds.nonzeros().gather(&next(), &mut csr))
    );
    pool_block();
}

/// The fused BatchNorm -> ReLU -> MaxPool(2, 2) kernels on the cnn preset's blocks at batch 256:
/// (256, 32, 28, 28) and (256, 64, 14, 14), as training runs them (x is a whole batch's
/// convolution output, too large for the level 2 cache).
fn pool_block() {
    let mut rng = Rng::seed(2);
    for (c, side) in [(32, 28), (64, 14)] {
        let (n, ho) = (256, side / 2);
        let x: Vec<f32> = (0..n * c * side * side)
            .map(|_| rng.normal(0.0, 1.0))
            .collect();
        let alpha: Vec<f32> = (0..c).map(|_| rng.uniform(0.5, 1.5)).collect();
        let beta: Vec<f32> = (0..c).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let outs = n * c * ho * ho;
        let (mut y, mut argmax, mut x_at) = (vec![0.0; outs], vec![0; outs], vec![0.0; outs]);
        let mut scratch = bn_relu_pool::Scratch::default();
        let label = format!("({n}, {c}, {side}, {side})");
        println!(
            "pool forward     {:8.1} us   {label}",
            median_us(20, || bn_relu_pool::forward(
                &mut y,
                &mut argmax,
                &mut x_at,
                &x,
                &alpha,
                &beta,
                side,
                side,
                &mut scratch
            ))
        );
        let dy: Vec<f32> = (0..outs).map(|_| rng.next_f32() - 0.5).collect();
        let rstd = vec![1.0; c];
        let (mut per_plane, mut sum_g, mut sum_gx) =
            (vec![0.0; 2 * n * c], vec![0.0; c], vec![0.0; c]);
        println!(
            "pool grad sums   {:8.1} us   {label}",
            median_us(20, || bn_relu_pool::grad_sums(
                &dy,
                &y,
                &x_at,
                &beta,
                &rstd,
                ho * ho,
                &mut per_plane,
                &mut sum_g,
                &mut sum_gx
            ))
        );
        let mut dx = vec![0.0; x.len()];
        let coef = Some((&sum_g[..], &sum_gx[..]));
        println!(
            "pool input grad  {:8.1} us   {label}",
            median_us(20, || bn_relu_pool::backward_input(
                &mut dx,
                true,
                &dy,
                &y,
                &argmax,
                &x,
                &beta,
                &alpha,
                coef,
                side,
                side,
                &mut scratch
            ))
        );
    }
}
