//! `bnlab experiment placement`: the chapter's question, "Linear → BatchNorm → Activation
//! (→ Dropout)?", answered with curves: BatchNorm before the activation against after it,
//! without BatchNorm, and with Dropout; and the variance shift that Dropout before a BatchNorm
//! causes between train and eval mode (Li et al. 2019), measured through hooks.

use super::models::chapter_preset;
use super::outcome::{Outcome, Table};
use super::parallel::{run_all, Job};
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::optim::{Adam, AdamConfig};
use crate::presets::Preset;
use crate::stats::{eval_input_moments, norm_layers, running_stats};
use crate::train::{fit, FitOptions, History};
use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// The experiment's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// Epochs per model (default 5).
    pub epochs: usize,
    /// Seeds the initial weights, the data order and dropout (default 0).
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { epochs: 5, seed: 0 }
    }
}

impl Options {
    /// An error for zero epochs.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::Invalid("--epochs must be at least 1".into()));
        }
        Ok(())
    }
}

/// The models compared: (results key, preset, what it is).
pub const MODELS: [(&str, Preset, &str); 5] = [
    ("bn", Preset::Bn, "Linear → BatchNorm → ReLU"),
    (
        "bn-after-relu",
        Preset::BnAfterRelu,
        "Linear → ReLU → BatchNorm",
    ),
    ("plain", Preset::Plain, "Linear → ReLU (no BatchNorm)"),
    (
        "bn-dropout",
        Preset::BnDropout,
        "Linear → BatchNorm → ReLU → Dropout(0.5)",
    ),
    (
        "dropout",
        Preset::Dropout,
        "Linear → ReLU → Dropout(0.5) (no BatchNorm)",
    ),
];

/// A BatchNorm's variance shift: its running variance (what training made of its input's
/// variance, with Dropout active) against its input's variance over the test set in eval mode
/// (Dropout off), its median over units.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Shift {
    /// The BatchNorm's path.
    pub layer: String,
    /// Whether a Dropout comes before it in the model.
    pub dropout_before: bool,
    /// Median over units of running_var / eval-mode variance (Li et al.'s shift; 1 is none).
    pub running_over_eval: f64,
    /// Units whose input does not vary over the test set (dead ReLUs), left out of the median.
    pub dead_units: usize,
}

/// One model's result.
#[derive(Clone, Debug, Serialize)]
struct Run {
    history: History,
    shifts: Vec<Shift>,
}

fn run_one(preset: Preset, o: &Options, train: &Dataset, test: &Dataset) -> Result<Run> {
    let (mut g, mut net) = chapter_preset(preset, o.seed)?;
    let mut opt = Adam::new(crate::nn::parameters(&net), AdamConfig::default());
    let opts = FitOptions {
        epochs: o.epochs,
        progress: false,
        seed: o.seed,
        ..Default::default()
    };
    let history = fit(
        &mut net,
        &mut g,
        &mut opt,
        train,
        test,
        &opts,
        &mut std::io::sink(),
    )?;
    let mut shifts = vec![];
    let layers = norm_layers(&net);
    for (i, layer) in layers.iter().enumerate() {
        let (_, eval_var) = eval_input_moments(&mut net, &mut g, test, 1000, &layer.path)?;
        let rv = crate::nn::hooks::find(&net, &layer.path)
            .ok()
            .and_then(running_stats)
            .map(|(_, var)| var)
            .ok_or_else(|| Error::Invalid(format!("{} has no running variance", layer.path)))?;
        // a unit that never fires on the test set (a ReLU before the BatchNorm that died)
        // has no variance to compare: it is counted, and left out of the median
        let live: Vec<(f32, f64)> = rv
            .iter()
            .copied()
            .zip(eval_var.iter().copied())
            .filter(|(_, v)| *v > 1e-10)
            .collect();
        let dead_units = rv.len() - live.len();
        let mut ratios: Vec<f32> = live.iter().map(|(r, v)| (*r as f64 / v) as f32).collect();
        ratios.sort_unstable_by(f32::total_cmp);
        let ratio = if ratios.is_empty() {
            f64::NAN
        } else {
            crate::stats::quantile(&ratios, 0.5)
        };
        // in the presets a Dropout ends every block: every BatchNorm but the first has one before it
        let dropout_before = preset == Preset::BnDropout && i > 0;
        shifts.push(Shift {
            layer: layer.path.clone(),
            dropout_before,
            running_over_eval: ratio,
            dead_units,
        });
    }
    Ok(Run { history, shifts })
}

