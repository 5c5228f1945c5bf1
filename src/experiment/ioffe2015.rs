//! `bnlab experiment ioffe2015`: Figure 1 of Ioffe and Szegedy (2015), section 4.1.
//!
//! A 784-100-100-100-10 sigmoid network on MNIST, with BatchNorm before every sigmoid and
//! without, weights N(0, 0.01²), biases 0, SGD lr 0.01 with momentum 0.9, batch 60, 50,000
//! steps. Every 1,000 steps, in eval mode over the 10,000 test images: the test accuracy
//! (Figure 1a) and the 15th, 50th and 85th percentiles of the input to sigmoid unit 0 of the last
//! hidden layer (Figures 1b and 1c).

use super::design::{from_results, run_design, to_result, without_seed, Design};
use super::models::{batch_norm, build, gaussian_linears, last_of_type, linear, sequential};
use super::outcome::{Outcome, Table};
use super::seeds::{mean_curve, results_json, seeds_text, Observations};
use super::statistics::Summary;
use super::steps::{train_steps, Ended};
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::optim::{Sgd, SgdConfig};
use crate::precision::Precision;
use crate::stats::{eval_input_values, quantile};
use crate::train::Mode;
use crate::{Error, Result, Rng};
use serde::Serialize;
use std::io::Write;

/// The experiment's settings; the defaults are the paper's.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
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
    /// How the matrix products compute (default float32; see [`crate::precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
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
            precision: Precision::F32,
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
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub test_accuracy: f64,
    /// 15th percentile over the test images of the input to sigmoid unit 0 of the last hidden layer.
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub p15: f64,
    /// Its median.
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub p50: f64,
    /// Its 85th percentile.
    #[serde(deserialize_with = "super::design::nan_if_null")]
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
    let (mut g, mut net) = build(&model_text(with_bn), train, o.seed, o.precision)?;
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

/// One network's run: its curve and how it ended.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
struct Run {
    curve: Vec<Point>,
    ended: Ended,
}

/// The arms: (results key, with BatchNorm).
const ARMS: [(&str, bool); 2] = [("plain", false), ("bn", true)];

impl Options {
    /// Whether these are the settings of the published figures (any seed, any evaluation
    /// interval): only then is the run compared with them.
    pub fn at_published_settings(&self) -> bool {
        let d = Options::default();
        (
            self.steps,
            self.batch_size,
            self.lr,
            self.momentum,
            self.init_std,
        ) == (d.steps, d.batch_size, d.lr, d.momentum, d.init_std)
    }
}

impl Design for Options {
    fn name(&self) -> &'static str {
        "ioffe2015"
    }

    fn options(&self) -> serde_json::Value {
        without_seed(self)
    }

    fn runs(&self) -> Vec<String> {
        ARMS.iter().map(|(k, _)| k.to_string()).collect()
    }

    fn run(
        &self,
        run: usize,
        seed: u64,
        train: &Dataset,
        test: &Dataset,
    ) -> Result<serde_json::Value> {
        let o = Options {
            seed,
            ..self.clone()
        };
        let (curve, ended) = run_one(&o, ARMS[run].1, train, test)?;
        to_result(&Run { curve, ended })
    }

    fn outcome(
        &self,
        seeds: &[u64],
        results: &[Vec<serde_json::Value>],
        seconds: f64,
    ) -> Result<Outcome> {
        let runs: Vec<Vec<Run>> = from_results(results)?;
        outcome(self, seeds, &runs, seconds)
    }
}

/// Run the experiment at `o.seed`, printing how long it took to `log`.
pub fn run(o: &Options, train: &Dataset, test: &Dataset, log: &mut dyn Write) -> Result<Outcome> {
    o.validate()?;
    let out = run_design(o, &[o.seed], train, test, &|_, _| {})?;
    let _ = writeln!(log, "2 runs of {} steps in {:.1} s", o.steps, out.seconds);
    Ok(out)
}

/// How far the distribution of the sigmoid's input wanders (Figures 1b and 1c): the lowest and
/// highest median, and the narrowest and widest 15th–85th percentile band.
fn wander(c: &[Point]) -> (f64, f64, f64, f64) {
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
}

