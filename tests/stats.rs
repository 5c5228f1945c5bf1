//! `--stats`' numbers (project issue 14) against an independent computation from tensors the
//! test hooks itself, on every step of a short `fit`:
//! - percentiles of the chosen unit by sorting and NumPy's interpolation, written out here;
//! - per-unit means and standard deviations by two passes in f64;
//! - the running statistics before each step rebuilt from the hooked inputs with PyTorch's
//!   update rule (running ← 0.9·running + 0.1·batch, unbiased variance), not read from the layer;
//! - the gradient norm from a backward hook of the test's own, the weight norm through the state
//!   dict's names.
//!
//! Also: recording changes nothing (weights bit for bit), rows come on step 1 and every N-th
//! step, and a model without a normalisation layer or a unit it lacks is an error.
//!
//! (Longer than 400 lines on purpose: the independent computation is written out here in full,
//! apart from the library's, which is what makes it an oracle.)

use bnlab::data::Dataset;
use bnlab::graph::Graph;
use bnlab::io::StateTensor;
use bnlab::nn::{register_backward_hook, register_forward_hook, Module, Net};
use bnlab::optim::{Sgd, SgdConfig};
use bnlab::presets::{mlp, Preset};
use bnlab::stats::{StatsOptions, StatsRecorder, StatsRow};
use bnlab::train::{fit_resumable, FitOptions, Observer, RunControl};
use bnlab::Rng;
use std::cell::RefCell;
use std::rc::Rc;

const FEATURES: usize = 12;

fn data(rows: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let x: Vec<f32> = (0..rows * FEATURES)
        .map(|_| rng.uniform(-2.0, 2.0))
        .collect();
    let y: Vec<u8> = (0..rows).map(|i| (i % 4) as u8).collect();
    Dataset::tabular(x, y, FEATURES, 4).unwrap()
}

fn model(preset: Preset) -> (Graph, Net) {
    let mut g = Graph::new(1);
    let net = mlp(
        &mut g.params,
        preset,
        &[FEATURES, 16, 8, 4],
        &mut Rng::seed(2),
    )
    .unwrap();
    (g, net)
}

/// What the test's own hooks saw on one training step of one layer.
#[derive(Default, Clone)]
struct Seen {
    input: Vec<f32>,
    output: Vec<f32>,
    shape: Vec<usize>,
    grad_sq: f64,
}

/// Shares a recorder with the test, and notes the weight norm before every step through the
/// state dict's names.
struct Shared {
    recorder: Rc<RefCell<StatsRecorder>>,
    weight_norms: Rc<RefCell<Vec<f64>>>,
    weight_name: String,
}