/// Run the experiment, printing progress to `log`.
pub fn run(o: &Options, train: &Dataset, test: &Dataset, log: &mut dyn Write) -> Result<Outcome> {
    o.validate()?;
    let started = Instant::now();
    let jobs: Vec<Job<Run>> = MODELS
        .iter()
        .map(|&(_, p, _)| Box::new(move || run_one(p, o, train, test)) as Job<Run>)
        .collect();
    let runs: Vec<Run> = run_all(jobs)?.into_iter().map(|(r, _)| r).collect();
    let _ = writeln!(
        log,
        "{} models of {} epochs in {:.1} s",
        runs.len(),
        o.epochs,
        started.elapsed().as_secs_f64()
    );
    let mut table = Table::new(&[
        "model",
        "layers",
        "best val. accuracy",
        "final val. accuracy",
        "train loss",
    ]);
    for ((key, _, what), r) in MODELS.iter().zip(&runs) {
        let last = r.history.epochs.last().expect("at least one epoch");
        let best = r
            .history
            .epochs
            .iter()
            .map(|e| e.val_accuracy)
            .fold(0.0, f64::max);
        table.row(vec![
            key.to_string(),
            what.to_string(),
            format!("{best:.4}"),
            format!("{:.4}", last.val_accuracy),
            format!("{:.5}", last.train_loss),
        ]);
    }
    let mut shift_table = vec![];
    for ((key, _, _), r) in MODELS.iter().zip(&runs) {
        for s in &r.shifts {
            let dead = match s.dead_units {
                0 => String::new(),
                n => format!(" ({n} units dead on the test set left out)"),
            };
            let behind = if s.dropout_before {
                " (Dropout before it)"
            } else {
                ""
            };
            shift_table.push(format!(
                "{key} {}: running / eval-mode variance {:.3}{behind}{dead}",
                s.layer, s.running_over_eval
            ));
        }
    }
    let mean_shift = |key: &str, dropout: bool| {
        let r = &runs[MODELS.iter().position(|m| m.0 == key).expect("a model")];
        let v: Vec<f64> = r
            .shifts
            .iter()
            .filter(|s| s.dropout_before == dropout)
            .map(|s| s.running_over_eval)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let val = |key: &str| {
        runs[MODELS.iter().position(|m| m.0 == key).expect("a model")]
            .history
            .epochs
            .last()
            .map_or(f64::NAN, |e| e.val_accuracy)
    };
    let mut findings = vec![format!(
        "Final validation accuracy after {} epochs: BatchNorm before ReLU {:.4}, after ReLU {:.4}, no BatchNorm {:.4}, BatchNorm with Dropout {:.4}, Dropout alone {:.4}.",
        o.epochs, val("bn"), val("bn-after-relu"), val("plain"), val("bn-dropout"), val("dropout")
    )];
    if let (Some(with), Some(without)) = (mean_shift("bn-dropout", true), mean_shift("bn", false)) {
        findings.push(format!(
            "Variance shift (Li et al. 2019): a BatchNorm with Dropout(0.5) before it keeps a running variance {with:.2} times the variance its input has in eval mode, where Dropout is off; without Dropout the ratio is {without:.2}. Eval mode therefore normalises with the wrong variance, which is why Li et al. put Dropout after the last BatchNorm."
        ));
    }
    findings.extend(shift_table);
    let curve = |pick: fn(&crate::train::EpochRecord) -> f64, i: usize, r: &Run| Series {
        label: MODELS[i].0.into(),
        points: r
            .history
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, pick(e)))
            .collect(),
        color: i,
        markers: true,
        ..Default::default()
    };
    let shift_series: Vec<Series> = MODELS
        .iter()
        .zip(&runs)
        .enumerate()
        .filter(|(_, (_, r))| !r.shifts.is_empty())
        .map(|(i, ((key, _, _), r))| Series {
            label: key.to_string(),
            points: r
                .shifts
                .iter()
                .enumerate()
                .map(|(k, s)| ((k + 1) as f64, s.running_over_eval))
                .collect(),
            color: i,
            markers: true,
            ..Default::default()
        })
        .collect();
    let figure = Figure::new(
        vec![
            Panel {
                title: "Validation accuracy per epoch".into(),
                x_label: "epoch".into(),
                y_label: "accuracy".into(),
                series: runs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| curve(|e| e.val_accuracy, i, r))
                    .collect(),
                legend: Legend::LowerRight,
                ..Default::default()
            },
            Panel {
                title: "Training loss per epoch (eval mode)".into(),
                x_label: "epoch".into(),
                y_label: "loss".into(),
                log_y: true,
                series: runs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| curve(|e| e.train_loss, i, r))
                    .collect(),
                ..Default::default()
            },
            Panel {
                title: "Variance shift: running / eval-mode variance".into(),
                x_label: "BatchNorm layer (1 = first)".into(),
                y_label: "ratio (1: no shift)".into(),
                series: shift_series,
                legend: Legend::UpperLeft,
                ..Default::default()
            },
        ],
        3,
    );
    let mut results = serde_json::Map::new();
    for ((key, _, what), r) in MODELS.iter().zip(&runs) {
        results.insert(
            key.to_string(),
            serde_json::json!({ "layers": what, "epochs": r.history.epochs, "variance_shift": r.shifts }),
        );
    }
    Ok(Outcome {
        name: "placement",
        title: "Where BatchNorm goes: before or after the activation, and with Dropout".into(),
        protocol: vec![format!(
            "The chapter's presets (784-256-128-64-10) trained with the course's fit: Adam lr 0.001, batch 256, {} epochs on MNIST, the same seed ({}) and data order for every model. After training, each BatchNorm's running variance is set against the variance of its input over the test set in eval mode, read with a forward hook; Li et al. (2019) call their ratio the variance shift.",
            o.epochs, o.seed
        )],
        table,
        findings,
        figures: vec![("placement.png".into(), "Left: validation accuracy per epoch. Middle: training loss (log scale). Right: each BatchNorm's running variance over its eval-mode input variance; only the BatchNorms with Dropout before them are far from 1.".into(), figure)],
        models: vec![],
        results: serde_json::Value::Object(results),
        seconds: started.elapsed().as_secs_f64(),
    })
}
