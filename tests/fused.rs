//! The fused BatchNorm2d -> ReLU -> MaxPool2d(2, 2) op against its oracle: the three ops one
//! after the other (each checked against PyTorch and finite differences elsewhere). The
//! forward must give the same values bit for bit (the same arithmetic); gradients may differ
//! only by summation order. Under `Precision::Bf16` the same holds: both paths run the same
//! bfloat16 products (on a CPU without a bfloat16 kernel that test checks the refusal instead).
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::nn::{
    set_training, BatchNorm, Conv2d, Conv2dConfig, Forward, Layer, MaxPool2d, ReLU, Sequential,
};
use bnlab::{BnStats, ConvArgs, Graph, Precision, Rng, Tensor, Var};

struct Case {
    shape: [usize; 4],
    affine: bool,
    running: bool,
    seed: u64,
}

struct Run {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Option<Vec<f32>>,
    db: Option<Vec<f32>>,
    mean: Option<Vec<f32>>,
}

fn random(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

fn run(case: &Case, fused: bool, poison: Option<usize>) -> Run {
    let [n, c, h, w] = case.shape;
    let mut rng = Rng::seed(case.seed);
    let mut xs = random(&mut rng, n * c * h * w, -2.0, 2.0);
    if let Some(i) = poison {
        xs[i] = f32::NAN;
    }
    let weight = random(&mut rng, c, -1.5, 1.5); // negative weights reverse a window's order
    let bias = random(&mut rng, c, -0.5, 0.5);
    let (rmean, rvar) = (
        random(&mut rng, c, -0.5, 0.5),
        random(&mut rng, c, 0.5, 2.0),
    );
    let mut g = Graph::new(0);
    let x = g
        .input(&Tensor::new(&case.shape, xs).unwrap(), true)
        .unwrap();
    let (wv, bv) = if case.affine {
        let wi = g.params.add(Tensor::new(&[c], weight).unwrap()).unwrap();
        let bi = g.params.add(Tensor::new(&[c], bias).unwrap()).unwrap();
        (Some(g.param(wi)), Some(g.param(bi)))
    } else {
        (None, None)
    };
    let stats = if case.running {
        BnStats::Running {
            mean: &rmean,
            var: &rvar,
            eps: 1e-5,
        }
    } else {
        BnStats::Batch { eps: 1e-5 }
    };
    let (y, bn): (Var, Var) = if fused {
        let y = g.batch_norm_relu_pool(x, wv, bv, stats).unwrap();
        (y, y)
    } else {
        let z = g.batch_norm(x, wv, bv, stats).unwrap();
        let r = g.relu(z).unwrap();
        (g.max_pool2d(r, 2, 2).unwrap(), z)
    };
    let mean = g.batch_stats(bn).map(|(m, _)| m.to_vec());
    let yv = g.value(y).to_vec();
    let dy = random(&mut rng, yv.len(), -1.0, 1.0);
    g.backward_from(y, &dy).unwrap();
    let grad = |v: Option<Var>| v.map(|v| g.grad(v).unwrap().to_vec());
    Run {
        y: yv,
        dx: g.grad(x).unwrap().to_vec(),
        dw: grad(wv),
        db: grad(bv),
        mean,
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_close_to_scale(what, a, b, max_abs(b).max(1e-3));
}

/// |a - b| within 1e-5 of `scale` (the size of the terms that were summed) plus 1e-6 of |b|.
fn assert_close_to_scale(what: &str, a: &[f32], b: &[f32], scale: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * scale + 1e-6 * y.abs(),
            "{what}[{i}]: fused {x}, separate {y}"
        );
    }
}

fn check(case: Case) {
    let (f, s) = (run(&case, true, None), run(&case, false, None));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&f.y), bits(&s.y), "forward values differ");
    assert_eq!(f.mean, s.mean, "statistics differ");
    assert_close("dx", &f.dx, &s.dx);
    assert_eq!(f.dw.is_some(), s.dw.is_some());
    if let (Some(a), Some(b)) = (&f.dw, &s.dw) {
        assert_close("dweight", a, b);
    }
    if let (Some(a), Some(b)) = (&f.db, &s.db) {
        assert_close("dbias", a, b);
    }
}

#[test]
fn batch_statistics_with_affine() {
    check(Case {
        shape: [2, 3, 6, 8],
        affine: true,
        running: false,
        seed: 1,
    });
}

#[test]
fn odd_sizes_leave_the_last_row_and_column_out_of_every_window() {
    check(Case {
        shape: [3, 2, 7, 5],
        affine: true,
        running: false,
        seed: 2,
    });
}