impl Observer for Shared {
    fn before_step(
        &mut self,
        g: &mut Graph,
        m: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> bnlab::Result<()> {
        let sd = bnlab::state_dict::state_dict(m, &g.params);
        let Some((_, StateTensor::F32(w))) = sd.iter().find(|(n, _)| *n == self.weight_name) else {
            panic!("no {}", self.weight_name)
        };
        let norm = w
            .data
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        self.weight_norms.borrow_mut().push(norm);
        self.recorder.borrow_mut().before_step(g, m, step, epoch)
    }
    fn after_step(
        &mut self,
        g: &mut Graph,
        m: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> bnlab::Result<()> {
        self.recorder.borrow_mut().after_step(g, m, step, epoch)
    }
}

/// NumPy's default percentile, written out independently of the library.
fn percentile(values: &[f32], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pos = q * (v.len() - 1) as f64;
    let (i, frac) = (pos as usize, pos.fract());
    if i + 1 < v.len() {
        v[i] * (1.0 - frac) + v[i + 1] * frac
    } else {
        v[i]
    }
}

/// Per-feature values of an (N, F) tensor.
fn columns(data: &[f32], f: usize) -> Vec<Vec<f32>> {
    (0..f)
        .map(|u| data.iter().skip(u).step_by(f).copied().collect())
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Two-pass mean and population standard deviation.
fn mean_std(xs: &[f32]) -> (f64, f64) {
    let xs: Vec<f64> = xs.iter().map(|&x| x as f64).collect();
    let m = mean(&xs);
    (
        m,
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt(),
    )
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
        "{what}: {a} against {b}"
    );
}

#[test]
fn recorded_statistics_equal_an_independent_computation_from_hooked_tensors() {
    let (train, val) = (data(96, 3), data(32, 4));
    let (mut g, mut net) = model(Preset::Bn);
    let layer = "b2.1"; // the second BatchNorm1d(8), fed by b2.0 = Linear(16, 8)
    let unit = 5;
    let every = 3;
    let recorder = Rc::new(RefCell::new(
        StatsRecorder::new(
            &net,
            StatsOptions {
                every,
                unit,
                keep_values: false,
            },
        )
        .unwrap(),
    ));
    // the test's own hooks, on every step (training and evaluation alike)
    let seen: Rc<RefCell<Vec<Seen>>> = Rc::default();
    let sink = seen.clone();
    register_forward_hook(&mut g, &net, layer, move |g, x, y| {
        sink.borrow_mut().push(Seen {
            input: g.value(x).to_vec(),
            output: g.value(y).to_vec(),
            shape: g.shape(x).to_vec(),
            grad_sq: f64::NAN,
        });
    })
    .unwrap();
    let sink = seen.clone();
    register_backward_hook(&mut g, &net, layer, move |grad, _| {
        let sq = grad.iter().map(|&d| (d as f64).powi(2)).sum();
        sink.borrow_mut().last_mut().unwrap().grad_sq = sq;
    })
    .unwrap();
    let weight_norms = Rc::new(RefCell::new(vec![]));
    let mut control = RunControl {
        observer: Some(Box::new(Shared {
            recorder: recorder.clone(),
            weight_norms: weight_norms.clone(),
            weight_name: "b2.0.weight".into(),
        })),
        ..Default::default()
    };
    let mut opt = Sgd::new(
        bnlab::nn::parameters(&net),
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        },
    )
    .unwrap();
    let opts = FitOptions {
        epochs: 2,
        batch_size: 16,
        progress: false,
        seed: 7,
        ..Default::default()
    };
    fit_resumable(
        &mut net,
        &mut g,
        &mut opt,
        &train,
        &val,
        &opts,
        &mut std::io::sink(),
        &mut control,
    )
    .unwrap();

    // the training steps are the hooked forwards with a gradient; evaluations have none
    let steps: Vec<Seen> = seen
        .borrow()
        .iter()
        .filter(|s| !s.grad_sq.is_nan())
        .cloned()
        .collect();
    assert_eq!(steps.len(), 2 * 6, "two epochs of 96 / 16 steps");
    let rows: Vec<StatsRow> = recorder
        .borrow()
        .rows()
        .iter()
        .filter(|r| r.layer == layer)
        .cloned()
        .collect();
    let stats_steps: Vec<u64> = rows.iter().map(|r| r.step).collect();
    assert_eq!(stats_steps, [1, 3, 6, 9, 12]);
    assert_eq!(
        recorder.borrow().rows().len(),
        2 * 5,
        "two BatchNorms (12-16-8-4) on five steps"
    );

    let (mut run_mean, mut run_var) = (vec![0.0f64; 8], vec![1.0f64; 8]);
    for (i, s) in steps.iter().enumerate() {
        let step = i as u64 + 1;
        let cols_in = columns(&s.input, 8);
        let n = s.shape[0] as f64;
        let moments: Vec<(f64, f64)> = cols_in.iter().map(|c| mean_std(c)).collect();
        if let Some(r) = rows.iter().find(|r| r.step == step) {
            assert_eq!(r.epoch, if step <= 6 { 1 } else { 2 });
            assert_eq!(r.kind, "BatchNorm1d");
            for (side, data, d) in [
                ("input", &s.input, &r.input),
                ("output", &s.output, &r.output),
            ] {
                let cols = columns(data, 8);
                close(
                    d.p15,
                    percentile(&cols[unit], 0.15),
                    &format!("step {step} {side} p15"),
                );
                close(
                    d.p50,
                    percentile(&cols[unit], 0.50),
                    &format!("step {step} {side} p50"),
                );
                close(
                    d.p85,
                    percentile(&cols[unit], 0.85),
                    &format!("step {step} {side} p85"),
                );
                let ms: Vec<(f64, f64)> = cols.iter().map(|c| mean_std(c)).collect();
                let means: Vec<f64> = ms.iter().map(|m| m.0).collect();
                let stds: Vec<f64> = ms.iter().map(|m| m.1).collect();
                let sd = |xs: &[f64]| {
                    let m = mean(xs);
                    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
                };
                close(
                    d.mean_avg,
                    mean(&means),
                    &format!("step {step} {side} mean_avg"),
                );
                close(
                    d.mean_sd,
                    sd(&means),
                    &format!("step {step} {side} mean_sd"),
                );
                close(
                    d.std_avg,
                    mean(&stds),
                    &format!("step {step} {side} std_avg"),
                );
                close(d.std_sd, sd(&stds), &format!("step {step} {side} std_sd"));
            }
            let gap = mean(
                &moments
                    .iter()
                    .zip(&run_mean)
                    .map(|(m, r)| (m.0 - r).abs())
                    .collect::<Vec<_>>(),
            );
            let ratio = mean(
                &moments
                    .iter()
                    .zip(&run_var)
                    .map(|(m, r)| m.1 * m.1 * n / (n - 1.0) / r)
                    .collect::<Vec<_>>(),
            );
            close(r.mean_gap.unwrap(), gap, &format!("step {step} mean gap"));
            close(
                r.var_ratio.unwrap(),
                ratio,
                &format!("step {step} variance ratio"),
            );
            close(
                r.grad_norm.unwrap(),
                s.grad_sq.sqrt(),
                &format!("step {step} gradient norm"),
            );
            close(
                r.weight_norm_before.unwrap(),
                weight_norms.borrow()[i],
                &format!("step {step} weight norm"),
            );
        }
        // PyTorch's update of the running statistics by this training batch
        for (u, (m, sd)) in moments.iter().enumerate() {
            run_mean[u] = 0.9 * run_mean[u] + 0.1 * m;
            run_var[u] = 0.9 * run_var[u] + 0.1 * sd * sd * n / (n - 1.0);
        }
    }
}

/// The weights after training, as bytes.
fn trained_weights(with_stats: bool) -> Vec<(String, Vec<f32>)> {
    let (train, val) = (data(64, 5), data(16, 6));
    let (mut g, mut net) = model(Preset::BnDropout);
    let mut control = RunControl::default();
    if with_stats {
        let r = StatsRecorder::new(
            &net,
            StatsOptions {
                every: 2,
                unit: 0,
                keep_values: true,
            },
        )
        .unwrap();
        control.observer = Some(Box::new(r));
    }
    let mut opt = Sgd::new(
        bnlab::nn::parameters(&net),
        SgdConfig {
            lr: 0.05,
            ..Default::default()
        },
    )
    .unwrap();
    let opts = FitOptions {
        epochs: 2,
        batch_size: 8,
        progress: false,
        ..Default::default()
    };
    fit_resumable(
        &mut net,
        &mut g,
        &mut opt,
        &train,
        &val,
        &opts,
        &mut std::io::sink(),
        &mut control,
    )
    .unwrap();
    bnlab::state_dict::state_dict(&net, &g.params)
        .into_iter()
        .filter_map(|(n, t)| match t {
            StateTensor::F32(t) => Some((n, t.data)),
            _ => None,
        })
        .collect()
}

#[test]
fn recording_statistics_changes_no_weight() {
    let (plain, watched) = (trained_weights(false), trained_weights(true));
    assert_eq!(plain.len(), watched.len());
    for ((name, a), (_, b)) in plain.iter().zip(&watched) {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{name} differs with --stats");
    }
}

#[test]
fn layer_norm_and_group_norm_are_watched_and_a_plain_model_is_refused() {
    let mut g = Graph::new(0);
    let text = "M(\n  (0): Linear(in_features=12, out_features=8, bias=True)\n  (1): LayerNorm((8,), eps=1e-05, elementwise_affine=True)\n  (2): Linear(in_features=8, out_features=8, bias=True)\n  (3): GroupNorm(2, 8, eps=1e-05, affine=True)\n  (4): Linear(in_features=8, out_features=4, bias=True)\n)\n";
    let file = bnlab::model_file::ModelFile::from_text(text.into(), std::path::Path::new("m.txt"))
        .unwrap();
    let net = file
        .build(&[1, FEATURES], &mut g.params, &mut Rng::seed(0))
        .unwrap();
    let r = StatsRecorder::new(
        &net,
        StatsOptions {
            every: 1,
            unit: 0,
            keep_values: false,
        },
    )
    .unwrap();
    let found: Vec<(&str, &str)> = r
        .layers()
        .iter()
        .map(|l| (l.path.as_str(), l.type_name.as_str()))
        .collect();
    assert_eq!(found, [("1", "LayerNorm"), ("3", "GroupNorm")]);
    assert!(r.layers().iter().all(|l| l.weight_before.is_some()));

    let (_, plain) = model(Preset::Plain);
    let err = StatsRecorder::new(
        &plain,
        StatsOptions {
            every: 1,
            unit: 0,
            keep_values: false,
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("no BatchNorm, LayerNorm or GroupNorm"),
        "{err}"
    );
}

#[test]
fn a_unit_the_layer_lacks_is_an_error_naming_it() {
    let (train, val) = (data(32, 8), data(16, 9));
    let (mut g, mut net) = model(Preset::Bn);
    let r = StatsRecorder::new(
        &net,
        StatsOptions {
            every: 1,
            unit: 10,
            keep_values: false,
        },
    )
    .unwrap();
    let mut control = RunControl {
        observer: Some(Box::new(r)),
        ..Default::default()
    };
    let mut opt = Sgd::new(bnlab::nn::parameters(&net), SgdConfig::default()).unwrap();
    let opts = FitOptions {
        epochs: 1,
        batch_size: 8,
        progress: false,
        ..Default::default()
    };
    let err = fit_resumable(
        &mut net,
        &mut g,
        &mut opt,
        &train,
        &val,
        &opts,
        &mut std::io::sink(),
        &mut control,
    )
    .err()
    .unwrap()
    .to_string();
    // b1.1 has 16 units, b2.1 has 8: the first too small is named
    assert!(
        err.contains("--unit 10") && err.contains("b2.1") && err.contains("8 units"),
        "{err}"
    );
}
