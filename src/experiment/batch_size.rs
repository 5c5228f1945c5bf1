//! `bnlab experiment batch-size`: BatchNorm against GroupNorm, LayerNorm and no normalisation
//! at batches of 2 to 256 on the same budget of examples: the Group Norm paper's Figure 1 (Wu
//! and He 2018) at MNIST scale, and BatchNorm's gap between train mode (each batch normalised
//! by its own statistics) and eval mode (by the running ones) at small batches.

use super::design::{from_results, run_design, to_result, without_seed, Design};
use super::models::{batch_norm, build, linear, sequential};
use super::outcome::{Outcome, Table};
use super::seeds::{results_json, seeds_text, Observations};
use super::steps::train_steps;
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::graph::Graph;
use crate::nn::{set_training, Net};
use crate::optim::{Sgd, SgdConfig};
use crate::precision::Precision;
use crate::train::{evaluate, run_batch, Mode, StepBuffers};
use crate::{state_dict, Error, Result};
use serde::Serialize;
use std::io::Write;

/// The experiment's settings.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Options {
    /// Batch sizes (default 2, 4, ..., 256).
    pub batch_sizes: Vec<usize>,
    /// Training examples seen by every run, whatever its batch size (default 60,000: one pass).
    pub examples: usize,
    /// SGD's learning rate at batch 256; a batch of B uses base_lr · B / 256 (the linear
    /// scaling rule, as Wu and He use it). Default 0.1.
    pub base_lr: f64,
    /// SGD's momentum (default 0.9).
    pub momentum: f64,
    /// Seeds the initial weights and the data order (default 0).
    pub seed: u64,
    /// How the matrix products compute (default float32; see [`crate::precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_sizes: vec![2, 4, 8, 16, 32, 64, 128, 256],
            examples: 60_000,
            base_lr: 0.1,
            momentum: 0.9,
            seed: 0,
            precision: Precision::F32,
        }
    }
}

impl Options {
    /// An error for no batch sizes, one below 2, or fewer examples than a batch.
    pub fn validate(&self) -> Result<()> {
        if self.batch_sizes.is_empty() {
            return Err(Error::Invalid("--batch-sizes: give at least one".into()));
        }
        if let Some(b) = self.batch_sizes.iter().find(|&&b| b < 2) {
            return Err(Error::Invalid(format!(
                "--batch-sizes: {b} is too small (BatchNorm in training mode needs 2 examples)"
            )));
        }
        let largest = self.batch_sizes.iter().max().copied().unwrap_or(0);
        if self.examples < largest {
            return Err(Error::Invalid(format!(
                "--examples {} is less than one batch of {largest}",
                self.examples
            )));
        }
        Ok(())
    }

    /// The learning rate of batch size `b`.
    pub fn lr(&self, b: usize) -> f64 {
        self.base_lr * b as f64 / 256.0
    }
}

/// The normalisations compared, with their results' keys.
pub const NORMS: [(&str, &str); 4] = [
    ("bn", "BatchNorm"),
    ("gn", "GroupNorm (8 groups)"),
    ("ln", "LayerNorm"),
    ("none", "no normalisation"),
];

/// The chapter's 784-256-128-64-10 ReLU MLP with `norm` after each hidden Linear.
pub fn model_text(norm: &str) -> String {
    let mut layers = vec![];
    let mut width = 784;
    for c in [256, 128, 64] {
        layers.push(linear(width, c));
        match norm {
            "bn" => layers.push(batch_norm(c)),
            // 8 groups, not the paper's 32: a group of the 64-wide layer would hold 2 values, whose
            // normalised pair is only ±1 (32 groups left bnlab and PyTorch alike at 90% error)
            "gn" => layers.push(format!("GroupNorm(8, {c}, eps=1e-05, affine=True)")),
            "ln" => layers.push(format!(
                "LayerNorm(({c},), eps=1e-05, elementwise_affine=True)"
            )),
            _ => {}
        }
        layers.push("ReLU()".into());
        width = c;
    }
    layers.push(linear(64, 10));
    sequential("Net", &layers)
}