#[test]
fn without_affine_parameters() {
    check(Case {
        shape: [2, 4, 4, 4],
        affine: false,
        running: false,
        seed: 3,
    });
}

#[test]
fn running_statistics() {
    check(Case {
        shape: [2, 3, 6, 6],
        affine: true,
        running: true,
        seed: 4,
    });
}

#[test]
fn many_planes_split_over_threads() {
    // more planes than one parallel task takes, and the cnn preset's plane size
    check(Case {
        shape: [9, 5, 28, 28],
        affine: true,
        running: false,
        seed: 5,
    });
}

#[test]
fn nan_reaches_the_output_as_the_separate_layers_let_it() {
    let case = Case {
        shape: [1, 2, 4, 4],
        affine: true,
        running: true,
        seed: 6,
    };
    // running statistics keep the NaN in its own window; each corner of a window in turn
    for poison in [0, 1, 4, 5, 10, 15] {
        let (f, s) = (
            run(&case, true, Some(poison)),
            run(&case, false, Some(poison)),
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(f.y.iter().any(|v| v.is_nan()), "NaN at {poison}");
        assert_eq!(bits(&f.y), bits(&s.y), "NaN at {poison}");
    }
}

/// Sequential fuses BatchNorm2d, ReLU, MaxPool2d(2); the module's running statistics and
/// counter must move as they do when the layers run one by one.
#[test]
fn sequential_updates_running_statistics_like_the_separate_layers() {
    let shape = [4, 3, 6, 6];
    let n: usize = shape.iter().product();
    let mut rng = Rng::seed(8);
    let xs = Tensor::new(&shape, random(&mut rng, n, -1.0, 3.0)).unwrap();
    let mut outputs = Vec::new();
    let mut states = Vec::new();
    for fused in [true, false] {
        let mut g = Graph::new(0);
        let bn = BatchNorm::d2(&mut g.params, 3).unwrap();
        let mut seq = Sequential::fused(vec![
            Layer::BatchNorm(bn),
            Layer::ReLU(ReLU),
            Layer::MaxPool2d(MaxPool2d::new(2)),
        ]);
        set_training(&mut seq, true);
        let mut y = None;
        for _ in 0..2 {
            let x = g.input(&xs, false).unwrap();
            y = Some(if fused {
                seq.forward(&mut g, x).unwrap()
            } else {
                let mut v = x;
                for l in &mut seq.layers {
                    v = l.forward(&mut g, v).unwrap();
                }
                v
            });
        }
        outputs.push(g.value(y.unwrap()).to_vec());
        let Layer::BatchNorm(bn) = &seq.layers[0] else {
            unreachable!()
        };
        states.push((
            bn.running_mean.data.clone(),
            bn.running_var.data.clone(),
            bn.num_batches_tracked,
        ));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(states[0], states[1]);
    assert_eq!(states[0].2, 2);
}

// ---------------------------------------------------------------------------------------------
// Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d(2, 2) as one op

struct ConvCase {
    x: [usize; 4],
    cout: usize,
    kernel: usize,
    pad: usize,
    conv_bias: bool,
    running: bool,
    seed: u64,
}

/// Output, then the gradients of x, conv weight, conv bias, bn weight, bn bias; and the batch mean.
type ConvRun = (Vec<f32>, Vec<Vec<f32>>, Option<Vec<f32>>);

fn run_conv(case: &ConvCase, fused: bool) -> ConvRun {
    run_conv_in(case, fused, Precision::F32)
}

/// [`run_conv`] with the convolution's products in `precision`.
fn run_conv_in(case: &ConvCase, fused: bool, precision: Precision) -> ConvRun {
    let [n, cin, h, w] = case.x;
    let (c, k) = (case.cout, case.kernel);
    let mut rng = Rng::seed(case.seed);
    let xs = random(&mut rng, n * cin * h * w, -1.0, 1.0);
    let cw = random(&mut rng, c * cin * k * k, -0.5, 0.5);
    let cb = random(&mut rng, c, -0.5, 0.5);
    let (bw, bb) = (
        random(&mut rng, c, -1.5, 1.5),
        random(&mut rng, c, -0.5, 0.5),
    );
    let (rmean, rvar) = (
        random(&mut rng, c, -0.5, 0.5),
        random(&mut rng, c, 0.5, 2.0),
    );
    let mut g = Graph::new(0);
    g.set_precision(precision).unwrap();
    let x = g.input(&Tensor::new(&case.x, xs).unwrap(), true).unwrap();
    let param = |g: &mut Graph, shape: &[usize], v: Vec<f32>| {
        let id = g.params.add(Tensor::new(shape, v).unwrap()).unwrap();
        g.param(id)
    };
    let cwv = param(&mut g, &[c, cin, k, k], cw);
    let cbv = case.conv_bias.then(|| param(&mut g, &[c], cb));
    let (bwv, bbv) = (param(&mut g, &[c], bw), param(&mut g, &[c], bb));
    let stats = if case.running {
        BnStats::Running {
            mean: &rmean,
            var: &rvar,
            eps: 1e-5,
        }
    } else {
        BnStats::Batch { eps: 1e-5 }
    };
    let (y, bn) = if fused {
        let conv = ConvArgs {
            w: cwv,
            b: cbv,
            stride: 1,
            pad: case.pad,
        };
        let y = g
            .conv_bn_relu_pool(x, conv, Some(bwv), Some(bbv), stats)
            .unwrap();
        (y, y)
    } else {
        let z = g.conv2d(x, cwv, cbv, 1, case.pad).unwrap();
        let z = g.batch_norm(z, Some(bwv), Some(bbv), stats).unwrap();
        let r = g.relu(z).unwrap();
        (g.max_pool2d(r, 2, 2).unwrap(), z)
    };
    let mean = g.batch_stats(bn).map(|(m, _)| m.to_vec());
    let yv = g.value(y).to_vec();
    let dy = random(&mut rng, yv.len(), -1.0, 1.0);
    g.backward_from(y, &dy).unwrap();
    let grads = [Some(x), Some(cwv), cbv, Some(bwv), Some(bbv)]
        .into_iter()
        .flatten()
        .map(|v| g.grad(v).unwrap().to_vec())
        .collect();
    (yv, grads, mean)
}

fn check_conv(case: ConvCase) {
    check_conv_in(case, Precision::F32)
}

fn check_conv_in(case: ConvCase, precision: Precision) {
    let (fused, separate) = (
        run_conv_in(&case, true, precision),
        run_conv_in(&case, false, precision),
    );
    let ((fy, fg, fm), (sy, sg, sm)) = (fused, separate);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&fy), bits(&sy), "forward values differ");
    assert_eq!(fm, sm, "statistics differ");
    assert_eq!(fg.len(), sg.len());
    for (i, (a, b)) in fg.iter().zip(&sg).enumerate() {
        if i == 2 && case.conv_bias && !case.running {
            continue; // below
        }
        assert_close(&format!("gradient {i}"), a, b);
    }
    if case.conv_bias && !case.running {
        // a bias before batch statistics gets exactly zero gradient (the mean removes it):
        // both sides must be rounding noise next to the weight gradient, the same sums weighted
        assert_close_to_scale("conv bias gradient", &fg[2], &sg[2], max_abs(&sg[1]));
        assert!(max_abs(&fg[2]) <= 1e-5 * max_abs(&sg[1]));
    }
}

