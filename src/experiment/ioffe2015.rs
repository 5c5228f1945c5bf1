//! `bnlab experiment ioffe2015`: Figure 1 of Ioffe and Szegedy (2015), section 4.1.
//!
//! A 784-100-100-100-10 sigmoid network on MNIST, with BatchNorm before every sigmoid and
//! without, weights N(0, 0.01²), biases 0, SGD lr 0.01 with momentum 0.9, batch 60, 50,000
//! steps. Every 1,000 steps, in eval mode over the 10,000 test images: the test accuracy
//! (Figure 1a) and the 15th, 50th and 85th percentiles of the input to sigmoid unit 0 of the last
//! hidden layer (Figures 1b and 1c).

use super::models::{batch_norm, build, gaussian_linears, last_of_type, linear, sequential};
use super::outcome::{Outcome, Table};
use super::parallel::{run_all, Job};
use super::steps::{train_steps, Ended};
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::optim::{Sgd, SgdConfig};
use crate::stats::{eval_input_values, quantile};
use crate::train::Mode;
use crate::{Error, Result, Rng};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// The experiment's settings; the defaults are the paper's.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// Training steps (default 50,000).
    pub steps: usize,
    /// Steps between two evaluations (default 1,000).
    pub every: usize,
    /// Examples per step (default 60).
    pub batch_size: usize,
    /// SGD's learning rate (default 0.01).
    pub lr: f64,
    /// SGD's momentum (default 0.9).
    pub momentum: f64,
    /// The standard deviation of the initial weights (default 0.01).
    pub init_std: f32,
    /// Seeds the initial weights and the order of the examples (default 0).
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            steps: 50_000,
            every: 1_000,
            batch_size: 60,
            lr: 0.01,
            momentum: 0.9,
            init_std: 0.01,
            seed: 0,
        }
    }
}

impl Options {
    /// An error unless there is at least one evaluation.
    pub fn validate(&self) -> Result<()> {
        if self.every == 0 {
            return Err(Error::Invalid("--every must be at least 1".into()));
        }
        if self.steps < self.every {
            return Err(Error::Invalid(format!(
                "--steps {} must be at least one evaluation interval (--every {})",
                self.steps, self.every
            )));
        }
        Ok(())
    }
}

/// One evaluation of a run.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Point {
    /// Training steps done.
    pub step: usize,
    /// Fraction of the test images classified correctly.
    pub test_accuracy: f64,
    /// 15th percentile over the test images of the input to sigmoid unit 0 of the last hidden layer.
    pub p15: f64,
    /// Its median.
    pub p50: f64,
    /// Its 85th percentile.
    pub p85: f64,
}

/// The published reproduction's final test accuracies (without, with BatchNorm).
pub const PUBLISHED: (f64, f64) = (0.9492, 0.9815);

/// The network as PyTorch prints it, with BatchNorm before each sigmoid or without.
pub fn model_text(with_bn: bool) -> String {
    let mut layers = vec![];
    let mut width = 784;
    for _ in 0..3 {
        layers.push(linear(width, 100));
        if with_bn {
            layers.push(batch_norm(100));
        }
        layers.push("Sigmoid()".to_string());
        width = 100;
    }
    layers.push(linear(100, 10));
    sequential(if with_bn { "Ioffe2015BN" } else { "Ioffe2015" }, &layers)
}

/// Train one of the two networks and evaluate it every `every` steps.
fn run_one(
    o: &Options,
    with_bn: bool,
    train: &Dataset,
    test: &Dataset,
) -> Result<(Vec<Point>, Ended)> {
    let (mut g, mut net) = build(&model_text(with_bn), train, o.seed)?;
    gaussian_linears(
        &mut net,
        &mut g,
        o.init_std,
        &mut Rng::seed(o.seed ^ 0x1eaf),
    );
    let sigmoid =
        last_of_type(&net, "Sigmoid").ok_or_else(|| Error::Invalid("no sigmoid".into()))?;
    let mut opt = Sgd::new(
        crate::nn::parameters(&net),
        SgdConfig {
            lr: o.lr,
            momentum: o.momentum,
            ..Default::default()
        },
    )?;
    let mut curve = vec![];
    let ended = train_steps(
        &mut net,
        &mut g,
        &mut opt,
        train,
        o.batch_size,
        o.steps,
        o.seed,
        o.every,
        |step, net, g| {
            let (_, accuracy, mut values) =
                eval_input_values(net, g, test, 1000, Mode::Multi, &sigmoid, 0)?;
            values.sort_unstable_by(f32::total_cmp);
            curve.push(Point {
                step,
                test_accuracy: accuracy,
                p15: quantile(&values, 0.15),
                p50: quantile(&values, 0.50),
                p85: quantile(&values, 0.85),
            });
            Ok(())
        },
    )?;
    Ok((curve, ended))
}