/// One run.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Point {
    /// Examples per step.
    pub batch_size: usize,
    /// Its learning rate.
    pub lr: f64,
    /// Test accuracy in eval mode (running statistics for BatchNorm); null if it diverged.
    pub test_accuracy: Option<f64>,
    /// BatchNorm only: test accuracy in train mode, the test set in batches of `batch_size`
    /// each normalised by its own statistics.
    pub train_mode_accuracy: Option<f64>,
    /// Whether the loss became NaN or infinite.
    pub diverged: bool,
}

/// Accuracy on `test` in train mode, in batches of `b` in order (a last batch of one example
/// is left out: it has no batch variance); the running statistics are put back afterwards.
fn train_mode_accuracy(net: &mut Net, g: &mut Graph, test: &Dataset, b: usize) -> Result<f64> {
    let saved: std::collections::BTreeMap<_, _> =
        state_dict::state_dict(net, &g.params).into_iter().collect();
    set_training(net, true);
    g.set_grad_enabled(false);
    let order: Vec<u32> = (0..test.len as u32).collect();
    let mut bufs = StepBuffers::default();
    let (mut correct, mut seen) = (0, 0);
    for chunk in order.chunks(b).filter(|c| c.len() > 1) {
        correct += run_batch(net, g, test, chunk, Mode::Multi, &mut bufs)?.1;
        seen += chunk.len();
    }
    g.set_grad_enabled(true);
    state_dict::load_state_dict(net, &mut g.params, &saved, "")?;
    Ok(correct as f64 / seen.max(1) as f64)
}

fn run_one(norm: &str, b: usize, o: &Options, train: &Dataset, test: &Dataset) -> Result<Point> {
    let (mut g, mut net) = build(&model_text(norm), train, o.seed, o.precision)?;
    let lr = o.lr(b);
    let mut opt = Sgd::new(
        crate::nn::parameters(&net),
        SgdConfig {
            lr,
            momentum: o.momentum,
            ..Default::default()
        },
    )?;
    let ended = train_steps(
        &mut net,
        &mut g,
        &mut opt,
        train,
        b,
        o.examples / b,
        o.seed,
        0,
        |_, _, _| Ok(()),
    )?;
    let (loss, accuracy) = evaluate(&mut net, &mut g, test, 1000, Mode::Multi)?;
    let diverged = ended.diverged_at().is_some() || !loss.is_finite();
    let train_mode = if norm == "bn" && !diverged {
        Some(train_mode_accuracy(&mut net, &mut g, test, b)?)
    } else {
        None
    };
    Ok(Point {
        batch_size: b,
        lr,
        test_accuracy: (!diverged).then_some(accuracy),
        train_mode_accuracy: train_mode,
        diverged,
    })
}

impl Design for Options {
    fn name(&self) -> &'static str {
        "batch-size"
    }

    fn options(&self) -> serde_json::Value {
        without_seed(self)
    }

    /// The smallest batches take longest: they start first, so that the threads end together.
    fn runs(&self) -> Vec<String> {
        self.batch_sizes
            .iter()
            .flat_map(|b| NORMS.iter().map(move |(k, _)| format!("{k} batch={b}")))
            .collect()
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
        let (b, norm) = (
            self.batch_sizes[run / NORMS.len()],
            NORMS[run % NORMS.len()].0,
        );
        to_result(&run_one(norm, b, &o, train, test)?)
    }

    fn outcome(
        &self,
        seeds: &[u64],
        results: &[Vec<serde_json::Value>],
        seconds: f64,
    ) -> Result<Outcome> {
        // per_seed[s][k][i]: seed s, normalisation k at the i-th batch size
        let per_seed: Vec<Vec<Vec<Point>>> = from_results::<Point>(results)?
            .into_iter()
            .map(|all| {
                (0..NORMS.len())
                    .map(|k| all.iter().skip(k).step_by(NORMS.len()).copied().collect())
                    .collect()
            })
            .collect();
        outcome(self, seeds, &per_seed, seconds)
    }
}

