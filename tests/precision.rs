//! `Precision`: a graph's Linear and convolution products in float32 or in bfloat16 (operands
//! rounded to bfloat16, float32 sums).
//!
//! The oracles:
//! - float32 is the product it always was: each result equals, bit for bit, the same `gemm`
//!   calls written out here (`internal::matmul`, with this file's own im2col for a convolution);
//! - bfloat16 is the same computation done with `internal::bf16::matmul_emulated` (the
//!   instruction's arithmetic written out plainly), within float32 summation error: the fast
//!   kernel sums in another order, so each value may differ by up to twice the error bound of a
//!   float32 sum of its terms, `2 (k + 2) 2^-24 sum |terms|`, the sum of magnitudes computed
//!   by the same emulation on the operands' absolute values;
//! - a short training run in bfloat16 learns as the float32 run does (its losses within 10%);
//! - on a CPU without a bfloat16 kernel every bfloat16 test checks the refusal instead: one
//!   line, the one `internal::bf16::kernel` gives, and the graph's precision left as it was.
//!   No test skips;
//! - the command: `--precision` is refused with one line for a value it does not know, and for
//!   bf16 on a CPU without a kernel (`BNLAB_BF16_KERNEL=none` makes any CPU one) before any
//!   work or folder; a bf16 run records its precision, keeps float32 weights, keeps bf16 when
//!   resumed (and refuses another `--precision`), and `report` and `summary` say so.

mod common;

use bnlab::data::Dataset;
use bnlab::internal::bf16::{self, matmul_emulated};
use bnlab::internal::matmul::{self, Mat};
use bnlab::io::{read_safetensors, StateTensor};
use bnlab::presets::{mlp, Preset};
use bnlab::train::{fit, FitOptions};
use bnlab::{Graph, Precision, Rng, Tensor, Var};
use common::bnlab_cli::{assert_clean_error, command, path_str, run, strings, tiny_mnist};
use common::{assert_ok, stdout};
use std::path::Path;

