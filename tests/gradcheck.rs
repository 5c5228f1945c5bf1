//! Every differentiable op's gradient against central finite differences.
//!
//! For an op y = f(args), a random upstream gradient dy defines the scalar S = sum(dy * y); the
//! graph's `backward_from(y, dy)` must give dS/darg for every argument that needs a gradient.
//! The oracle differentiates S numerically: (S(x + h) - S(x - h)) / (2h), element by element,
//! with every evaluation on a fresh graph (`Graph::new(GRAPH_SEED)`, so a dropout mask repeats)
//! and S summed in f64. Values are f32, so h is 1e-2 and the tolerance is relative (see `check`).
//! Inputs avoid the places where an op is not differentiable (relu at 0, ties in max pooling).
//!
//! (Longer than 400 lines on purpose: one subject's tests share one test binary, since each
//! file under tests/ is compiled and linked on its own, which costs CI time; the tests in it are
//! independent and short.)

use bnlab::nn::GeluApproximate;
use bnlab::{BnStats, Graph, ParamId, Rng, Tensor, Var};

const GRAPH_SEED: u64 = 7;
/// Finite-difference step.
const H: f32 = 1e-2;
/// Allowed error: RTOL of the element's own numeric gradient plus ATOL_FRAC of the largest
/// numeric gradient of the same argument (f32 rounding of S divided by 2h, and the O(h^2)
/// truncation of the central difference, both scale with the gradient's size). Correct kernels
/// stay below a fifth of this on every case here; a wrong term is off by far more.
const RTOL: f64 = 1e-3;
const ATOL_FRAC: f64 = 5e-4;

/// How an argument enters the graph.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `g.params.add(t)` and `g.param(id)`: gradient read from `g.params.grad(id)`.
    Param,
    /// `g.input(&t, true)`: gradient read from `g.grad(var)`.
    Input,
    /// `g.input(&t, false)`: no gradient, not checked.
    Const,
}

#[derive(Clone, Debug)]
struct Arg {
    t: Tensor,
    kind: Kind,
}

fn param(t: Tensor) -> Arg {
    Arg {
        t,
        kind: Kind::Param,
    }
}

fn input(t: Tensor) -> Arg {
    Arg {
        t,
        kind: Kind::Input,
    }
}

fn constant(t: Tensor) -> Arg {
    Arg {
        t,
        kind: Kind::Const,
    }
}

/// Uniform values in [lo, hi).
fn uniform(rng: &mut Rng, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.uniform(lo, hi)).collect()).unwrap()
}

/// Values of random sign with |x| in [min, max): no value within a step h of a kink at 0.
fn away_from_zero(rng: &mut Rng, shape: &[usize], min: f32, max: f32) -> Tensor {
    let mut t = uniform(rng, shape, min, max);
    for v in &mut t.data {
        if rng.next_f32() < 0.5 {
            *v = -*v;
        }
    }
    t
}

/// A random permutation of evenly spaced values (spacing `gap`, centred on 0): all distinct, so
/// a perturbation smaller than gap / 2 never changes which value is a window's maximum.
fn distinct(rng: &mut Rng, shape: &[usize], gap: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut data: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * gap).collect();
    rng.shuffle(&mut data);
    Tensor::new(shape, data).unwrap()
}

/// One evaluation on a fresh graph.
struct Eval {
    g: Graph,
    vars: Vec<Var>,
    ids: Vec<Option<ParamId>>,
    y: Var,
}

fn eval<F: Fn(&mut Graph, &[Var]) -> Var>(args: &[Arg], f: &F) -> Eval {
    let mut g = Graph::new(GRAPH_SEED);
    let mut vars = Vec::new();
    let mut ids = Vec::new();
    for a in args {
        match a.kind {
            Kind::Param => {
                let id = g.params.add(a.t.clone()).unwrap();
                vars.push(g.param(id));
                ids.push(Some(id));
            }
            Kind::Input | Kind::Const => {
                vars.push(g.input(&a.t, a.kind == Kind::Input).unwrap());
                ids.push(None);
            }
        }
    }
    let y = f(&mut g, &vars);
    Eval { g, vars, ids, y }
}

/// S = sum(dy * y), in f64.
fn objective(g: &Graph, y: Var, dy: &[f32]) -> f64 {
    let v = g.value(y);
    assert_eq!(v.len(), dy.len());
    v.iter().zip(dy).map(|(&y, &d)| y as f64 * d as f64).sum()
}