#[test]
fn conv_block_with_batch_statistics() {
    check_conv(ConvCase {
        x: [3, 2, 8, 6],
        cout: 4,
        kernel: 3,
        pad: 1,
        conv_bias: true,
        running: false,
        seed: 11,
    });
}

#[test]
fn conv_block_without_conv_bias_odd_output_and_no_padding() {
    check_conv(ConvCase {
        x: [2, 3, 7, 9],
        cout: 3,
        kernel: 2,
        pad: 0,
        conv_bias: false,
        running: false,
        seed: 12,
    });
}

#[test]
fn conv_block_with_running_statistics() {
    check_conv(ConvCase {
        x: [2, 1, 6, 6],
        cout: 5,
        kernel: 3,
        pad: 1,
        conv_bias: true,
        running: true,
        seed: 13,
    });
}

#[test]
fn conv_block_at_the_cnn_presets_size_over_many_chunks() {
    check_conv(ConvCase {
        x: [20, 1, 28, 28],
        cout: 8,
        kernel: 3,
        pad: 1,
        conv_bias: true,
        running: false,
        seed: 14,
    });
}

/// In bfloat16 the fused block's convolution runs the same bfloat16 products as Conv2d alone:
/// the same values, and not float32's.
#[test]
fn conv_block_in_bfloat16_is_the_separate_layers_in_bfloat16() {
    let case = || ConvCase {
        x: [5, 3, 10, 10],
        cout: 6,
        kernel: 3,
        pad: 1,
        conv_bias: true,
        running: false,
        seed: 15,
    };
    if let Err(why) = bnlab::internal::bf16::kernel() {
        let e = Graph::new(0).set_precision(Precision::Bf16).unwrap_err();
        assert_eq!(e.to_string(), format!("precision bf16: {why}"));
        return;
    }
    check_conv_in(case(), Precision::Bf16);
    let (y16, _, _) = run_conv_in(&case(), true, Precision::Bf16);
    let (y32, _, _) = run_conv_in(&case(), true, Precision::F32);
    assert!(
        y16.iter().zip(&y32).any(|(a, b)| a != b),
        "the products were rounded"
    );
}

