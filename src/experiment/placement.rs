//! `bnlab experiment placement`: the chapter's question, "Linear → BatchNorm → Activation
//! (→ Dropout)?", answered with curves: BatchNorm before the activation against after it,
//! without BatchNorm, and with Dropout; and the variance shift that Dropout before a BatchNorm
//! causes between train and eval mode (Li et al. 2019), measured through hooks.

use super::design::{from_results, run_design, to_result, without_seed, Design};
use super::models::chapter_preset;
use super::outcome::{Outcome, Table};
use super::seeds::{mean_curve, results_json, seeds_text, Observations};
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::optim::{Adam, AdamConfig};
use crate::precision::Precision;
use crate::presets::Preset;
use crate::stats::{eval_input_moments, norm_layers, running_stats};
use crate::train::{fit, FitOptions, History};
use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;

/// The experiment's settings.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Options {
    /// Epochs per model (default 5).
    pub epochs: usize,
    /// Seeds the initial weights, the data order and dropout (default 0).
    pub seed: u64,
    /// How the matrix products compute (default float32; see [`crate::precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            epochs: 5,
            seed: 0,
            precision: Precision::F32,
        }
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
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub running_over_eval: f64,
    /// Units whose input does not vary over the test set (dead ReLUs), left out of the median.
    pub dead_units: usize,
}

/// One model's result.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
struct Run {
    history: History,
    shifts: Vec<Shift>,
}