fn outcome(o: &Options, seeds: &[u64], runs: &[Vec<Run>], seconds: f64) -> Result<Outcome> {
    let mut obs = Observations::new(seeds);
    let mut per_seed = vec![];
    for (s, row) in runs.iter().enumerate() {
        for ((key, _), r) in ARMS.iter().zip(row) {
            let finite = |x: f64| x.is_finite().then_some(x);
            let last = r.curve.last();
            obs.record(
                s,
                key,
                "final_test_accuracy",
                last.and_then(|p| finite(p.test_accuracy)),
            );
            let (lo, hi, wmin, wmax) = wander(&r.curve);
            let some = !r.curve.is_empty();
            obs.record(s, key, "median_low", some.then_some(lo));
            obs.record(s, key, "median_high", some.then_some(hi));
            obs.record(
                s,
                key,
                "median_range",
                some.then_some(hi - lo).and_then(finite),
            );
            obs.record(s, key, "band_min", some.then_some(wmin));
            obs.record(s, key, "band_max", some.then_some(wmax));
        }
        per_seed.push(serde_json::json!({
            "bn": { "curve": row[1].curve },
            "plain": { "curve": row[0].curve },
        }));
    }
    let results = results_json(seeds, per_seed, &obs);
    let one = seeds.len() == 1;
    let steps_of = |arm: usize| -> Vec<usize> {
        runs.iter()
            .max_by_key(|row| row[arm].curve.len())
            .map(|row| row[arm].curve.iter().map(|p| p.step).collect())
            .unwrap_or_default()
    };
    // each seed's value at the i-th evaluation (NaN past a diverged run's end)
    let at = |arm: usize, i: usize, pick: fn(&Point) -> f64| -> Vec<f64> {
        runs.iter()
            .map(|row| row[arm].curve.get(i).map_or(f64::NAN, pick))
            .collect()
    };
    let acc_cell = |arm: usize, i: usize| {
        Summary::of(&at(arm, i, |p| p.test_accuracy)).map_or("-".into(), |s| s.text(1.0, 4))
    };
    let mean_of = |v: Vec<f64>| Summary::of(&v).map_or(f64::NAN, |s| s.mean);
    let pct_cell = |arm: usize, i: usize| {
        format!(
            "{:.3} / {:.3} / {:.3}",
            mean_of(at(arm, i, |p| p.p15)),
            mean_of(at(arm, i, |p| p.p50)),
            mean_of(at(arm, i, |p| p.p85))
        )
    };
    let (acc_h, pct_h) = if one {
        ("", "")
    } else {
        (" (mean ± 95%)", " (means)")
    };
    let mut table = Table::new(&[
        "step",
        &format!("accuracy without BN{acc_h}"),
        &format!("accuracy with BN{acc_h}"),
        &format!("without BN p15 / p50 / p85{pct_h}"),
        &format!("with BN p15 / p50 / p85{pct_h}"),
    ]);
    let steps = steps_of(0).len().max(steps_of(1).len());
    let step_names = if steps_of(0).len() >= steps_of(1).len() {
        steps_of(0)
    } else {
        steps_of(1)
    };
    let stride = (steps / 10).max(1);
    for (i, step) in step_names.iter().enumerate() {
        if i % stride == stride - 1 || i == 0 || i + 1 == steps {
            table.row(vec![
                step.to_string(),
                acc_cell(0, i),
                acc_cell(1, i),
                pct_cell(0, i),
                pct_cell(1, i),
            ]);
        }
    }
    let seeds_words = if one {
        String::new()
    } else {
        format!(" (mean ± 95% interval over {} seeds)", seeds.len())
    };
    let mut findings = vec![obs.sentence(
        &format!("Test accuracy after {} steps{seeds_words}", o.steps),
        ("bn", "with BatchNorm"),
        ("plain", "without"),
        "final_test_accuracy",
        100.0,
        2,
        "%",
    )];
    if o.at_published_settings() {
        findings.push(format!(
            "These are the published reproduction's settings; it ended at {:.2}% without BatchNorm and {:.2}% with it.",
            PUBLISHED.0 * 100.0,
            PUBLISHED.1 * 100.0
        ));
    } else {
        findings.push(format!(
            "The published figures ({:.2}% without BatchNorm, {:.2}% with it) are for 50,000 steps of 60 at learning rate 0.01; this run's settings differ, so it is not compared with them.",
            PUBLISHED.0 * 100.0,
            PUBLISHED.1 * 100.0
        ));
    }
    let range = |arm: &str, m: &str| obs.cell(arm, m, 1.0, 2, "no value");
    findings.push(format!(
        "The median of the sigmoid's input moves between {} and {} during training without BatchNorm, and between {} and {} with it (lowest and highest median{}); the 15th–85th percentile band is between {} and {} wide without BatchNorm, between {} and {} with it.",
        range("plain", "median_low"), range("plain", "median_high"),
        range("bn", "median_low"), range("bn", "median_high"),
        if one { "" } else { ", each mean ± 95% over seeds" },
        range("plain", "band_min"), range("plain", "band_max"),
        range("bn", "band_min"), range("bn", "band_max"),
    ));
    let steadier = obs.verdict("bn", "plain", "median_range");
    let ranges = format!(
        "the median's range is {} with BatchNorm against {} without",
        range("bn", "median_range"),
        range("plain", "median_range")
    );
    findings.push(if steadier.a_smaller() {
        format!(
            "The median wanders less with BatchNorm, {} ({ranges}), as in the paper's Figures 1b and 1c, which credit that steadiness for the faster training.",
            steadier.how_sure()
        )
    } else if steadier.a_larger() {
        format!(
            "Unlike the paper's Figures 1b and 1c, the median wanders more with BatchNorm, {} ({ranges}): at {} steps these data do not show BatchNorm steadying the distribution.",
            steadier.how_sure(),
            o.steps
        )
    } else {
        format!(
            "Whether the median wanders less with BatchNorm, as in the paper's Figures 1b and 1c, these seeds do not settle ({ranges}; {}).",
            steadier.how_sure()
        )
    });
    let mean_series = |arm: usize, pick: fn(&Point) -> f64, label: &str, color: usize| {
        let curves: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .map(|row| {
                row[arm]
                    .curve
                    .iter()
                    .map(|p| (p.step as f64, pick(p)))
                    .collect()
            })
            .collect();
        Series {
            label: label.into(),
            points: mean_curve(&curves),
            color,
            ..Default::default()
        }
    };
    let percentiles = |arm: usize, title: &str| Panel {
        title: title.into(),
        x_label: "step".into(),
        y_label: "input to sigmoid unit 0".into(),
        series: vec![
            mean_series(arm, |p| p.p85, "85th percentile", 0),
            mean_series(arm, |p| p.p50, "median", 1),
            mean_series(arm, |p| p.p15, "15th percentile", 2),
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
                    mean_series(0, |p| p.test_accuracy, "without BN", 0),
                    mean_series(1, |p| p.test_accuracy, "with BN", 1),
                ],
                legend: Legend::LowerRight,
                ..Default::default()
            },
            percentiles(0, "(b) Without BatchNorm"),
            percentiles(1, "(c) With BatchNorm"),
        ],
        3,
    );
    let mut diverged = vec![];
    for (seed, row) in seeds.iter().zip(runs) {
        for ((k, _), r) in ARMS.iter().zip(row) {
            if let Some(step) = r.ended.diverged_at() {
                diverged.push(if one {
                    format!("{k} diverged at step {step}")
                } else {
                    format!("{k} diverged at step {step} at seed {seed}")
                });
            }
        }
    }
    let mut protocol = vec![format!(
        "MNIST (60,000 training images, 10,000 test images), a 784-100-100-100-10 network with sigmoid activations, with BatchNorm (Linear → BatchNorm1d → Sigmoid) and without. Weights drawn from N(0, {}²), biases 0; SGD with learning rate {} and momentum {}, batches of {}, {} steps, {}. Every {} steps, in eval mode over the test set: the accuracy, and the percentiles of the input to sigmoid unit 0 of the last hidden layer.",
        o.init_std, o.lr, o.momentum, o.batch_size, o.steps, seeds_text(seeds), o.every
    )];
    protocol.extend(diverged);
    let caption = if one {
        "(a) test accuracy against training steps; (b, c) the 15th, 50th and 85th percentiles of the input to a sigmoid of the last hidden layer, over the test set, without and with BatchNorm."
    } else {
        "(a) test accuracy against training steps; (b, c) the 15th, 50th and 85th percentiles of the input to a sigmoid of the last hidden layer, over the test set, without and with BatchNorm; each line the mean over the seeds."
    };
    Ok(Outcome {
        name: "ioffe2015",
        title: "Ioffe and Szegedy (2015), Figure 1: MNIST with and without BatchNorm".into(),
        protocol,
        table,
        findings,
        figures: vec![("ioffe2015.png".into(), caption.into(), figure)],
        models: vec![
            ("without BatchNorm".into(), model_text(false)),
            ("with BatchNorm".into(), model_text(true)),
        ],
        results,
        seconds,
    })
}