/// Run the experiment at `o.seed`, printing how long it took to `log`.
pub fn run(o: &Options, train: &Dataset, test: &Dataset, log: &mut dyn Write) -> Result<Outcome> {
    o.validate()?;
    let out = run_design(o, &[o.seed], train, test, &|_, _| {})?;
    let _ = writeln!(
        log,
        "{} runs in {:.1} s",
        NORMS.len() * o.batch_sizes.len(),
        out.seconds
    );
    Ok(out)
}

fn error_metric(b: usize) -> String {
    format!("test_error at batch {b}")
}

/// BatchNorm's error in train mode is recorded as an arm of its own, so that it pairs with
/// BatchNorm's eval-mode error seed by seed.
const BN_TRAIN_MODE: &str = "bn-train-mode";

fn outcome(
    o: &Options,
    seeds: &[u64],
    per_seed: &[Vec<Vec<Point>>],
    seconds: f64,
) -> Result<Outcome> {
    let one = seeds.len() == 1;
    let mut obs = Observations::new(seeds);
    let mut jsons = vec![];
    for (s, per_norm) in per_seed.iter().enumerate() {
        for ((key, _), pts) in NORMS.iter().zip(per_norm) {
            for p in pts {
                obs.record(
                    s,
                    key,
                    &error_metric(p.batch_size),
                    p.test_accuracy.map(|a| 1.0 - a),
                );
                if *key == "bn" {
                    obs.record(
                        s,
                        BN_TRAIN_MODE,
                        &error_metric(p.batch_size),
                        p.train_mode_accuracy.map(|a| 1.0 - a),
                    );
                }
            }
        }
        let mut results = serde_json::Map::new();
        for ((key, _), pts) in NORMS.iter().zip(per_norm) {
            results.insert(key.to_string(), serde_json::json!({ "points": pts }));
        }
        jsons.push(serde_json::Value::Object(results));
    }
    let results = results_json(seeds, jsons, &obs);
    let h = if one { "" } else { " (mean ± 95%)" };
    let mut table = Table::new(&[
        "batch",
        "lr",
        &format!("BN error %{h}"),
        &format!("GN error %{h}"),
        &format!("LN error %{h}"),
        &format!("none error %{h}"),
        &format!("BN train-mode error %{h}"),
    ]);
    for &b in &o.batch_sizes {
        let mut row = vec![b.to_string(), format!("{}", o.lr(b))];
        for (key, _) in NORMS {
            row.push(obs.cell(key, &error_metric(b), 100.0, 2, "diverged"));
        }
        row.push(obs.cell(BN_TRAIN_MODE, &error_metric(b), 100.0, 2, "-"));
        table.row(row);
    }
    let (small, large) = (o.batch_sizes[0], o.batch_sizes[o.batch_sizes.len() - 1]);
    let at = |key: &str, b: usize| {
        let c = obs.cell(key, &error_metric(b), 100.0, 2, "diverged");
        if c == "diverged" {
            c
        } else {
            format!("{c}%")
        }
    };
    let mut findings = vec![format!(
        "Test error from batch {large} to batch {small}{}: BatchNorm {} → {}, GroupNorm {} → {}, LayerNorm {} → {}, none {} → {}. Wu and He (2018, Figure 1, ImageNet): BatchNorm's error rises from 23.6% at 32 images per GPU to 34.7% at 2, GroupNorm stays near 24.1%.",
        if one { "" } else { " (mean ± 95% interval over seeds)" },
        at("bn", large), at("bn", small), at("gn", large), at("gn", small),
        at("ln", large), at("ln", small), at("none", large), at("none", small)
    )];
    for b in if small == large {
        vec![small]
    } else {
        vec![small, large]
    } {
        findings.push(obs.sentence(
            &format!("Test error at batch {b}"),
            ("bn", "BatchNorm"),
            ("gn", "GroupNorm"),
            &error_metric(b),
            100.0,
            2,
            "%",
        ));
    }
    findings.push(obs.sentence(
        &format!("BatchNorm at batch {small}, test error with the running statistics (eval mode) against each test batch's own (train mode)"),
        ("bn", "eval mode"),
        (BN_TRAIN_MODE, "train mode"),
        &error_metric(small),
        100.0,
        2,
        "%",
    ));
    // the figure: the mean over seeds of each normalisation's error (percent)
    let mean_error = |key: &str, b: usize| {
        obs.summary(key, &error_metric(b))
            .map_or(f64::NAN, |s| 100.0 * s.mean)
    };
    let series = |key: &str, label: &str, color: usize, dashed: bool| Series {
        label: label.into(),
        points: o
            .batch_sizes
            .iter()
            .map(|&b| (b as f64, mean_error(key, b)))
            .collect(),
        color,
        dashed,
        markers: true,
    };
    // a cross where a normalisation diverged at every seed
    let crosses = NORMS
        .iter()
        .enumerate()
        .flat_map(|(c, _)| {
            o.batch_sizes
                .iter()
                .enumerate()
                .map(move |(i, &b)| (c, i, b))
        })
        .filter(|&(c, i, _)| per_seed.iter().all(|pn| pn[c][i].diverged))
        .map(|(c, _, b)| (b as f64, c))
        .collect();
    let figure = Figure::new(
        vec![
            Panel {
                title: "Test error against batch size (same examples seen)".into(),
                x_label: "examples per batch".into(),
                y_label: "test error (%)".into(),
                log_x: true,
                log_x_base: 2.0,
                series: NORMS
                    .iter()
                    .enumerate()
                    .map(|(c, (key, name))| series(key, name, c, false))
                    .collect(),
                crosses,
                legend: Legend::UpperRight,
                ..Default::default()
            },
            Panel {
                title: "BatchNorm: running against batch statistics".into(),
                x_label: "examples per batch".into(),
                y_label: "test error (%)".into(),
                log_x: true,
                log_x_base: 2.0,
                series: vec![
                    series("bn", "eval mode (running statistics)", 0, false),
                    series(BN_TRAIN_MODE, "train mode (batch statistics)", 0, true),
                ],
                legend: Legend::UpperRight,
                ..Default::default()
            },
        ],
        2,
    );
    Ok(Outcome {
        name: "batch-size",
        title: "Batch size: BatchNorm against GroupNorm, LayerNorm and no normalisation".into(),
        protocol: vec![format!(
            "The chapter's MLP (784-256-128-64-10, ReLU) with BatchNorm1d, GroupNorm (8 groups: with the paper's 32, a group of the 64-wide layer holds two values and training fails, at 90% error in PyTorch as here), LayerNorm or nothing after each hidden Linear, PyTorch's initialisation ({}). Each run sees {} training examples of MNIST (so a batch of B takes {} / B steps), with SGD, momentum {}, and the linear scaling rule for the learning rate: {} · B / 256. Test error in eval mode at the end; for BatchNorm also in train mode, the test set in batches of B normalised by their own statistics (the running statistics restored afterwards). Batch sizes {}.",
            seeds_text(seeds), o.examples, o.examples, o.momentum, o.base_lr,
            o.batch_sizes.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
        )],
        table,
        findings,
        figures: vec![("batch-size.png".into(), format!("{}Left: test error against batch size for each normalisation (a cross: diverged{}). Right: BatchNorm's test error with the running statistics (eval mode) and with each test batch's own (train mode).", if one { "" } else { "Means over the seeds. " }, if one { "" } else { " at every seed" }), figure)],
        models: NORMS.iter().map(|(k, name)| (name.to_string(), model_text(k))).collect(),
        results,
        seconds,
    })
}