fn run_one(preset: Preset, o: &Options, train: &Dataset, test: &Dataset) -> Result<Run> {
    let (mut g, mut net) = chapter_preset(preset, o.seed, o.precision)?;
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

impl Design for Options {
    fn name(&self) -> &'static str {
        "placement"
    }

    fn options(&self) -> serde_json::Value {
        without_seed(self)
    }

    fn runs(&self) -> Vec<String> {
        MODELS.iter().map(|(k, _, _)| k.to_string()).collect()
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
        to_result(&run_one(MODELS[run].1, &o, train, test)?)
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
    let _ = writeln!(
        log,
        "{} models of {} epochs in {:.1} s",
        MODELS.len(),
        o.epochs,
        out.seconds
    );
    Ok(out)
}

/// The mean of a model's variance shifts over its BatchNorms with (or without) Dropout before
/// them; None when it has no such BatchNorm.
fn mean_shift(r: &Run, dropout: bool) -> Option<f64> {
    let v: Vec<f64> = r
        .shifts
        .iter()
        .filter(|s| s.dropout_before == dropout)
        .map(|s| s.running_over_eval)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn outcome(o: &Options, seeds: &[u64], runs: &[Vec<Run>], seconds: f64) -> Result<Outcome> {
    let one = seeds.len() == 1;
    let mut obs = Observations::new(seeds);
    let mut per_seed = vec![];
    for (s, row) in runs.iter().enumerate() {
        let mut results = serde_json::Map::new();
        for ((key, _, what), r) in MODELS.iter().zip(row) {
            let last = r.history.epochs.last();
            let best = r
                .history
                .epochs
                .iter()
                .map(|e| e.val_accuracy)
                .fold(0.0, f64::max);
            obs.record(s, key, "best_val_accuracy", last.map(|_| best));
            obs.record(s, key, "final_val_accuracy", last.map(|e| e.val_accuracy));
            obs.record(s, key, "final_train_loss", last.map(|e| e.train_loss));
            // the shift that matters: behind a Dropout where the model has one, else none
            let dropout = r.shifts.iter().any(|sh| sh.dropout_before);
            obs.record(s, key, "variance_shift", mean_shift(r, dropout));
            for sh in &r.shifts {
                obs.record(
                    s,
                    key,
                    &format!("variance_shift {}", sh.layer),
                    Some(sh.running_over_eval),
                );
            }
            results.insert(
                key.to_string(),
                serde_json::json!({ "layers": what, "epochs": r.history.epochs, "variance_shift": r.shifts }),
            );
        }
        per_seed.push(serde_json::Value::Object(results));
    }
    let results = results_json(seeds, per_seed, &obs);
    let h = if one { "" } else { " (mean ± 95%)" };
    let mut table = Table::new(&[
        "model",
        "layers",
        &format!("best val. accuracy{h}"),
        &format!("final val. accuracy{h}"),
        &format!("train loss{h}"),
    ]);
    for (key, _, what) in MODELS {
        table.row(vec![
            key.to_string(),
            what.to_string(),
            obs.cell(key, "best_val_accuracy", 1.0, 4, "-"),
            obs.cell(key, "final_val_accuracy", 1.0, 4, "-"),
            obs.cell(key, "final_train_loss", 1.0, 5, "-"),
        ]);
    }
    let mut shift_table = vec![];
    for (m, (key, _, _)) in MODELS.iter().enumerate() {
        for (l, sh) in runs[0][m].shifts.iter().enumerate() {
            // dead units at each seed: a count per seed would be noise, their total is not
            let dead: usize = runs.iter().map(|row| row[m].shifts[l].dead_units).sum();
            let dead = match dead {
                0 => String::new(),
                n if one => format!(" ({n} units dead on the test set left out)"),
                n => format!(" ({n} units dead on the test set over all seeds left out)"),
            };
            let behind = if sh.dropout_before {
                " (Dropout before it)"
            } else {
                ""
            };
            shift_table.push(format!(
                "{key} {}: running / eval-mode variance {}{behind}{dead}",
                sh.layer,
                obs.cell(key, &format!("variance_shift {}", sh.layer), 1.0, 3, "-")
            ));
        }
    }
    let val = |key: &str| obs.cell(key, "final_val_accuracy", 1.0, 4, "-");
    let mut findings = vec![format!(
        "Final validation accuracy after {} epochs{}: BatchNorm before ReLU {}, after ReLU {}, no BatchNorm {}, BatchNorm with Dropout {}, Dropout alone {}.",
        o.epochs,
        if one { "" } else { " (mean ± 95% interval over seeds)" },
        val("bn"), val("bn-after-relu"), val("plain"), val("bn-dropout"), val("dropout")
    )];
    for ((a, an), (b, bn)) in [
        (("bn", "before ReLU"), ("bn-after-relu", "after it")),
        (("bn", "with BatchNorm"), ("plain", "without")),
        (
            ("bn-dropout", "BatchNorm with Dropout"),
            ("dropout", "Dropout alone"),
        ),
    ] {
        findings.push(obs.sentence(
            "Final validation accuracy",
            (a, an),
            (b, bn),
            "final_val_accuracy",
            100.0,
            2,
            "%",
        ));
    }
    if obs.summary("bn-dropout", "variance_shift").is_some()
        && obs.summary("bn", "variance_shift").is_some()
    {
        let v = obs.verdict("bn-dropout", "bn", "variance_shift");
        let shift = |k: &str| obs.cell(k, "variance_shift", 1.0, 2, "-");
        findings.push(if v.a_larger() {
            format!(
                "Variance shift (Li et al. 2019): a BatchNorm with Dropout(0.5) before it keeps a running variance {} times the variance its input has in eval mode, where Dropout is off; without Dropout the ratio is {} ({}). Eval mode therefore normalises with the wrong variance, which is why Li et al. put Dropout after the last BatchNorm.",
                shift("bn-dropout"), shift("bn"), v.how_sure()
            )
        } else {
            format!(
                "Variance shift (Li et al. 2019): a BatchNorm with Dropout(0.5) before it keeps a running variance {} times its eval-mode input's, without Dropout {}: unlike Li et al.'s derivation, these data do not show a larger shift behind Dropout ({}).",
                shift("bn-dropout"), shift("bn"), v.how_sure()
            )
        });
    }
    findings.extend(shift_table);
    // the figures: each model's mean over seeds
    let curve = |pick: fn(&crate::train::EpochRecord) -> f64, m: usize| {
        let curves: Vec<Vec<(f64, f64)>> = runs
            .iter()
            .map(|row| {
                row[m]
                    .history
                    .epochs
                    .iter()
                    .map(|e| (e.epoch as f64, pick(e)))
                    .collect()
            })
            .collect();
        Series {
            label: MODELS[m].0.into(),
            points: mean_curve(&curves),
            color: m,
            markers: true,
            ..Default::default()
        }
    };
    let shift_series: Vec<Series> = (0..MODELS.len())
        .filter(|&m| !runs[0][m].shifts.is_empty())
        .map(|m| {
            let curves: Vec<Vec<(f64, f64)>> = runs
                .iter()
                .map(|row| {
                    row[m]
                        .shifts
                        .iter()
                        .enumerate()
                        .map(|(k, s)| ((k + 1) as f64, s.running_over_eval))
                        .collect()
                })
                .collect();
            Series {
                label: MODELS[m].0.to_string(),
                points: mean_curve(&curves),
                color: m,
                markers: true,
                ..Default::default()
            }
        })
        .collect();
    let figure = Figure::new(
        vec![
            Panel {
                title: "Validation accuracy per epoch".into(),
                x_label: "epoch".into(),
                y_label: "accuracy".into(),
                series: (0..MODELS.len())
                    .map(|m| curve(|e| e.val_accuracy, m))
                    .collect(),
                legend: Legend::LowerRight,
                ..Default::default()
            },
            Panel {
                title: "Training loss per epoch (eval mode)".into(),
                x_label: "epoch".into(),
                y_label: "loss".into(),
                log_y: true,
                series: (0..MODELS.len())
                    .map(|m| curve(|e| e.train_loss, m))
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
    Ok(Outcome {
        name: "placement",
        title: "Where BatchNorm goes: before or after the activation, and with Dropout".into(),
        protocol: vec![format!(
            "The chapter's presets (784-256-128-64-10) trained with the course's fit: Adam lr 0.001, batch 256, {} epochs on MNIST, {} (the same seed and data order for every model). After training, each BatchNorm's running variance is set against the variance of its input over the test set in eval mode, read with a forward hook; Li et al. (2019) call their ratio the variance shift.",
            o.epochs, seeds_text(seeds)
        )],
        table,
        findings,
        figures: vec![("placement.png".into(), format!("{}Top: validation accuracy per epoch. Bottom left: training loss (log scale). Bottom right: each BatchNorm's running variance over its eval-mode input variance; only the BatchNorms with Dropout before them are far from 1.", if one { "" } else { "Means over the seeds. " }), figure)],
        models: vec![],
        results,
        seconds,
    })
}