/// Conv2d(cin, cout, 3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2), in training mode.
fn conv_block(g: &mut Graph, cin: usize, cout: usize, seed: u64) -> Sequential {
    let mut init = Rng::seed(seed);
    let conv = Conv2d::with_config(
        &mut g.params,
        Conv2dConfig {
            stride: 1,
            padding: 1,
            bias: true,
            ..Conv2dConfig::new(cin, cout, 3)
        },
        &mut init,
    )
    .unwrap();
    let bn = BatchNorm::d2(&mut g.params, cout).unwrap();
    let mut seq = Sequential::fused(vec![
        Layer::Conv2d(conv),
        Layer::BatchNorm(bn),
        Layer::ReLU(ReLU),
        Layer::MaxPool2d(MaxPool2d::new(2)),
    ]);
    set_training(&mut seq, true);
    seq
}

/// Sequential fuses Conv2d, BatchNorm2d, ReLU, MaxPool2d(2): outputs, running statistics and
/// parameter gradients as when the layers run one by one.
#[test]
fn sequential_fuses_the_conv_block_like_the_separate_layers() {
    let shape = [4, 2, 6, 6];
    let n: usize = shape.iter().product();
    let mut rng = Rng::seed(15);
    let xs = Tensor::new(&shape, random(&mut rng, n, -1.0, 3.0)).unwrap();
    let mut results = Vec::new();
    for fused in [true, false] {
        let mut g = Graph::new(0);
        let mut seq = conv_block(&mut g, 2, 3, 16);
        let x = g.input(&xs, false).unwrap();
        let y = if fused {
            let y = seq.forward(&mut g, x).unwrap();
            // the input and one op: the block really ran fused
            assert_eq!(g.len(), 2, "Sequential::fused ran the layers one by one");
            y
        } else {
            let mut v = x;
            for l in &mut seq.layers {
                v = l.forward(&mut g, v).unwrap();
            }
            v
        };
        let out = g.value(y).to_vec();
        let ones = vec![1.0; out.len()];
        g.backward_from(y, &ones).unwrap();
        let Layer::Conv2d(conv) = &seq.layers[0] else {
            unreachable!()
        };
        let conv_grad = g.params.grad(conv.weight).unwrap().to_vec();
        let Layer::BatchNorm(bn) = &seq.layers[1] else {
            unreachable!()
        };
        results.push((
            out,
            conv_grad,
            bn.running_mean.data.clone(),
            bn.running_var.data.clone(),
            bn.num_batches_tracked,
        ));
    }
    let (f, s) = (&results[0], &results[1]);
    assert_eq!(f.0, s.0);
    assert_close("conv weight gradient", &f.1, &s.1);
    assert_eq!((&f.2, &f.3, f.4), (&s.2, &s.3, s.4));
}

/// Where pooling cannot apply (a 1 x 1 map), Sequential runs the layers one by one, so the
/// error is MaxPool2d's own.
#[test]
fn a_map_too_small_to_pool_gets_max_pool2ds_error() {
    let mut g = Graph::new(0);
    let mut seq = conv_block(&mut g, 1, 2, 17);
    let x = g
        .input(&Tensor::new(&[2, 1, 1, 1], vec![0.5, -0.5]).unwrap(), false)
        .unwrap();
    let err = seq.forward(&mut g, x).unwrap_err().to_string();
    assert!(err.contains("max_pool2d"), "{err}");
}

/// The fused block's results do not depend on how many threads run it: samples are split into
/// chunks that depend on the batch size only, and partial sums are added in a fixed order.
#[test]
fn conv_block_results_do_not_depend_on_the_thread_count() {
    let case = ConvCase {
        x: [37, 2, 10, 10],
        cout: 6,
        kernel: 3,
        pad: 1,
        conv_bias: true,
        running: false,
        seed: 18,
    };
    let one = bnlab::runtime::with_threads(1, || run_conv(&case, true)).unwrap();
    let two = bnlab::runtime::with_threads(2, || run_conv(&case, true)).unwrap();
    let three = bnlab::runtime::with_threads(3, || run_conv(&case, true)).unwrap();
    let bits = |r: &(Vec<f32>, Vec<Vec<f32>>, Option<Vec<f32>>)| {
        let mut all: Vec<u32> = r.0.iter().map(|v| v.to_bits()).collect();
        for g in &r.1 {
            all.extend(g.iter().map(|v| v.to_bits()));
        }
        all
    };
    assert_eq!(bits(&one), bits(&two));
    assert_eq!(bits(&one), bits(&three));
}