/// Run the experiment, printing progress to `log`.
pub fn run(o: &Options, train: &Dataset, test: &Dataset, log: &mut dyn Write) -> Result<Outcome> {
    o.validate()?;
    let started = Instant::now();
    let keys = [("plain", false), ("bn", true)];
    let jobs: Vec<Job<(Vec<Point>, Ended)>> = keys
        .iter()
        .map(|&(_, with_bn)| Box::new(move || run_one(o, with_bn, train, test)) as Job<_>)
        .collect();
    let mut runs = vec![];
    for ((key, _), ((curve, ended), secs)) in keys.iter().zip(run_all(jobs)?) {
        let last = curve.last().map_or(f64::NAN, |p: &Point| p.test_accuracy);
        let _ = writeln!(
            log,
            "{key}: {} steps in {secs:.1} s, final test accuracy {last:.4}",
            o.steps
        );
        runs.push((*key, curve, ended));
    }
    let seconds = started.elapsed().as_secs_f64();
    let results = serde_json::json!({
        "bn": { "curve": runs[1].1 },
        "plain": { "curve": runs[0].1 },
    });
    let (plain, bn) = (&runs[0].1, &runs[1].1);
    let mut table = Table::new(&[
        "step",
        "accuracy without BN",
        "accuracy with BN",
        "without BN p15 / p50 / p85",
        "with BN p15 / p50 / p85",
    ]);
    let stride = (plain.len() / 10).max(1);
    for (i, (a, b)) in plain.iter().zip(bn).enumerate() {
        if i % stride == stride - 1 || i == 0 || i + 1 == plain.len() {
            table.row(vec![
                a.step.to_string(),
                format!("{:.4}", a.test_accuracy),
                format!("{:.4}", b.test_accuracy),
                format!("{:.3} / {:.3} / {:.3}", a.p15, a.p50, a.p85),
                format!("{:.3} / {:.3} / {:.3}", b.p15, b.p50, b.p85),
            ]);
        }
    }
    let (fa, fb) = (
        plain.last().map_or(f64::NAN, |p| p.test_accuracy),
        bn.last().map_or(f64::NAN, |p| p.test_accuracy),
    );
    // Figures 1b and 1c: how far the distribution of the sigmoid's input wanders
    let wander = |c: &[Point]| {
        let (lo, hi) = c
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.p50), b.max(p.p50))
            });
        let width = c
            .iter()
            .map(|p| p.p85 - p.p15)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), w| {
                (a.min(w), b.max(w))
            });
        (lo, hi, width.0, width.1)
    };
    let (pa, pb) = (wander(plain), wander(bn));
    let findings = vec![
        format!(
            "After {} steps the test accuracy is {:.2}% without BatchNorm and {:.2}% with it; the published reproduction with these settings ended at {:.2}% and {:.2}%.",
            o.steps, fa * 100.0, fb * 100.0, PUBLISHED.0 * 100.0, PUBLISHED.1 * 100.0
        ),
        format!(
            "The median of the sigmoid's input wanders over [{:.2}, {:.2}] during training without BatchNorm, and its 15th–85th percentile band is between {:.2} and {:.2} wide; with BatchNorm the median stays within [{:.2}, {:.2}] and the band between {:.2} and {:.2} wide. As in the paper's Figures 1b and 1c: with BatchNorm the distribution is steadier, which the paper credits for the faster training.",
            pa.0, pa.1, pa.2, pa.3, pb.0, pb.1, pb.2, pb.3
        ),
    ];
    let curve_series = |c: &[Point], pick: fn(&Point) -> f64, label: &str, color: usize| Series {
        label: label.into(),
        points: c.iter().map(|p| (p.step as f64, pick(p))).collect(),
        color,
        ..Default::default()
    };
    let percentiles = |c: &[Point], title: &str| Panel {
        title: title.into(),
        x_label: "step".into(),
        y_label: "input to sigmoid unit 0".into(),
        series: vec![
            curve_series(c, |p| p.p85, "85th percentile", 0),
            curve_series(c, |p| p.p50, "median", 1),
            curve_series(c, |p| p.p15, "15th percentile", 2),
        ],
        legend: Legend::LowerRight,
        ..Default::default()
    };
    let figure = Figure::new(
        vec![
            Panel {
                title: "(a) Test accuracy".into(),
                x_label: "step".into(),
                y_label: "accuracy".into(),
                series: vec![
                    curve_series(plain, |p| p.test_accuracy, "without BN", 0),
                    curve_series(bn, |p| p.test_accuracy, "with BN", 1),
                ],
                legend: Legend::LowerRight,
                ..Default::default()
            },
            percentiles(plain, "(b) Without BatchNorm"),
            percentiles(bn, "(c) With BatchNorm"),
        ],
        3,
    );
    let diverged: Vec<String> = runs
        .iter()
        .filter_map(|(k, _, e)| {
            e.diverged_at()
                .map(|step| format!("{k} diverged at step {step}"))
        })
        .collect();
    let mut protocol = vec![format!(
        "MNIST (60,000 training images, 10,000 test images), a 784-100-100-100-10 network with sigmoid activations, with BatchNorm (Linear → BatchNorm1d → Sigmoid) and without. Weights drawn from N(0, {}²), biases 0; SGD with learning rate {} and momentum {}, batches of {}, {} steps, seed {}. Every {} steps, in eval mode over the test set: the accuracy, and the percentiles of the input to sigmoid unit 0 of the last hidden layer.",
        o.init_std, o.lr, o.momentum, o.batch_size, o.steps, o.seed, o.every
    )];
    protocol.extend(diverged);
    Ok(Outcome {
        name: "ioffe2015",
        title: "Ioffe and Szegedy (2015), Figure 1: MNIST with and without BatchNorm".into(),
        protocol,
        table,
        findings,
        figures: vec![("ioffe2015.png".into(), "(a) test accuracy against training steps; (b, c) the 15th, 50th and 85th percentiles of the input to a sigmoid of the last hidden layer, over the test set, without and with BatchNorm.".into(), figure)],
        models: vec![("without BatchNorm".into(), model_text(false)), ("with BatchNorm".into(), model_text(true))],
        results,
        seconds,
    })
}