fn values(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

fn input(g: &mut Graph, shape: &[usize], data: &[f32]) -> Var {
    g.input(&Tensor::new(shape, data.to_vec()).unwrap(), true)
        .unwrap()
}

/// A graph in bfloat16, or None after checking the refusal on a CPU without a kernel.
fn bf16_graph() -> Option<Graph> {
    let mut g = Graph::new(0);
    match bf16::kernel() {
        Ok(_) => {
            g.set_precision(Precision::Bf16).unwrap();
            assert_eq!(g.precision(), Precision::Bf16);
            Some(g)
        }
        Err(why) => {
            let e = g.set_precision(Precision::Bf16).unwrap_err().to_string();
            assert_eq!(e, format!("precision bf16: {why}"));
            assert!(!e.contains('\n'), "{e}");
            assert_eq!(
                g.precision(),
                Precision::F32,
                "a refused precision is not set"
            );
            None
        }
    }
}

/// `got` against `want` within twice a float32 sum's error bound over `terms` terms whose
/// magnitudes sum to `mag`.
fn assert_close(what: &str, got: &[f32], want: &[f32], mag: &[f32], terms: usize) {
    assert_eq!(got.len(), want.len(), "{what}");
    let u = 2f64.powi(-24);
    for (j, ((&a, &b), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let bound = 2.0 * (terms + 2) as f64 * u * m as f64;
        assert!(
            (a as f64 - b as f64).abs() <= bound,
            "{what}[{j}]: {a} against the emulation's {b} (bound {bound:e})"
        );
    }
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// `dst = a b` (or `+=`) emulated, and the same product of the absolute values (the sum of
/// the terms' magnitudes, for the error bound), starting from `|dst|`.
fn emulate(dst: &mut [f32], mag: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_emulated(dst, a, b, accumulate);
    let (aa, ba) = (abs(a.data), abs(b.data));
    let (am, bm) = (Mat { data: &aa, ..a }, Mat { data: &ba, ..b });
    matmul_emulated(mag, am, bm, accumulate);
}

// ---------------------------------------------------------------------------------------------
// Linear

/// x (N, I), w (O, I), b (O), dy (N, O).
struct LinearCase {
    n: usize,
    i: usize,
    o: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

impl LinearCase {
    fn new(n: usize, i: usize, o: usize) -> LinearCase {
        let mut rng = Rng::seed(7);
        LinearCase {
            n,
            i,
            o,
            x: values(n * i, &mut rng),
            w: values(o * i, &mut rng),
            b: values(o, &mut rng),
            dy: values(n * o, &mut rng),
        }
    }

    /// y, dx, dw, db through the graph's Linear op.
    fn run(&self, g: &mut Graph) -> [Vec<f32>; 4] {
        let x = input(g, &[self.n, self.i], &self.x);
        let w = input(g, &[self.o, self.i], &self.w);
        let b = input(g, &[self.o], &self.b);
        let y = g.linear(x, w, Some(b)).unwrap();
        let out = g.value(y).to_vec();
        g.backward_from(y, &self.dy).unwrap();
        let grad = |v| g.grad(v).unwrap().to_vec();
        [out, grad(x), grad(w), grad(b)]
    }
}

#[test]
fn float32_linear_is_the_gemm_it_was() {
    let c = LinearCase::new(33, 70, 21);
    let mut g = Graph::new(0);
    assert_eq!(g.precision(), Precision::F32, "float32 is the default");
    let [y, dx, dw, db] = c.run(&mut g);
    let (x, w, dy) = (
        Mat::new(&c.x, c.n, c.i),
        Mat::new(&c.w, c.o, c.i),
        Mat::new(&c.dy, c.n, c.o),
    );
    // the kernel's calls: y starts from the bias and accumulates x w^T; gradients accumulate
    // onto zeros
    let mut want_y: Vec<f32> = c.b.iter().cycle().take(c.n * c.o).copied().collect();
    matmul::matmul(&mut want_y, x, w.t(), true);
    let mut want_dx = vec![0.0; c.n * c.i];
    matmul::matmul(&mut want_dx, dy, w, true);
    let mut want_dw = vec![0.0; c.o * c.i];
    matmul::matmul(&mut want_dw, dy.t(), x, true);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&y), bits(&want_y));
    assert_eq!(bits(&dx), bits(&want_dx));
    assert_eq!(bits(&dw), bits(&want_dw));
    let mut want_db = vec![0f32; c.o];
    for row in c.dy.chunks_exact(c.o) {
        want_db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
    assert_eq!(bits(&db), bits(&want_db));
}

#[test]
fn bfloat16_linear_is_the_emulated_product() {
    let Some(mut g) = bf16_graph() else { return };
    // sizes that are multiples of no kernel's tile, with a long inner dimension
    let c = LinearCase::new(37, 300, 19);
    let [y, dx, dw, db] = c.run(&mut g);
    let (x, w, dy) = (
        Mat::new(&c.x, c.n, c.i),
        Mat::new(&c.w, c.o, c.i),
        Mat::new(&c.dy, c.n, c.o),
    );
    let mut want: Vec<f32> = c.b.iter().cycle().take(c.n * c.o).copied().collect();
    let mut mag = abs(&want);
    emulate(&mut want, &mut mag, x, w.t(), true);
    assert_close("y", &y, &want, &mag, c.i);
    let (mut want, mut mag) = (vec![0.0; c.n * c.i], vec![0.0; c.n * c.i]);
    emulate(&mut want, &mut mag, dy, w, false);
    assert_close("dx", &dx, &want, &mag, c.o);
    let (mut want, mut mag) = (vec![0.0; c.o * c.i], vec![0.0; c.o * c.i]);
    emulate(&mut want, &mut mag, dy.t(), x, false);
    assert_close("dw", &dw, &want, &mag, c.n);
    // the bias gradient is no product: float32, exactly
    let mut want_db = vec![0f32; c.o];
    for row in c.dy.chunks_exact(c.o) {
        want_db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
    assert_eq!(db, want_db);
    // and the operands were rounded: float32 products differ from these somewhere
    let mut f32_y: Vec<f32> = c.b.iter().cycle().take(c.n * c.o).copied().collect();
    matmul::matmul(&mut f32_y, x, w.t(), true);
    assert!(f32_y.iter().zip(&y).any(|(a, b)| (a - b).abs() > 1e-4));
}

// ---------------------------------------------------------------------------------------------
// Conv2d

/// x (N, Cin, H, W), w (Cout, Cin, k, k), b (Cout), stride, padding; dy (N, Cout, Ho, Wo).
struct ConvCase {
    n: usize,
    cin: usize,
    hw: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
}

impl ConvCase {
    fn new() -> ConvCase {
        let (n, cin, hw, cout, k, stride, pad) = (3, 5, 9, 6, 3, 2, 1);
        let ho = (hw + 2 * pad - k) / stride + 1;
        let mut rng = Rng::seed(11);
        ConvCase {
            n,
            cin,
            hw,
            cout,
            k,
            stride,
            pad,
            x: values(n * cin * hw * hw, &mut rng),
            w: values(cout * cin * k * k, &mut rng),
            b: values(cout, &mut rng),
            dy: values(n * cout * ho * ho, &mut rng),
        }
    }

    fn ho(&self) -> usize {
        (self.hw + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Rows of a sample's column matrix (Cin k k) and its columns (Ho Wo).
    fn kp(&self) -> (usize, usize) {
        (self.cin * self.k * self.k, self.ho() * self.ho())
    }

    /// Where column matrix entry (row, col) of a sample reads its input: `Some(index within
    /// the sample)`, or None for padding.
    fn source(&self, row: usize, col: usize) -> Option<usize> {
        let (c, ky, kx) = (row / (self.k * self.k), row / self.k % self.k, row % self.k);
        let (oy, ox) = (col / self.ho(), col % self.ho());
        let y = (oy * self.stride + ky) as isize - self.pad as isize;
        let x = (ox * self.stride + kx) as isize - self.pad as isize;
        let inside = (0..self.hw as isize).contains(&y) && (0..self.hw as isize).contains(&x);
        inside.then(|| (c * self.hw + y as usize) * self.hw + x as usize)
    }

    /// Sample `s`'s column matrix (K, P), written out from the definition.
    fn cols(&self, s: usize) -> Vec<f32> {
        let (k, p) = self.kp();
        let xs = &self.x[s * self.cin * self.hw * self.hw..][..self.cin * self.hw * self.hw];
        let mut out = vec![0.0; k * p];
        for r in 0..k {
            for col in 0..p {
                out[r * p + col] = self.source(r, col).map_or(0.0, |i| xs[i]);
            }
        }
        out
    }

    /// A sample's column-matrix gradient (K, P) added back onto its input gradient.
    fn col2im(&self, dx: &mut [f32], dcols: &[f32]) {
        let (k, p) = self.kp();
        for r in 0..k {
            for col in 0..p {
                if let Some(i) = self.source(r, col) {
                    dx[i] += dcols[r * p + col];
                }
            }
        }
    }

    /// y, dx, dw, db through the graph's Conv2d op.
    fn run(&self, g: &mut Graph) -> [Vec<f32>; 4] {
        let x = input(g, &[self.n, self.cin, self.hw, self.hw], &self.x);
        let w = input(g, &[self.cout, self.cin, self.k, self.k], &self.w);
        let b = input(g, &[self.cout], &self.b);
        let y = g.conv2d(x, w, Some(b), self.stride, self.pad).unwrap();
        let out = g.value(y).to_vec();
        g.backward_from(y, &self.dy).unwrap();
        let grad = |v| g.grad(v).unwrap().to_vec();
        [out, grad(x), grad(w), grad(b)]
    }
}

#[test]
fn float32_conv_is_the_gemm_it_was() {
    let c = ConvCase::new();
    let [y, dx, dw, _] = c.run(&mut Graph::new(0));
    let ((k, p), w) = (c.kp(), Mat::new(&c.w, c.cout, c.cin * c.k * c.k));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let sample_x = c.cin * c.hw * c.hw;
    for s in 0..c.n {
        let cols = c.cols(s);
        // forward: the product, then the bias
        let mut want = vec![0.0; c.cout * p];
        matmul::matmul_serial(&mut want, w, Mat::new(&cols, k, p), false);
        for (run, b) in want.chunks_exact_mut(p).zip(&c.b) {
            run.iter_mut().for_each(|v| *v += b);
        }
        assert_eq!(
            bits(&y[s * c.cout * p..][..c.cout * p]),
            bits(&want),
            "y of {s}"
        );
        // input gradient: w^T dy_s, then col2im
        let d = Mat::new(&c.dy[s * c.cout * p..][..c.cout * p], c.cout, p);
        let mut dcols = vec![0.0; k * p];
        matmul::matmul_serial(&mut dcols, w.t(), d, false);
        let mut want_dx = vec![0.0; sample_x];
        c.col2im(&mut want_dx, &dcols);
        assert_eq!(
            bits(&dx[s * sample_x..][..sample_x]),
            bits(&want_dx),
            "dx of {s}"
        );
    }
    // weight gradient: one sample per chunk here (3 samples, 16 chunks at most), each chunk's
    // product onto zeros, then added in order
    let mut want_dw = vec![0.0f32; c.cout * k];
    for s in 0..c.n {
        let d = Mat::new(&c.dy[s * c.cout * p..][..c.cout * p], c.cout, p);
        let cols = c.cols(s);
        let mut part = vec![0.0; c.cout * k];
        matmul::matmul_serial(&mut part, d, Mat::new(&cols, k, p).t(), true);
        want_dw.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
    }
    assert_eq!(bits(&dw), bits(&want_dw));
}

#[test]
fn bfloat16_conv_is_the_emulated_product() {
    let Some(mut g) = bf16_graph() else { return };
    let c = ConvCase::new();
    let [y, dx, dw, db] = c.run(&mut g);
    let ((k, p), w) = (c.kp(), Mat::new(&c.w, c.cout, c.cin * c.k * c.k));
    let sample_x = c.cin * c.hw * c.hw;
    let (mut want_dw, mut mag_dw) = (vec![0.0; c.cout * k], vec![0.0; c.cout * k]);
    for s in 0..c.n {
        let cols = c.cols(s);
        let cm = Mat::new(&cols, k, p);
        let (mut want, mut mag) = (vec![0.0; c.cout * p], vec![0.0; c.cout * p]);
        emulate(&mut want, &mut mag, w, cm, false);
        for ((run, m), b) in want
            .chunks_exact_mut(p)
            .zip(mag.chunks_exact_mut(p))
            .zip(&c.b)
        {
            run.iter_mut().for_each(|v| *v += b);
            m.iter_mut().for_each(|v| *v += b.abs());
        }
        assert_close("y", &y[s * c.cout * p..][..c.cout * p], &want, &mag, k);
        let d = Mat::new(&c.dy[s * c.cout * p..][..c.cout * p], c.cout, p);
        let (mut dcols, mut mag_dcols) = (vec![0.0; k * p], vec![0.0; k * p]);
        emulate(&mut dcols, &mut mag_dcols, w.t(), d, false);
        let (mut want_dx, mut mag_dx) = (vec![0.0; sample_x], vec![0.0; sample_x]);
        c.col2im(&mut want_dx, &dcols);
        c.col2im(&mut mag_dx, &mag_dcols);
        // col2im adds up to k * k column values: those sums count as terms too
        let dxs = &dx[s * sample_x..][..sample_x];
        assert_close("dx", dxs, &want_dx, &mag_dx, c.cout + c.k * c.k);
        emulate(&mut want_dw, &mut mag_dw, d, cm.t(), true);
    }
    assert_close("dw", &dw, &want_dw, &mag_dw, c.n * p);
    // the bias gradient stays float32: the sum of dy over samples and positions
    for (co, &got) in db.iter().enumerate() {
        let want: f64 = (0..c.n)
            .flat_map(|s| &c.dy[(s * c.cout + co) * p..][..p])
            .map(|&v| v as f64)
            .sum();
        assert!((got as f64 - want).abs() < 1e-5, "db[{co}]");
    }
}

// ---------------------------------------------------------------------------------------------
// Training

/// `n` dense 1x8x8 images in four classes: noise everywhere (so no input is sparse and the
/// first Linear runs its product) and a brighter quadrant for the label.
fn four_quadrants(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let label = (rng.next_u64() % 4) as u8;
        for px in 0..64 {
            let (row, col) = (px / 8, px % 8);
            let quadrant = (row / 4) * 2 + col / 4;
            let bright = if quadrant == label as usize {
                90.0
            } else {
                0.0
            };
            images.push((20.0 + rng.next_f32() * 130.0 + bright) as u8);
        }
        labels.push(label);
    }
    Dataset::new(images, labels, [1, 8, 8], 4).unwrap()
}

/// The final training loss and validation accuracy of a small BatchNorm MLP trained for two
/// epochs in `precision`.
fn train(precision: Precision) -> (f64, f64) {
    let (train, val) = (four_quadrants(512, 1), four_quadrants(256, 2));
    let (mut g, mut rng) = bnlab::train::seeded(0);
    g.set_precision(precision).unwrap();
    let mut net = mlp(&mut g.params, Preset::Bn, &[64, 48, 32, 16, 4], &mut rng).unwrap();
    let config = bnlab::optim::AdamConfig {
        lr: 0.01,
        ..Default::default()
    };
    let mut opt = bnlab::optim::Adam::new(bnlab::nn::parameters(&net), config);
    let opts = FitOptions {
        epochs: 2,
        batch_size: 32,
        progress: false,
        ..Default::default()
    };
    let h = fit(
        &mut net,
        &mut g,
        &mut opt,
        &train,
        &val,
        &opts,
        &mut std::io::sink(),
    )
    .unwrap();
    let last = h.epochs.last().unwrap();
    (last.train_loss, last.val_accuracy)
}

#[test]
fn a_bfloat16_run_learns_as_the_float32_run() {
    if bf16_graph().is_none() {
        return; // the refusal was checked
    }
    let (loss32, acc32) = train(Precision::F32);
    let (loss16, acc16) = train(Precision::Bf16);
    // the float32 run learned (four classes: chance is a loss of ln 4 = 1.39)
    assert!(loss32 < 0.5 && acc32 > 0.9, "{loss32} {acc32}");
    assert!(
        (loss16 - loss32).abs() <= 0.1 * loss32,
        "bf16 loss {loss16} against f32 {loss32}"
    );
    assert!(
        (acc16 - acc32).abs() <= 0.03,
        "bf16 {acc16} against f32 {acc32}"
    );
    // and the two runs are not the same run: the products did round
    assert_ne!(loss16, loss32);
}

// ---------------------------------------------------------------------------------------------
// The command

/// `train` on the tiny MNIST in `data` (20 images of random, dense pixels: the first Linear
/// runs its product), `epochs` epochs into `out`.
fn tiny_train(data: &Path, out: &Path, epochs: usize, extra: &[&str]) -> Vec<String> {
    let mut v = strings(&["train", "--threads", "2", "--quiet", "--batch-size", "8"]);
    v.extend(["--epochs".to_string(), epochs.to_string()]);
    v.extend(["--data-dir".to_string(), path_str(data).to_string()]);
    v.extend(["--out".to_string(), path_str(out).to_string()]);
    v.extend(strings(extra));
    v
}

/// Every command that computes, with `--precision bf16`, on the tiny data in `data` (writing
/// under `dir`).
fn bf16_commands(dir: &Path, data: &Path) -> Vec<Vec<String>> {
    let d = path_str(data);
    let out = |name: &str| path_str(&dir.join(name)).to_string();
    let weights = out("none.safetensors");
    [
        tiny_train(data, &dir.join("train"), 1, &["--precision", "bf16"]),
        strings(&[
            "eval",
            "--weights",
            &weights,
            "--data-dir",
            d,
            "--precision",
            "bf16",
        ]),
        strings(&[
            "bench",
            "--epochs",
            "1",
            "--data-dir",
            d,
            "--precision",
            "bf16",
        ]),
        strings(&[
            "compare",
            "--epochs",
            "1",
            "--data-dir",
            d,
            "--out",
            &out("compare"),
        ])
        .into_iter()
        .chain(strings(&["--precision", "bf16"]))
        .collect(),
        strings(&["experiment", "placement", "--epochs", "1", "--data-dir", d])
            .into_iter()
            .chain(strings(&[
                "--out",
                &out("placement"),
                "--precision",
                "bf16",
            ]))
            .collect(),
    ]
    .into()
}

#[test]
fn an_unknown_precision_is_refused_naming_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["train", "eval", "bench", "compare"] {
        let o = run(&strings(&[sub, "--precision", "fp8"]), dir.path());
        assert_clean_error(&o, &["--precision", "fp8"]);
    }
    let o = run(
        &strings(&["experiment", "placement", "--precision", "fp8"]),
        dir.path(),
    );
    assert_clean_error(&o, &["--precision", "fp8"]);
}

/// With no bfloat16 kernel (forced here, so every CPU checks this), each command refuses bf16
/// in the one line `internal::bf16::kernel` gives, before reading data or making a folder.
#[test]
fn without_a_kernel_bf16_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    // no data at all: the refusal must come before the data is looked for
    let data = dir.path().join("no-data");
    for args in bf16_commands(dir.path(), &data) {
        let o = command(&args, dir.path())
            .env(bf16::KERNEL_ENV, "none")
            .output()
            .unwrap();
        assert_clean_error(&o, &["--precision bf16", "BNLAB_BF16_KERNEL=none"]);
    }
    assert_eq!(
        common::entries(dir.path()),
        Vec::<String>::new(),
        "nothing written"
    );
}

#[test]
fn a_bf16_run_records_keeps_and_shows_its_precision() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_mnist(&data);
    if let Err(why) = bf16::kernel() {
        // this CPU has no kernel: each command says so, in the kernel check's words
        for args in bf16_commands(dir.path(), &data) {
            let line = assert_clean_error(&run(&args, dir.path()), &["--precision bf16"]);
            assert!(line.ends_with(&why), "{line}");
        }
        return;
    }
    let out = dir.path().join("run");
    assert_ok(&run(
        &tiny_train(&data, &out, 1, &["--precision", "bf16"]),
        dir.path(),
    ));
    let history = |out: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap()
    };
    assert_eq!(history(&out)["config"]["options"]["precision"], "bf16");
    // the weights are float32, every tensor (the buffers' counter aside)
    let weights = read_safetensors(&out.join("last.safetensors")).unwrap();
    for (name, t) in &weights.tensors {
        let float = matches!(t, StateTensor::F32(_));
        assert!(
            float || name.ends_with("num_batches_tracked"),
            "{name} is not float32"
        );
    }

    // resumed: bf16 kept; another --precision refused, naming it
    let resume = |extra: &[&str]| {
        let mut v = strings(&["train", "--resume", path_str(&out), "--threads", "2"]);
        v.extend(strings(&["--quiet", "--data-dir", path_str(&data)]));
        v.extend(strings(extra));
        run(&v, dir.path())
    };
    let line = assert_clean_error(
        &resume(&["--precision", "f32"]),
        &["--resume", "--precision"],
    );
    println!("{line}");
    let o = resume(&["--epochs", "2"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("Epoch[2/2]"), "{}", stdout(&o));
    let h = history(&out);
    assert_eq!(h["config"]["options"]["precision"], "bf16");
    assert_eq!(h["epochs"].as_array().unwrap().len(), 2);

    // the run page says it
    assert_ok(&run(&strings(&["report", path_str(&out)]), dir.path()));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Precision") && html.contains("bfloat16 operands"));

    // an f32 run records f32, and its page says f32
    let f32_out = dir.path().join("f32");
    assert_ok(&run(&tiny_train(&data, &f32_out, 1, &[]), dir.path()));
    assert_eq!(history(&f32_out)["config"]["options"]["precision"], "f32");

    // evaluation in bf16 of the bf16 run's weights: the test set's 20 images, and an accuracy
    // close to float32's (20 images: one image apart at most)
    let eval = |precision: &str| -> serde_json::Value {
        let w = out.join("last.safetensors");
        let mut v = strings(&["eval", "--weights", path_str(&w), "--json", "--precision"]);
        v.extend(strings(&[precision, "--data-dir", path_str(&data)]));
        let o = run(&v, dir.path());
        assert_ok(&o);
        serde_json::from_str(stdout(&o).trim()).unwrap()
    };
    let (a16, a32) = (eval("bf16"), eval("f32"));
    assert_eq!(a16["samples"], 20);
    let gap = a16["accuracy"].as_f64().unwrap() - a32["accuracy"].as_f64().unwrap();
    assert!(gap.abs() <= 0.05 + 1e-9, "{a16} against {a32}");

    // an experiment in bf16 says so in results.json and its report
    let exp = dir.path().join("placement");
    let mut v = strings(&["experiment", "placement", "--epochs", "1", "--threads", "2"]);
    v.extend(strings(&[
        "--quiet",
        "--data-dir",
        path_str(&data),
        "--out",
        path_str(&exp),
    ]));
    v.extend(strings(&["--precision", "bf16"]));
    assert_ok(&run(&v, dir.path()));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exp.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["precision"], "bf16");
    let report = std::fs::read_to_string(exp.join("report.html")).unwrap();
    assert!(report.contains("--precision bf16"));

    // every kernel this CPU has (AMX and AVX512-BF16 on an Intel Xeon), forced one at a time:
    // the same evaluation within one image of each other
    for k in bf16::cpu_kernels() {
        let name = match k {
            bf16::Bf16Kernel::Amx => "amx",
            bf16::Bf16Kernel::Avx512Bf16 => "avx512",
        };
        let w = out.join("last.safetensors");
        let mut v = strings(&["eval", "--weights", path_str(&w), "--json", "--precision"]);
        v.extend(strings(&["bf16", "--data-dir", path_str(&data)]));
        let o = command(&v, dir.path())
            .env(bf16::KERNEL_ENV, name)
            .output()
            .unwrap();
        assert_ok(&o);
        let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let gap = j["accuracy"].as_f64().unwrap() - a16["accuracy"].as_f64().unwrap();
        assert!(gap.abs() <= 0.05 + 1e-9, "{name}: {j} against {a16}");
    }
}

#[test]
fn summary_says_what_bf16_changes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = run(&strings(&["summary", "--model", "cnn-bn"]), dir.path());
    let bf16 = run(
        &strings(&["summary", "--model", "cnn-bn", "--precision", "bf16"]),
        dir.path(),
    );
    assert_ok(&plain);
    assert_ok(&bf16);
    let (plain, bf16) = (stdout(&plain), stdout(&bf16));
    assert!(
        !plain.contains("Precision"),
        "float32 is torchinfo's table alone"
    );
    // the same table, then one line
    let extra = bf16.strip_prefix(&plain).expect("the same table first");
    assert_eq!(extra.lines().count(), 1, "{extra}");
    assert!(
        extra.starts_with("Precision: bf16") && extra.contains("float32"),
        "{extra}"
    );
}