/// Check the gradient of every non-constant argument of `f` against central differences.
/// Returns the analytic gradients (one per argument, empty for constants) for extra checks.
fn check<F: Fn(&mut Graph, &[Var]) -> Var>(name: &str, args: &[Arg], f: F) -> Vec<Vec<f32>> {
    let mut e = eval(args, &f);
    let n = e.g.value(e.y).len();
    let mut rng = Rng::seed(0xD1);
    // a random upstream, also for scalar outputs (so that dloss != 1 is exercised)
    let dy: Vec<f32> = (0..n)
        .map(|_| rng.uniform(0.5, 1.5) * if rng.next_f32() < 0.5 { -1.0 } else { 1.0 })
        .collect();
    e.g.backward_from(e.y, &dy)
        .unwrap_or_else(|err| panic!("{name}: backward_from failed: {err}"));
    let mut out = Vec::new();
    for (k, arg) in args.iter().enumerate() {
        let analytic: Vec<f32> = match arg.kind {
            Kind::Const => {
                out.push(Vec::new());
                continue;
            }
            Kind::Param => e.g.params.grad(e.ids[k].unwrap()),
            Kind::Input => e.g.grad(e.vars[k]),
        }
        .unwrap_or_else(|| panic!("{name}: argument {k} ({:?}) received no gradient", arg.kind))
        .to_vec();
        assert_eq!(
            analytic.len(),
            arg.t.numel(),
            "{name}: argument {k}: gradient length"
        );
        let numeric: Vec<f64> = (0..arg.t.numel())
            .map(|i| {
                let x = arg.t.data[i];
                let (xp, xm) = (x + H, x - H);
                let s = |v: f32| {
                    let mut a = args.to_vec();
                    a[k].t.data[i] = v;
                    let e = eval(&a, &f);
                    objective(&e.g, e.y, &dy)
                };
                (s(xp) - s(xm)) / (xp as f64 - xm as f64)
            })
            .collect();
        let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{name}: argument {k}: the numeric gradient is ~0 everywhere, so this case proves nothing");
        let mut failures = Vec::new();
        for (i, (&a, &num)) in analytic.iter().zip(&numeric).enumerate() {
            let err = (a as f64 - num).abs();
            let tol = RTOL * num.abs() + ATOL_FRAC * scale;
            if err.is_nan() || err > tol {
                failures.push(format!(
                    "[{i}] analytic {a:.6e} numeric {num:.6e} |diff| {err:.2e} > tol {tol:.2e}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{name}: argument {k} ({:?}, shape {:?}): {} of {} gradients differ from central differences:\n  {}",
            arg.kind,
            arg.t.shape,
            failures.len(),
            analytic.len(),
            failures.iter().take(12).cloned().collect::<Vec<_>>().join("\n  ")
        );
        out.push(analytic);
    }
    out
}

/// |a - b| <= tol for f32 values against an f64 reference.
fn assert_close(what: &str, actual: &[f32], expected: &[f64], atol: f64, rtol: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let err = (a as f64 - e).abs();
        assert!(
            err <= atol + rtol * e.abs(),
            "{what}[{i}]: got {a}, expected {e} (|diff| {err:e})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// linear

#[test]
fn linear_with_bias() {
    let mut rng = Rng::seed(1);
    let args = [
        input(uniform(&mut rng, &[3, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[4, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[4], -1.0, 1.0)),
    ];
    check("linear", &args, |g, v| {
        g.linear(v[0], v[1], Some(v[2])).unwrap()
    });
}

#[test]
fn linear_without_bias() {
    let mut rng = Rng::seed(2);
    let args = [
        input(uniform(&mut rng, &[4, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[6, 3], -1.0, 1.0)),
    ];
    check("linear, no bias", &args, |g, v| {
        g.linear(v[0], v[1], None).unwrap()
    });
}

#[test]
fn linear_on_a_rank_3_input() {
    // (*, I) inputs: every leading index is a row
    let mut rng = Rng::seed(3);
    let args = [
        input(uniform(&mut rng, &[2, 3, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[5, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[5], -1.0, 1.0)),
    ];
    check("linear (2, 3, 4)", &args, |g, v| {
        g.linear(v[0], v[1], Some(v[2])).unwrap()
    });
}

#[test]
fn linear_with_a_constant_input_gives_parameter_gradients() {
    let mut rng = Rng::seed(4);
    let args = [
        constant(uniform(&mut rng, &[3, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[2, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[2], -1.0, 1.0)),
    ];
    check("linear, constant x", &args, |g, v| {
        g.linear(v[0], v[1], Some(v[2])).unwrap()
    });
}

#[test]
fn linear_forward_matches_f64_matmul() {
    let mut rng = Rng::seed(5);
    let (n, i, o) = (7, 9, 5);
    let x = uniform(&mut rng, &[n, i], -1.0, 1.0);
    let w = uniform(&mut rng, &[o, i], -1.0, 1.0);
    let b = uniform(&mut rng, &[o], -1.0, 1.0);
    let mut g = Graph::new(0);
    let (wi, bi) = (
        g.params.add(w.clone()).unwrap(),
        g.params.add(b.clone()).unwrap(),
    );
    let xv = g.input(&x, false).unwrap();
    let (wv, bv) = (g.param(wi), g.param(bi));
    let y = g.linear(xv, wv, Some(bv)).unwrap();
    assert_eq!(g.shape(y), [n, o]);
    let mut expected = Vec::new();
    for r in 0..n {
        for c in 0..o {
            let dot: f64 = (0..i)
                .map(|k| x.data[r * i + k] as f64 * w.data[c * i + k] as f64)
                .sum();
            expected.push(dot + b.data[c] as f64);
        }
    }
    assert_close("linear y", g.value(y), &expected, 1e-5, 1e-5);
}

/// Mostly exact zeros, like MNIST pixels: runs of zeros (some longer than 16, some -0.0) and a
/// few nonzeros; one row entirely zero. Inputs like this may take a sparse Linear kernel.
fn mostly_zeros(rng: &mut Rng, rows: usize, cols: usize) -> Tensor {
    let mut data = vec![0.0f32; rows * cols];
    for r in 1..rows {
        for c in 0..cols {
            let u = rng.next_f32();
            data[r * cols + c] = if c < 17 {
                0.0 // a leading run of zeros in every row
            } else if u < 0.2 {
                rng.uniform(0.05, 1.0)
            } else if u < 0.25 {
                -0.0
            } else {
                0.0
            };
        }
    }
    Tensor::new(&[rows, cols], data).unwrap()
}

fn linear_f64(x: &Tensor, w: &[f32], b: Option<&[f32]>, o: usize) -> Vec<f64> {
    let i = *x.shape.last().unwrap();
    let mut out = Vec::new();
    for row in x.data.chunks(i) {
        for c in 0..o {
            let dot: f64 = (0..i).map(|k| row[k] as f64 * w[c * i + k] as f64).sum();
            out.push(dot + b.map_or(0.0, |b| b[c] as f64));
        }
    }
    out
}

#[test]
fn linear_on_a_mostly_zero_input() {
    let mut rng = Rng::seed(6);
    let x = mostly_zeros(&mut rng, 5, 40);
    let nnz = x.data.iter().filter(|v| **v != 0.0).count();
    assert!(
        nnz > 0 && nnz * 5 < x.numel(),
        "the input is mostly zeros ({nnz} nonzeros)"
    );
    let args = [
        constant(x.clone()),
        param(uniform(&mut rng, &[6, 40], -1.0, 1.0)),
        param(uniform(&mut rng, &[6], -1.0, 1.0)),
    ];
    check("linear, sparse x", &args, |g, v| {
        g.linear(v[0], v[1], Some(v[2])).unwrap()
    });
    let args = [constant(x), param(uniform(&mut rng, &[3, 40], -1.0, 1.0))];
    check("linear, sparse x, no bias", &args, |g, v| {
        g.linear(v[0], v[1], None).unwrap()
    });
}

#[test]
fn linear_on_a_mostly_zero_input_forward_and_updated_weights() {
    // the forward matches the f64 product, also after the weight changes between steps
    // (through value_mut, set, and an optimizer step), on a graph reused across steps
    use bnlab::optim::{Optimizer, Sgd, SgdConfig};
    let mut rng = Rng::seed(7);
    let (n, i, o) = (6, 48, 5);
    let x = mostly_zeros(&mut rng, n, i);
    let mut g = Graph::new(0);
    let w = g.params.add(uniform(&mut rng, &[o, i], -1.0, 1.0)).unwrap();
    let b = g.params.add(uniform(&mut rng, &[o], -1.0, 1.0)).unwrap();
    let mut opt = Sgd::new(
        vec![w, b],
        SgdConfig {
            lr: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    for step in 0..5 {
        g.reset();
        g.params.zero_grad();
        let xv = g.input(&x, false).unwrap();
        let (wv, bv) = (g.param(w), g.param(b));
        let y = g.linear(xv, wv, Some(bv)).unwrap();
        let want = linear_f64(&x, g.params.value(w), Some(g.params.value(b)), o);
        assert_close(
            &format!("sparse linear y, step {step}"),
            g.value(y),
            &want,
            1e-5,
            1e-5,
        );
        let t: Vec<f32> = (0..n * o).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let loss = g.mse(y, &t).unwrap();
        g.backward(loss).unwrap();
        match step {
            0 => opt.step(&mut g.params),
            1 => g.params.value_mut(w).iter_mut().for_each(|v| *v = -*v),
            2 => g
                .params
                .set(w, &uniform(&mut rng, &[o, i], -1.0, 1.0))
                .unwrap(),
            _ => opt.step(&mut g.params),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// batch_norm

/// batch_norm on an input of `shape` (C = shape[1]), with or without weight and bias.
fn bn_case(name: &str, shape: &[usize], affine: (bool, bool), running: bool, seed: u64) {
    let mut rng = Rng::seed(seed);
    let c = shape[1];
    let mut args = vec![input(uniform(&mut rng, shape, -2.0, 2.0))];
    if affine.0 {
        args.push(param(uniform(&mut rng, &[c], 0.5, 1.5)));
    }
    if affine.1 {
        args.push(param(uniform(&mut rng, &[c], -1.0, 1.0)));
    }
    let mean: Vec<f32> = (0..c).map(|_| rng.uniform(-0.5, 0.5)).collect();
    let var: Vec<f32> = (0..c).map(|_| rng.uniform(0.5, 2.0)).collect();
    check(name, &args, |g, v| {
        let w = affine.0.then(|| v[1]);
        let b = affine.1.then(|| v[if affine.0 { 2 } else { 1 }]);
        let stats = if running {
            BnStats::Running {
                mean: &mean,
                var: &var,
                eps: 1e-5,
            }
        } else {
            BnStats::Batch { eps: 1e-5 }
        };
        g.batch_norm(v[0], w, b, stats).unwrap()
    });
}

#[test]
fn batch_norm_batch_stats_nc() {
    bn_case("bn batch (6, 3)", &[6, 3], (true, true), false, 10);
}

#[test]
fn batch_norm_batch_stats_ncl() {
    bn_case("bn batch (4, 3, 5)", &[4, 3, 5], (true, true), false, 11);
}

#[test]
fn batch_norm_batch_stats_nchw() {
    bn_case(
        "bn batch (3, 2, 3, 4)",
        &[3, 2, 3, 4],
        (true, true),
        false,
        12,
    );
}

#[test]
fn batch_norm_batch_stats_without_affine() {
    bn_case(
        "bn batch (6, 3), no affine",
        &[6, 3],
        (false, false),
        false,
        13,
    );
    bn_case(
        "bn batch (2, 3, 2, 3), no affine",
        &[2, 3, 2, 3],
        (false, false),
        false,
        14,
    );
}

#[test]
fn batch_norm_batch_stats_weight_only_and_bias_only() {
    bn_case(
        "bn batch (5, 2, 3), weight only",
        &[5, 2, 3],
        (true, false),
        false,
        15,
    );
    bn_case(
        "bn batch (5, 4), bias only",
        &[5, 4],
        (false, true),
        false,
        16,
    );
}

#[test]
fn batch_norm_running_stats_nc() {
    bn_case("bn running (6, 3)", &[6, 3], (true, true), true, 20);
}

#[test]
fn batch_norm_running_stats_ncl() {
    bn_case("bn running (4, 3, 5)", &[4, 3, 5], (true, true), true, 21);
}

#[test]
fn batch_norm_running_stats_nchw() {
    bn_case(
        "bn running (3, 2, 3, 4)",
        &[3, 2, 3, 4],
        (true, true),
        true,
        22,
    );
}

#[test]
fn batch_norm_running_stats_without_affine() {
    bn_case(
        "bn running (6, 3), no affine",
        &[6, 3],
        (false, false),
        true,
        23,
    );
    bn_case(
        "bn running (2, 3, 2, 3), no affine",
        &[2, 3, 2, 3],
        (false, false),
        true,
        24,
    );
}

#[test]
fn batch_norm_forward_matches_the_formula() {
    // y = (x - mean) / sqrt(var_biased + eps) * w + b, per channel over (N, H, W)
    let mut rng = Rng::seed(25);
    let (n, c, s) = (3, 2, 6);
    let x = uniform(&mut rng, &[n, c, 2, 3], -3.0, 1.0);
    let w = uniform(&mut rng, &[c], 0.5, 1.5);
    let b = uniform(&mut rng, &[c], -1.0, 1.0);
    let mut g = Graph::new(0);
    let (wi, bi) = (
        g.params.add(w.clone()).unwrap(),
        g.params.add(b.clone()).unwrap(),
    );
    let xv = g.input(&x, false).unwrap();
    let (wv, bv) = (g.param(wi), g.param(bi));
    let y = g
        .batch_norm(xv, Some(wv), Some(bv), BnStats::Batch { eps: 1e-5 })
        .unwrap();
    let at = |ni: usize, ci: usize, si: usize| x.data[(ni * c + ci) * s + si] as f64;
    let mut expected = vec![0.0; x.numel()];
    for ci in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|ni| (0..s).map(move |si| (ni, si)))
            .map(|(ni, si)| at(ni, ci, si))
            .collect();
        let m = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / m;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        for ni in 0..n {
            for si in 0..s {
                expected[(ni * c + ci) * s + si] = (at(ni, ci, si) - mean) / (var + 1e-5).sqrt()
                    * w.data[ci] as f64
                    + b.data[ci] as f64;
            }
        }
    }
    assert_close("bn y", g.value(y), &expected, 1e-5, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// relu, dropout

#[test]
fn relu() {
    let mut rng = Rng::seed(30);
    let args = [input(away_from_zero(&mut rng, &[4, 6], 0.1, 2.0))];
    let grads = check("relu", &args, |g, v| g.relu(v[0]).unwrap());
    // both branches were exercised
    assert!(grads[0].contains(&0.0) && grads[0].iter().any(|&d| d != 0.0));
}

#[test]
fn dropout_with_a_fixed_mask() {
    let p = 0.4f32;
    let mut rng = Rng::seed(31);
    let x = away_from_zero(&mut rng, &[5, 8], 0.1, 1.0);
    // the mask is a function of the graph's seed: the forward itself shows it
    let mut g = Graph::new(GRAPH_SEED);
    let xv = g.input(&x, false).unwrap();
    let y = g.dropout(xv, p).unwrap();
    let (mut kept, mut dropped) = (0, 0);
    for (&yv, &xv) in g.value(y).iter().zip(&x.data) {
        if yv == 0.0 {
            dropped += 1;
        } else {
            kept += 1;
            let want = xv as f64 / (1.0 - p as f64);
            assert!(
                (yv as f64 - want).abs() <= 1e-6 * want.abs(),
                "kept value {yv}, expected x / (1 - p) = {want}"
            );
        }
    }
    assert!(
        kept > 0 && dropped > 0,
        "a mask of 40 draws at p = {p} keeps some and drops some ({kept} kept)"
    );
    let args = [input(x)];
    check("dropout", &args, |g, v| g.dropout(v[0], p).unwrap());
}

#[test]
fn dropout_after_linear() {
    let mut rng = Rng::seed(32);
    let args = [
        input(uniform(&mut rng, &[4, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[6, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[6], -1.0, 1.0)),
    ];
    check("linear -> dropout", &args, |g, v| {
        let h = g.linear(v[0], v[1], Some(v[2])).unwrap();
        g.dropout(h, 0.5).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// sigmoid, tanh, leaky_relu, gelu

#[test]
fn sigmoid() {
    // over (-4, 4): both tails and the steep middle
    let mut rng = Rng::seed(33);
    let args = [input(uniform(&mut rng, &[4, 6], -4.0, 4.0))];
    check("sigmoid", &args, |g, v| g.sigmoid(v[0]).unwrap());
}

#[test]
fn tanh() {
    let mut rng = Rng::seed(34);
    let args = [input(uniform(&mut rng, &[4, 6], -3.0, 3.0))];
    check("tanh", &args, |g, v| g.tanh(v[0]).unwrap());
}

#[test]
fn leaky_relu() {
    let slope = 0.1f32;
    let mut rng = Rng::seed(35);
    let args = [input(away_from_zero(&mut rng, &[4, 6], 0.1, 2.0))];
    let grads = check("leaky_relu", &args, |g, v| {
        g.leaky_relu(v[0], slope).unwrap()
    });
    // both branches were exercised: the gradient is dy where x > 0 and slope * dy elsewhere
    let (pos, neg) =
        args[0].t.data.iter().fold(
            (0, 0),
            |(p, n), &x| {
                if x > 0.0 {
                    (p + 1, n)
                } else {
                    (p, n + 1)
                }
            },
        );
    assert!(pos > 0 && neg > 0 && grads[0].iter().all(|&d| d != 0.0));
}

#[test]
fn gelu_exact_and_tanh_approximation() {
    for (name, approximate) in [
        ("gelu", GeluApproximate::None),
        ("gelu tanh", GeluApproximate::Tanh),
    ] {
        let mut rng = Rng::seed(36);
        let args = [input(uniform(&mut rng, &[4, 6], -3.0, 3.0))];
        check(name, &args, |g, v| g.gelu(v[0], approximate).unwrap());
    }
}

#[test]
fn activations_between_linear_layers() {
    // linear -> sigmoid -> linear -> tanh -> linear -> gelu -> leaky_relu: each op's backward
    // hands its input's gradient on to the next one back, and the parameters get theirs
    let mut rng = Rng::seed(37);
    let args = [
        input(uniform(&mut rng, &[3, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[5, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[5], -0.5, 0.5)),
        param(uniform(&mut rng, &[5, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[4, 5], -1.0, 1.0)),
    ];
    check("activations chain", &args, |g, v| {
        let h = g.linear(v[0], v[1], Some(v[2])).unwrap();
        let h = g.sigmoid(h).unwrap();
        let h = g.linear(h, v[3], None).unwrap();
        let h = g.tanh(h).unwrap();
        let h = g.linear(h, v[4], None).unwrap();
        let h = g.gelu(h, GeluApproximate::None).unwrap();
        g.leaky_relu(h, 0.2).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// layer_norm, group_norm

#[test]
fn layer_norm_over_the_last_dimension_with_affine() {
    let mut rng = Rng::seed(38);
    let args = [
        input(uniform(&mut rng, &[3, 4, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[5], 0.5, 1.5)),
        param(uniform(&mut rng, &[5], -0.5, 0.5)),
    ];
    check("layer_norm [5]", &args, |g, v| {
        g.layer_norm(v[0], &[5], Some(v[1]), Some(v[2]), 1e-5)
            .unwrap()
    });
}

#[test]
fn layer_norm_over_two_dimensions_without_affine() {
    let mut rng = Rng::seed(39);
    let args = [input(uniform(&mut rng, &[3, 4, 5], -1.0, 1.0))];
    check("layer_norm [4, 5]", &args, |g, v| {
        g.layer_norm(v[0], &[4, 5], None, None, 1e-5).unwrap()
    });
}

#[test]
fn group_norm_nchw_with_affine() {
    // 6 channels in 3 groups of 2, each group over 2 x 3 x 3 values
    let mut rng = Rng::seed(40);
    let args = [
        input(uniform(&mut rng, &[2, 6, 3, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[6], 0.5, 1.5)),
        param(uniform(&mut rng, &[6], -0.5, 0.5)),
    ];
    check("group_norm 3 groups", &args, |g, v| {
        g.group_norm(v[0], 3, Some(v[1]), Some(v[2]), 1e-5).unwrap()
    });
}

#[test]
fn group_norm_ncl_one_group_and_one_per_channel_without_affine() {
    for groups in [1, 4] {
        let mut rng = Rng::seed(41);
        let args = [input(uniform(&mut rng, &[2, 4, 5], -1.0, 1.0))];
        check(&format!("group_norm {groups} groups"), &args, |g, v| {
            g.group_norm(v[0], groups, None, None, 1e-5).unwrap()
        });
    }
}

// ---------------------------------------------------------------------------------------------
// avg_pool2d

#[test]
fn avg_pool2d_kernel2_stride2_with_a_leftover_row_and_column() {
    // 5 x 5 with k = 2, s = 2: floor gives 2 x 2, the last row and column reach no window
    let mut rng = Rng::seed(52);
    let args = [input(uniform(&mut rng, &[2, 2, 5, 5], -1.0, 1.0))];
    let grads = check("avgpool k2 s2", &args, |g, v| {
        g.avg_pool2d(v[0], (2, 2), (2, 2)).unwrap()
    });
    assert_last_row_and_column_get_nothing(&grads[0]);
}

#[test]
fn avg_pool2d_overlapping_rectangular_windows() {
    // k = (3, 2), s = (2, 1): values shared by several windows get each window's share
    let mut rng = Rng::seed(53);
    let args = [input(uniform(&mut rng, &[2, 3, 7, 6], -1.0, 1.0))];
    check("avgpool k(3,2) s(2,1)", &args, |g, v| {
        g.avg_pool2d(v[0], (3, 2), (2, 1)).unwrap()
    });
}

#[test]
fn conv_group_norm_sigmoid_avg_pool_linear_layer_norm() {
    // the new ops in one graph, as a small CNN uses them
    let mut rng = Rng::seed(54);
    let args = [
        input(uniform(&mut rng, &[2, 1, 6, 6], -1.0, 1.0)),
        param(uniform(&mut rng, &[4, 1, 3, 3], -0.5, 0.5)),
        param(uniform(&mut rng, &[4], 0.5, 1.5)),
        param(uniform(&mut rng, &[4], -0.5, 0.5)),
        param(uniform(&mut rng, &[5, 16], -0.5, 0.5)),
        param(uniform(&mut rng, &[5], 0.5, 1.5)),
    ];
    check("conv -> group_norm -> ... -> layer_norm", &args, |g, v| {
        let c = g.conv2d(v[0], v[1], None, 1, 1).unwrap();
        let n = g.group_norm(c, 2, Some(v[2]), Some(v[3]), 1e-5).unwrap();
        let s = g.sigmoid(n).unwrap();
        let p = g.avg_pool2d(s, (2, 2), (3, 3)).unwrap();
        let f = g.flatten(p).unwrap();
        let l = g.linear(f, v[4], None).unwrap();
        let t = g.tanh(l).unwrap();
        g.layer_norm(t, &[5], Some(v[5]), None, 1e-5).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// conv2d

fn conv_case(
    name: &str,
    x: &[usize],
    w: &[usize],
    bias: bool,
    stride: usize,
    pad: usize,
    seed: u64,
) {
    let mut rng = Rng::seed(seed);
    let mut args = vec![
        input(uniform(&mut rng, x, -1.0, 1.0)),
        param(uniform(&mut rng, w, -0.5, 0.5)),
    ];
    if bias {
        args.push(param(uniform(&mut rng, &[w[0]], -0.5, 0.5)));
    }
    check(name, &args, |g, v| {
        g.conv2d(v[0], v[1], bias.then(|| v[2]), stride, pad)
            .unwrap()
    });
}

#[test]
fn conv2d_stride1_pad0_bias() {
    conv_case(
        "conv s1 p0 bias",
        &[2, 3, 5, 6],
        &[4, 3, 3, 3],
        true,
        1,
        0,
        40,
    );
}

#[test]
fn conv2d_same_size_on_planes_smaller_than_the_kernel() {
    // 3x3, padding 1 on planes smaller than the kernel: most kernel taps read only padding
    let cases = [
        ("conv 1x2 plane", [2, 2, 1, 2], [3, 2, 3, 3], true, 47),
        ("conv 2x1 plane", [2, 2, 2, 1], [3, 2, 3, 3], false, 48),
        ("conv 1x1 plane", [3, 1, 1, 1], [2, 1, 3, 3], true, 49),
    ];
    for (name, x, w, bias, seed) in cases {
        conv_case(name, &x, &w, bias, 1, 1, seed);
    }
}

#[test]
fn conv2d_stride1_pad1_bias() {
    conv_case(
        "conv s1 p1 bias",
        &[2, 3, 5, 6],
        &[4, 3, 3, 3],
        true,
        1,
        1,
        41,
    );
}

#[test]
fn conv2d_stride2_pad0_no_bias() {
    conv_case(
        "conv s2 p0 no bias",
        &[2, 2, 7, 6],
        &[3, 2, 3, 3],
        false,
        2,
        0,
        42,
    );
}

#[test]
fn conv2d_stride2_pad1_bias() {
    conv_case(
        "conv s2 p1 bias",
        &[3, 2, 6, 5],
        &[5, 2, 3, 3],
        true,
        2,
        1,
        43,
    );
}

#[test]
fn conv2d_stride1_pad1_no_bias_rectangular_kernel() {
    conv_case(
        "conv s1 p1 no bias 2x3",
        &[2, 2, 4, 5],
        &[3, 2, 2, 3],
        false,
        1,
        1,
        44,
    );
}

#[test]
fn conv2d_forward_matches_direct_sum() {
    let mut rng = Rng::seed(45);
    let (n, ci, h, wd, co, k, stride, pad) = (2, 3, 6, 5, 4, 3, 2, 1);
    let x = uniform(&mut rng, &[n, ci, h, wd], -1.0, 1.0);
    let w = uniform(&mut rng, &[co, ci, k, k], -1.0, 1.0);
    let b = uniform(&mut rng, &[co], -1.0, 1.0);
    let mut g = Graph::new(0);
    let (wi, bi) = (
        g.params.add(w.clone()).unwrap(),
        g.params.add(b.clone()).unwrap(),
    );
    let xv = g.input(&x, false).unwrap();
    let (wv, bv) = (g.param(wi), g.param(bi));
    let y = g.conv2d(xv, wv, Some(bv), stride, pad).unwrap();
    let (ho, wo) = (
        (h + 2 * pad - k) / stride + 1,
        (wd + 2 * pad - k) / stride + 1,
    );
    assert_eq!(g.shape(y), [n, co, ho, wo]);
    let mut expected = Vec::new();
    for ni in 0..n {
        for o in 0..co {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = b.data[o] as f64;
                    for c in 0..ci {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = (
                                    (oy * stride + ky) as isize - pad as isize,
                                    (ox * stride + kx) as isize - pad as isize,
                                );
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xval = x.data
                                    [((ni * ci + c) * h + iy as usize) * wd + ix as usize]
                                    as f64;
                                acc += xval * w.data[((o * ci + c) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                    expected.push(acc);
                }
            }
        }
    }
    assert_close("conv y", g.value(y), &expected, 1e-5, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// max_pool2d

/// A 2 x 2, stride-2 pool of 5 x 5 planes: row 4 and column 4 reach no window, so their
/// gradient is exactly 0.
fn assert_last_row_and_column_get_nothing(grad: &[f32]) {
    for plane in grad.chunks(25) {
        for i in 0..5 {
            assert_eq!(plane[4 * 5 + i], 0.0, "row 4 is outside every window");
            assert_eq!(plane[i * 5 + 4], 0.0, "column 4 is outside every window");
        }
    }
}

#[test]
fn max_pool2d_kernel2_stride2_with_a_leftover_row_and_column() {
    // 5 x 5 with k = 2, s = 2: floor gives 2 x 2, the last row and column reach no window
    let mut rng = Rng::seed(50);
    let args = [input(distinct(&mut rng, &[2, 2, 5, 5], 0.05))];
    let grads = check("maxpool k2 s2", &args, |g, v| {
        g.max_pool2d(v[0], 2, 2).unwrap()
    });
    assert_last_row_and_column_get_nothing(&grads[0]);
}

#[test]
fn max_pool2d_overlapping_windows() {
    // k = 3, s = 2: a value can be the maximum of two windows and gets both gradients
    let mut rng = Rng::seed(51);
    let args = [input(distinct(&mut rng, &[2, 3, 7, 6], 0.05))];
    check("maxpool k3 s2", &args, |g, v| {
        g.max_pool2d(v[0], 3, 2).unwrap()
    });
}

#[test]
fn max_pool2d_gradient_goes_to_the_first_maximum_of_a_tie() {
    // PyTorch's CPU kernel: the first maximum in row-major order takes the gradient
    let x = Tensor::new(&[1, 1, 2, 2], vec![1.0, 3.0, 3.0, 3.0]).unwrap();
    let mut g = Graph::new(0);
    let xv = g.input(&x, true).unwrap();
    let y = g.max_pool2d(xv, 2, 2).unwrap();
    assert_eq!(g.value(y), [3.0]);
    g.backward_from(y, &[2.5]).unwrap();
    assert_eq!(g.grad(xv).unwrap(), [0.0, 2.5, 0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// batch_norm_relu_pool (BatchNorm2d -> ReLU -> MaxPool2d(2, 2) as one op)

fn bn_relu_pool_case(name: &str, shape: &[usize], running: bool, seed: u64) {
    let mut rng = Rng::seed(seed);
    let c = shape[1];
    let args = [
        // distinct values: no perturbation changes a window's maximum
        input(distinct(&mut rng, shape, 0.05)),
        param(uniform(&mut rng, &[c], 0.5, 1.5)),
        param(uniform(&mut rng, &[c], -0.5, 0.5)),
    ];
    let mean: Vec<f32> = (0..c).map(|_| rng.uniform(-0.5, 0.5)).collect();
    let var: Vec<f32> = (0..c).map(|_| rng.uniform(0.5, 2.0)).collect();
    check(name, &args, |g, v| {
        let stats = if running {
            BnStats::Running {
                mean: &mean,
                var: &var,
                eps: 1e-5,
            }
        } else {
            BnStats::Batch { eps: 1e-5 }
        };
        g.batch_norm_relu_pool(v[0], Some(v[1]), Some(v[2]), stats)
            .unwrap()
    });
}

#[test]
fn batch_norm_relu_pool_batch_stats_with_a_leftover_row_and_column() {
    // (seed 60 puts one BatchNorm output within a step of the ReLU kink, for the separate ops too)
    bn_relu_pool_case("bn-relu-pool batch", &[3, 2, 5, 7], false, 62);
}

#[test]
fn batch_norm_relu_pool_running_stats() {
    bn_relu_pool_case("bn-relu-pool running", &[2, 3, 4, 6], true, 61);
}

#[test]
fn conv_bn_relu_pool_block() {
    // conv (2 -> 3 channels, 3x3, padding 1) then the fused tail, batch statistics. No conv
    // bias: before batch statistics its gradient is exactly zero (tests/fused.rs checks it).
    let mut rng = Rng::seed(63);
    let args = [
        input(uniform(&mut rng, &[2, 2, 4, 6], -1.0, 1.0)),
        param(uniform(&mut rng, &[3, 2, 3, 3], -0.5, 0.5)),
        param(uniform(&mut rng, &[3], 0.5, 1.5)),
        param(uniform(&mut rng, &[3], -0.5, 0.5)),
    ];
    check("conv-bn-relu-pool", &args, |g, v| {
        let conv = bnlab::ConvArgs {
            w: v[1],
            b: None,
            stride: 1,
            pad: 1,
        };
        g.conv_bn_relu_pool(
            v[0],
            conv,
            Some(v[2]),
            Some(v[3]),
            BnStats::Batch { eps: 1e-5 },
        )
        .unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// reshape, flatten, add, mul

#[test]
fn reshape_between_ops() {
    // x -> mul(x, x) -> reshape (2, 12) -> linear: the gradient flows through the view
    let mut rng = Rng::seed(60);
    let args = [
        input(uniform(&mut rng, &[2, 3, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[5, 12], -1.0, 1.0)),
    ];
    check("reshape", &args, |g, v| {
        let sq = g.mul(v[0], v[0]).unwrap();
        let r = g.reshape(sq, &[2, 12]).unwrap();
        g.linear(r, v[1], None).unwrap()
    });
}

#[test]
fn reshape_as_the_output() {
    let mut rng = Rng::seed(61);
    let args = [
        input(uniform(&mut rng, &[2, 6], -1.0, 1.0)),
        input(uniform(&mut rng, &[2, 6], -1.0, 1.0)),
    ];
    check("mul -> reshape", &args, |g, v| {
        let m = g.mul(v[0], v[1]).unwrap();
        g.reshape(m, &[3, 4]).unwrap()
    });
}

#[test]
fn flatten_conv_output_into_linear() {
    let mut rng = Rng::seed(62);
    let args = [
        input(uniform(&mut rng, &[2, 2, 4, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[3, 2, 3, 3], -0.5, 0.5)),
        param(uniform(&mut rng, &[4, 12], -0.5, 0.5)),
    ];
    check("conv -> flatten -> linear", &args, |g, v| {
        let c = g.conv2d(v[0], v[1], None, 1, 0).unwrap();
        let f = g.flatten(c).unwrap();
        assert_eq!(g.shape(f), [2, 12]);
        g.linear(f, v[2], None).unwrap()
    });
}

#[test]
fn add() {
    let mut rng = Rng::seed(70);
    let args = [
        input(uniform(&mut rng, &[3, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[3, 4], -1.0, 1.0)),
    ];
    check("add", &args, |g, v| g.add(v[0], v[1]).unwrap());
}

#[test]
fn add_of_a_value_to_itself() {
    let mut rng = Rng::seed(71);
    check(
        "add(a, a) input",
        &[input(uniform(&mut rng, &[5], -1.0, 1.0))],
        |g, v| g.add(v[0], v[0]).unwrap(),
    );
    check(
        "add(a, a) param",
        &[param(uniform(&mut rng, &[5], -1.0, 1.0))],
        |g, v| g.add(v[0], v[0]).unwrap(),
    );
}

#[test]
fn mul() {
    let mut rng = Rng::seed(72);
    let args = [
        input(uniform(&mut rng, &[3, 4], -1.0, 1.0)),
        param(uniform(&mut rng, &[3, 4], -1.0, 1.0)),
    ];
    check("mul", &args, |g, v| g.mul(v[0], v[1]).unwrap());
}

#[test]
fn mul_of_a_value_by_itself() {
    let mut rng = Rng::seed(73);
    check(
        "mul(a, a) input",
        &[input(uniform(&mut rng, &[6], -1.0, 1.0))],
        |g, v| g.mul(v[0], v[0]).unwrap(),
    );
    check(
        "mul(a, a) param",
        &[param(uniform(&mut rng, &[6], -1.0, 1.0))],
        |g, v| g.mul(v[0], v[0]).unwrap(),
    );
    // an intermediate node squared
    let args = [
        input(uniform(&mut rng, &[2, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[4, 3], -1.0, 1.0)),
    ];
    check("mul(h, h), h = linear", &args, |g, v| {
        let h = g.linear(v[0], v[1], None).unwrap();
        g.mul(h, h).unwrap()
    });
}

#[test]
fn mul_of_a_value_by_a_view_of_itself() {
    // y = x * reshape(x): the two operands are different vars sharing one buffer; dy/dx = 2x
    let mut rng = Rng::seed(74);
    let args = [input(uniform(&mut rng, &[2, 3], -1.0, 1.0))];
    check("mul(x, reshape(x))", &args, |g, v| {
        let r = g.reshape(v[0], &[2, 3]).unwrap();
        g.mul(v[0], r).unwrap()
    });
}

#[test]
fn a_value_with_two_consumers() {
    // y = a * b + a: a's gradient is the sum over both uses
    let mut rng = Rng::seed(75);
    let args = [
        input(uniform(&mut rng, &[4], -1.0, 1.0)),
        param(uniform(&mut rng, &[4], -1.0, 1.0)),
    ];
    check("a * b + a", &args, |g, v| {
        let m = g.mul(v[0], v[1]).unwrap();
        g.add(m, v[0]).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// losses

#[test]
fn cross_entropy() {
    let mut rng = Rng::seed(80);
    let target = [2u32, 0, 4, 4, 1];
    let args = [input(uniform(&mut rng, &[5, 5], -2.0, 2.0))];
    check("cross_entropy", &args, |g, v| {
        g.cross_entropy(v[0], &target).unwrap()
    });
}

#[test]
fn cross_entropy_after_linear() {
    let mut rng = Rng::seed(81);
    let target = [1u32, 0, 2, 1];
    let args = [
        constant(uniform(&mut rng, &[4, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[3, 3], -1.0, 1.0)),
        param(uniform(&mut rng, &[3], -1.0, 1.0)),
    ];
    check("linear -> cross_entropy", &args, |g, v| {
        let z = g.linear(v[0], v[1], Some(v[2])).unwrap();
        g.cross_entropy(z, &target).unwrap()
    });
}

/// mean over rows of logsumexp(z) - z[t], in f64.
fn cross_entropy_f64(z: &[f32], target: &[u32], c: usize) -> f64 {
    let rows = z.chunks(c).zip(target).map(|(r, &t)| {
        let max = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let lse = max + r.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
        lse - r[t as usize] as f64
    });
    rows.sum::<f64>() / target.len() as f64
}

#[test]
fn cross_entropy_gradient_for_large_logits() {
    // softmax is shift invariant: logits around 1e4 (where exp overflows f32) still give a
    // finite loss and the gradient (softmax - onehot) / N of the same logits, computed in f64
    let mut rng = Rng::seed(82);
    let (n, c) = (3, 4);
    let target = [3u32, 1, 0];
    let mut z = uniform(&mut rng, &[n, c], -3.0, 3.0);
    z.data.iter_mut().for_each(|v| *v += 1e4);
    let mut g = Graph::new(0);
    let zv = g.input(&z, true).unwrap();
    let loss = g.cross_entropy(zv, &target).unwrap();
    let want = cross_entropy_f64(&z.data, &target, c);
    // loose here: the precision of the loss itself is the next test's subject
    assert_close("cross_entropy loss", g.value(loss), &[want], 1e-3, 0.0);
    g.backward(loss).unwrap();
    let mut expected = Vec::new();
    for (r, &t) in z.data.chunks(c).zip(&target) {
        let max = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum: f64 = r.iter().map(|&v| (v as f64 - max).exp()).sum();
        for (k, &v) in r.iter().enumerate() {
            let p = (v as f64 - max).exp() / sum;
            expected.push((p - if k == t as usize { 1.0 } else { 0.0 }) / n as f64);
        }
    }
    assert_close(
        "cross_entropy grad",
        g.grad(zv).unwrap(),
        &expected,
        1e-6,
        1e-5,
    );
}

#[test]
fn cross_entropy_loss_keeps_full_precision_for_large_logits() {
    // PyTorch computes -log_softmax(z)[t] = log(sum exp(z - max)) - (z[t] - max): every term is
    // small, so the loss is accurate to float32 rounding of the loss (~1e-7 relative) whatever
    // the logits' offset. Forming max + log(sum) first rounds to the ulp of the logits
    // (about 1e-3 at 1e4) and loses that precision.
    let mut rng = Rng::seed(82);
    let (n, c) = (3, 4);
    let target = [3u32, 1, 0];
    let mut z = uniform(&mut rng, &[n, c], -3.0, 3.0);
    z.data.iter_mut().for_each(|v| *v += 1e4);
    let mut g = Graph::new(0);
    let zv = g.input(&z, false).unwrap();
    let loss = g.cross_entropy(zv, &target).unwrap();
    let want = cross_entropy_f64(&z.data, &target, c);
    assert_close(
        "cross_entropy loss at logits ~1e4",
        g.value(loss),
        &[want],
        1e-6,
        1e-6,
    );
}

#[test]
fn bce_with_logits() {
    let mut rng = Rng::seed(83);
    let x = uniform(&mut rng, &[3, 4], -3.0, 3.0);
    let t: Vec<f32> = (0..12)
        .map(|i| {
            if i % 3 == 0 {
                rng.next_f32()
            } else {
                (i % 2) as f32
            }
        })
        .collect();
    check("bce_with_logits", &[input(x)], |g, v| {
        g.bce_with_logits(v[0], &t).unwrap()
    });
}

#[test]
fn bce_with_logits_value_and_gradient_for_large_logits() {
    // loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))), grad = (sigmoid(x) - t) / N: finite at |x| = 100
    let x = Tensor::new(&[4], vec![100.0, -100.0, 0.5, -30.0]).unwrap();
    let t = [0.0f32, 1.0, 0.25, 0.0];
    let mut g = Graph::new(0);
    let xv = g.input(&x, true).unwrap();
    let loss = g.bce_with_logits(xv, &t).unwrap();
    let n = x.numel() as f64;
    let want: f64 = x
        .data
        .iter()
        .zip(&t)
        .map(|(&x, &t)| {
            let (x, t) = (x as f64, t as f64);
            x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
        })
        .sum::<f64>()
        / n;
    assert_close("bce loss", g.value(loss), &[want], 1e-5, 1e-6);
    g.backward(loss).unwrap();
    let expected: Vec<f64> = x
        .data
        .iter()
        .zip(&t)
        .map(|(&x, &t)| (1.0 / (1.0 + (-(x as f64)).exp()) - t as f64) / n)
        .collect();
    assert_close("bce grad", g.grad(xv).unwrap(), &expected, 1e-7, 1e-5);
}

#[test]
fn mse() {
    let mut rng = Rng::seed(84);
    let x = uniform(&mut rng, &[2, 5], -1.0, 1.0);
    let t: Vec<f32> = (0..10).map(|_| rng.uniform(-1.0, 1.0)).collect();
    check("mse", &[input(x)], |g, v| g.mse(v[0], &t).unwrap());
}

#[test]
fn mse_of_a_parameter() {
    let mut rng = Rng::seed(85);
    let p = uniform(&mut rng, &[7], -1.0, 1.0);
    let t: Vec<f32> = (0..7).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grads = check("mse(param)", &[param(p.clone())], |g, v| {
        g.mse(v[0], &t).unwrap()
    });
    assert_eq!(grads[0].len(), 7);
}

// ---------------------------------------------------------------------------------------------
// a small network end to end, and gradient accumulation

#[test]
fn linear_bn_relu_linear_cross_entropy() {
    // the seed model's block structure on a tiny scale; the relu inputs are bn outputs, so the
    // data are drawn from the first seed whose bn outputs all keep clear of relu's kink at 0
    let target = [0u32, 2, 1, 2, 0, 1];
    let draw = |seed: u64| {
        let mut rng = Rng::seed(seed);
        vec![
            constant(uniform(&mut rng, &[6, 4], -1.0, 1.0)),
            param(uniform(&mut rng, &[5, 4], -1.0, 1.0)),
            // a bias feeding batch norm has a gradient of exactly 0: not checkable numerically
            constant(uniform(&mut rng, &[5], -0.5, 0.5)),
            param(uniform(&mut rng, &[5], 0.5, 1.5)),
            param(uniform(&mut rng, &[5], -0.2, 0.2)),
            param(uniform(&mut rng, &[3, 5], -0.5, 0.5)),
            param(uniform(&mut rng, &[3], -0.5, 0.5)),
        ]
    };
    let bn_out = |g: &mut Graph, v: &[Var]| {
        let h = g.linear(v[0], v[1], Some(v[2])).unwrap();
        g.batch_norm(h, Some(v[3]), Some(v[4]), BnStats::Batch { eps: 1e-5 })
            .unwrap()
    };
    let clear_of_kink = |args: &[Arg]| {
        let pre = eval(args, &bn_out);
        pre.g.value(pre.y).iter().all(|v| v.abs() > 0.1)
    };
    let args = (90..190)
        .map(draw)
        .find(|a| clear_of_kink(a))
        .expect("some seed keeps clear of 0");
    check(
        "linear -> bn -> relu -> linear -> cross_entropy",
        &args,
        |g, v| {
            let n = bn_out(g, v);
            let a = g.relu(n).unwrap();
            let z = g.linear(a, v[5], Some(v[6])).unwrap();
            g.cross_entropy(z, &target).unwrap()
        },
    );
    // and that bias's gradient is 0 (up to rounding): batch norm subtracts the batch mean
    let mut args = args;
    args[2].kind = Kind::Param;
    let mut e = eval(&args, &|g: &mut Graph, v: &[Var]| {
        let n = bn_out(g, v);
        let a = g.relu(n).unwrap();
        let z = g.linear(a, v[5], Some(v[6])).unwrap();
        g.cross_entropy(z, &target).unwrap()
    });
    e.g.backward(e.y).unwrap();
    let gb = e.g.params.grad(e.ids[2].unwrap()).unwrap();
    assert!(
        gb.iter().all(|v| v.abs() < 1e-6),
        "bias before batch norm: gradient {gb:?}, expected 0"
    );
}

#[test]
fn two_backward_calls_accumulate_each_loss_once() {
    // PyTorch: loss1.backward(retain_graph=True); loss2.backward() leaves p.grad =
    // dloss1/dp + dloss2/dp. Each backward propagates from its own output only.
    let mut rng = Rng::seed(91);
    let p = uniform(&mut rng, &[4], -1.0, 1.0);
    let t1: Vec<f32> = (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let t2: Vec<f32> = (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let mut g = Graph::new(0);
    let id = g.params.add(p.clone()).unwrap();
    let pv = g.param(id);
    let l1 = g.mse(pv, &t1).unwrap();
    let l2 = g.mse(pv, &t2).unwrap();
    g.backward(l1).unwrap();
    g.backward(l2).unwrap();
    let expected: Vec<f64> = (0..4)
        .map(|i| {
            2.0 * (p.data[i] as f64 - t1[i] as f64) / 4.0
                + 2.0 * (p.data[i] as f64 - t2[i] as f64) / 4.0
        })
        .collect();
    assert_close(
        "p.grad after two backwards",
        g.params.grad(id).unwrap(),
        &expected,
        1e-6,
        1e-5,
    );
}

#[test]
fn gradients_accumulate_across_steps_until_zero_grad() {
    // parameters' gradients accumulate over backward calls on successive graphs (reset),
    // as loss.backward() does, and zero_grad sets them to None
    let mut rng = Rng::seed(92);
    let p = uniform(&mut rng, &[3], -1.0, 1.0);
    let t: Vec<f32> = (0..3).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let mut g = Graph::new(0);
    let id = g.params.add(p.clone()).unwrap();
    for _ in 0..2 {
        g.reset();
        let pv = g.param(id);
        let l = g.mse(pv, &t).unwrap();
        g.backward(l).unwrap();
    }
    let expected: Vec<f64> = (0..3)
        .map(|i| 2.0 * 2.0 * (p.data[i] as f64 - t[i] as f64) / 3.0)
        .collect();
    assert_close(
        "p.grad after two steps",
        g.params.grad(id).unwrap(),
        &expected,
        1e-6,
        1e-5,
    );
    g.params.zero_grad();
    assert!(g.params.grad(id).is_none());
}

// ---------------------------------------------------------------------------------------------
// gradients that meet: the first op to reach a gradient overwrites it, the others add to it

#[test]
fn a_value_read_by_two_linears_gets_both_gradients() {
    // x feeds two Linears and w is read twice: each gradient is the sum of two products
    let mut rng = Rng::seed(90);
    let args = [
        input(uniform(&mut rng, &[3, 5], -1.0, 1.0)),
        input(uniform(&mut rng, &[3, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[4, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[4, 5], -1.0, 1.0)),
    ];
    check("linear read twice", &args, |g, v| {
        let a = g.linear(v[0], v[2], None).unwrap();
        let b = g.linear(v[0], v[3], None).unwrap();
        let c = g.linear(v[1], v[2], None).unwrap();
        let ab = g.add(a, b).unwrap();
        g.add(ab, c).unwrap()
    });
}

#[test]
fn a_value_read_by_two_convolutions_gets_both_gradients() {
    let mut rng = Rng::seed(91);
    let args = [
        input(uniform(&mut rng, &[2, 2, 5, 5], -1.0, 1.0)),
        param(uniform(&mut rng, &[3, 2, 3, 3], -0.5, 0.5)),
        param(uniform(&mut rng, &[3, 2, 3, 3], -0.5, 0.5)),
    ];
    check("conv read twice", &args, |g, v| {
        let a = g.conv2d(v[0], v[1], None, 1, 1).unwrap();
        let b = g.conv2d(v[0], v[2], None, 1, 1).unwrap();
        g.add(a, b).unwrap()
    });
}

#[test]
fn a_value_read_by_relu_and_two_batch_norms_gets_all_three_gradients() {
    // the first backward to reach x's gradient overwrites it, the next ones add to it, in
    // ReLU's and in both BatchNorm backwards (batch statistics and fixed ones)
    let mut rng = Rng::seed(93);
    let args = [
        input(away_from_zero(&mut rng, &[5, 3], 0.1, 1.0)),
        param(uniform(&mut rng, &[3], 0.5, 1.5)),
        param(uniform(&mut rng, &[3], -0.5, 0.5)),
    ];
    let (mean, var) = ([0.1f32, -0.2, 0.3], [0.5f32, 1.5, 0.8]);
    check("relu and batch norms read x", &args, |g, v| {
        let r = g.relu(v[0]).unwrap();
        let stats = BnStats::Batch { eps: 1e-5 };
        let n = g.batch_norm(v[0], Some(v[1]), Some(v[2]), stats).unwrap();
        let fixed = BnStats::Running {
            mean: &mean,
            var: &var,
            eps: 1e-5,
        };
        let m = g.batch_norm(v[0], Some(v[1]), None, fixed).unwrap();
        let rn = g.add(r, n).unwrap();
        g.add(rn, m).unwrap()
    });
}

/// The gradients of a small CNN's input and parameters for input `x`, on graph `g` (reset
/// first, so its buffers hold whatever the last step left there).
fn cnn_grads(g: &mut Graph, params: &[ParamId; 5], x: &Tensor, dy_seed: u64) -> Vec<Vec<f32>> {
    g.reset();
    g.params.zero_grad();
    let xv = g.input(x, true).unwrap();
    let p: Vec<Var> = params.iter().map(|&id| g.param(id)).collect();
    let conv = bnlab::ConvArgs {
        w: p[0],
        b: None,
        stride: 1,
        pad: 1,
    };
    let block = g
        .conv_bn_relu_pool(
            xv,
            conv,
            Some(p[1]),
            Some(p[2]),
            BnStats::Batch { eps: 1e-5 },
        )
        .unwrap();
    let c = g.conv2d(block, p[3], None, 1, 1).unwrap();
    let f = g.flatten(c).unwrap();
    let y = g.linear(f, p[4], None).unwrap();
    let mut rng = Rng::seed(dy_seed);
    let dy: Vec<f32> = (0..g.value(y).len())
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    g.backward_from(y, &dy).unwrap();
    let mut grads = vec![g.grad(xv).unwrap().to_vec()];
    grads.extend(params.iter().map(|&id| g.params.grad(id).unwrap().to_vec()));
    grads
}

#[test]
fn a_reused_graph_gives_a_fresh_graphs_gradients() {
    // gradient buffers kept from the last step are overwritten, not added to: the second
    // step on one graph equals the same step on a new graph, to the bit
    let mut rng = Rng::seed(92);
    let shapes: [&[usize]; 5] = [&[3, 2, 3, 3], &[3], &[3], &[2, 3, 3, 3], &[4, 2 * 3 * 3]];
    let values: Vec<Tensor> = shapes
        .iter()
        .map(|s| uniform(&mut rng, s, -0.5, 0.5))
        .collect();
    let new_graph = || {
        let mut g = Graph::new(GRAPH_SEED);
        let ids = [0, 1, 2, 3, 4].map(|k| g.params.add(values[k].clone()).unwrap());
        (g, ids)
    };
    let steps = [
        uniform(&mut rng, &[2, 2, 6, 6], -1.0, 1.0),
        uniform(&mut rng, &[2, 2, 6, 6], -1.0, 1.0),
    ];
    let (mut reused, ids) = new_graph();
    cnn_grads(&mut reused, &ids, &steps[0], 1);
    let second = cnn_grads(&mut reused, &ids, &steps[1], 2);
    let (mut fresh, fresh_ids) = new_graph();
    let want = cnn_grads(&mut fresh, &fresh_ids, &steps[1], 2);
    for (k, (got, want)) in second.iter().zip(&want).enumerate() {
        assert!(got.iter().any(|&v| v != 0.0), "gradient {k} is all zero");
        assert_eq!(
            got, want,
            "gradient {k} (0: the input, then the parameters)"
        );
    }
}
