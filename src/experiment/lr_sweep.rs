//! `bnlab experiment lr-sweep`: the chapter's model with and without BatchNorm, trained with
//! plain SGD at learning rates from 0.01 to 3, on the same data order. BatchNorm makes the
//! scale of a layer's weights irrelevant to its output, so higher rates do not blow up its
//! activations (Ioffe and Szegedy 2015, section 3.3); without it a high rate diverges.
//! A diverged run is a result: it is recorded as such and the sweep goes on.

use super::design::{from_results, run_design, to_result, without_seed, Design};
use super::models::chapter_preset;
use super::outcome::{Outcome, Table};
use super::seeds::{p_text, results_json, seeds_text, Observations, Verdict};
use super::statistics::Summary;
use super::steps::train_steps;
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::optim::{Sgd, SgdConfig};
use crate::precision::Precision;
use crate::presets::Preset;
use crate::train::{evaluate, Mode};
use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;

/// The sweep's settings.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Options {
    /// The learning rates (default 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 3).
    pub lrs: Vec<f64>,
    /// Passes over the training set per run (default 2).
    pub epochs: usize,
    /// Examples per step (default 64).
    pub batch_size: usize,
    /// Seeds the initial weights (the same for every rate) and the data order (default 0).
    pub seed: u64,
    /// How the matrix products compute (default float32; see [`crate::precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lrs: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0],
            epochs: 2,
            batch_size: 64,
            seed: 0,
            precision: Precision::F32,
        }
    }
}

impl Options {
    /// An error for no rates, a rate that is not positive, or zero epochs or batch size.
    pub fn validate(&self) -> Result<()> {
        if self.lrs.is_empty() {
            return Err(Error::Invalid(
                "--lrs: give at least one learning rate".into(),
            ));
        }
        if let Some(bad) = self.lrs.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
            return Err(Error::Invalid(format!(
                "--lrs: {bad} is not a positive learning rate"
            )));
        }
        if self.epochs == 0 || self.batch_size < 2 {
            return Err(Error::Invalid(
                "--epochs must be at least 1 and the batch at least 2".into(),
            ));
        }
        Ok(())
    }
}

/// One run of the sweep.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Point {
    /// The learning rate.
    pub lr: f64,
    /// Test accuracy at the end (eval mode); of a diverged run, that of its last finite weights
    /// is not kept: NaN is written as null.
    pub test_accuracy: Option<f64>,
    /// Test loss at the end, when finite.
    pub test_loss: Option<f64>,
    /// Whether the loss became NaN or infinite.
    pub diverged: bool,
    /// The step at which it did.
    pub diverged_at_step: Option<usize>,
}

fn run_one(preset: Preset, lr: f64, o: &Options, train: &Dataset, test: &Dataset) -> Result<Point> {
    let (mut g, mut net) = chapter_preset(preset, o.seed, o.precision)?;
    let mut opt = Sgd::new(
        crate::nn::parameters(&net),
        SgdConfig {
            lr,
            ..Default::default()
        },
    )?;
    let steps = o.epochs * (train.len / o.batch_size);
    let ended = train_steps(
        &mut net,
        &mut g,
        &mut opt,
        train,
        o.batch_size,
        steps,
        o.seed,
        0,
        |_, _, _| Ok(()),
    )?;
    let (loss, accuracy) = evaluate(&mut net, &mut g, test, 1000, Mode::Multi)?;
    let diverged_at_step = ended.diverged_at();
    let diverged = diverged_at_step.is_some() || !loss.is_finite();
    Ok(Point {
        lr,
        test_accuracy: (!diverged).then_some(accuracy),
        test_loss: loss.is_finite().then_some(loss),
        diverged,
        diverged_at_step,
    })
}

/// The models swept: (results key, preset, words).
const MODELS: [(&str, Preset, &str); 2] = [
    ("plain", Preset::Plain, "without BatchNorm"),
    ("bn", Preset::Bn, "with BatchNorm"),
];

impl Design for Options {
    fn name(&self) -> &'static str {
        "lr-sweep"
    }

    fn options(&self) -> serde_json::Value {
        without_seed(self)
    }

    fn runs(&self) -> Vec<String> {
        MODELS
            .iter()
            .flat_map(|(k, _, _)| self.lrs.iter().map(move |lr| format!("{k} lr={lr}")))
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
        let (m, l) = (run / self.lrs.len(), run % self.lrs.len());
        to_result(&run_one(MODELS[m].1, self.lrs[l], &o, train, test)?)
    }

    fn outcome(
        &self,
        seeds: &[u64],
        results: &[Vec<serde_json::Value>],
        seconds: f64,
    ) -> Result<Outcome> {
        let n = self.lrs.len();
        // points[s][m][l]: seed s, model m, learning rate l
        let points: Vec<Vec<Vec<Point>>> = from_results::<Point>(results)?
            .into_iter()
            .map(|pts| vec![pts[..n].to_vec(), pts[n..].to_vec()])
            .collect();
        outcome(self, seeds, &points, seconds)
    }
}

/// Run the sweep at `o.seed`, printing how long it took to `log`.
pub fn run(o: &Options, train: &Dataset, test: &Dataset, log: &mut dyn Write) -> Result<Outcome> {
    o.validate()?;
    let out = run_design(o, &[o.seed], train, test, &|_, _| {})?;
    let _ = writeln!(
        log,
        "{} runs of {} epochs in {:.1} s",
        2 * o.lrs.len(),
        o.epochs,
        out.seconds
    );
    Ok(out)
}

fn metric(lr: f64) -> String {
    format!("test_accuracy at lr {lr}")
}

fn fails(p: &Point) -> bool {
    p.diverged || p.test_accuracy.is_some_and(|a| a < 0.5)
}

fn outcome(
    o: &Options,
    seeds: &[u64],
    points: &[Vec<Vec<Point>>],
    seconds: f64,
) -> Result<Outcome> {
    let one = seeds.len() == 1;
    let mut obs = Observations::new(seeds);
    let mut per_seed = vec![];
    for (s, models) in points.iter().enumerate() {
        for ((key, _, _), pts) in MODELS.iter().zip(models) {
            for p in pts {
                obs.record(s, key, &metric(p.lr), p.test_accuracy);
            }
        }
        per_seed.push(
            serde_json::json!({ "plain": { "points": models[0] }, "bn": { "points": models[1] } }),
        );
    }
    let results = results_json(seeds, per_seed, &obs);
    let cell = |m: usize, l: usize| {
        if one {
            let p = &points[0][m][l];
            match (p.diverged, p.test_accuracy) {
                (true, _) => format!(
                    "diverged (step {})",
                    p.diverged_at_step.map_or("end".into(), |s| s.to_string())
                ),
                (false, Some(a)) => format!("{a:.4}"),
                (false, None) => "-".into(),
            }
        } else {
            obs.cell(MODELS[m].0, &metric(o.lrs[l]), 1.0, 4, "diverged")
        }
    };
    let h = if one { "" } else { " (mean ± 95%)" };
    let mut table = Table::new(&[
        "learning rate",
        &format!("test accuracy without BN{h}"),
        &format!("test accuracy with BN{h}"),
    ]);
    for (l, lr) in o.lrs.iter().enumerate() {
        table.row(vec![format!("{lr}"), cell(0, l), cell(1, l)]);
    }
    // the best rate by mean accuracy over the seeds that did not diverge
    let best = |m: usize| {
        o.lrs
            .iter()
            .filter_map(|&lr| obs.summary(MODELS[m].0, &metric(lr)).map(|s| (lr, s)))
            .fold(None, |b: Option<(f64, Summary)>, x| match b {
                Some(b) if b.1.mean >= x.1.mean => Some(b),
                _ => Some(x),
            })
    };
    let best_text = |m: usize| {
        best(m).map_or("no run that did not diverge".into(), |(lr, s)| {
            format!("{} at learning rate {lr}", s.text(1.0, 4))
        })
    };
    // the lowest rate at which some seed fails (diverges or ends below 50% accuracy)
    let first_failure = |m: usize| {
        (0..o.lrs.len()).find_map(|l| {
            let failed = points.iter().filter(|s| fails(&s[m][l])).count();
            (failed > 0).then_some((o.lrs[l], failed))
        })
    };
    let describe = |f: Option<(f64, usize)>| match f {
        None => "at none of the rates tried".to_string(),
        Some((lr, _)) if one => format!("from learning rate {lr}"),
        Some((lr, k)) => format!(
            "from learning rate {lr} (at {k} of {} seeds there)",
            seeds.len()
        ),
    };
    let mut findings = vec![
        format!(
            "Best {}test accuracy: {} without BatchNorm, {} with it.",
            if one { "" } else { "mean " },
            best_text(0),
            best_text(1)
        ),
        format!(
            "Without BatchNorm training fails (diverges, or ends below 50% accuracy) {}; with BatchNorm {}. Ioffe and Szegedy (section 3.3): BatchNorm makes a layer's output independent of the scale of its weights, so higher learning rates do not make it blow up.",
            describe(first_failure(0)),
            describe(first_failure(1))
        ),
    ];
    if !one {
        let (mut better, mut worse, mut same, mut untested) = (vec![], vec![], vec![], vec![]);
        for &lr in &o.lrs {
            let v = obs.verdict("bn", "plain", &metric(lr));
            let text = match v {
                Verdict::Significant(t) | Verdict::NotSignificant(t) => {
                    format!("{lr} ({})", p_text(t.p))
                }
                _ => format!("{lr}"),
            };
            match v {
                Verdict::Significant(t) if t.mean_difference > 0.0 => better.push(text),
                Verdict::Significant(_) => worse.push(text),
                Verdict::NotSignificant(_) => same.push(text),
                _ => untested.push(text),
            }
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        findings.push(format!(
            "Paired by seed (two-sided t-test at 5%), BatchNorm's test accuracy is significantly higher at learning rates {}, significantly lower at {}; the difference is not significant at {}{}.",
            list(&better),
            list(&worse),
            list(&same),
            if untested.is_empty() {
                String::new()
            } else {
                format!(", and cannot be tested (a model diverged at too many seeds) at {}", list(&untested))
            }
        ));
    }
    let series = |m: usize, label: &str, color: usize| Series {
        label: label.into(),
        points: o
            .lrs
            .iter()
            .map(|&lr| {
                (
                    lr,
                    obs.summary(MODELS[m].0, &metric(lr))
                        .map_or(f64::NAN, |s| s.mean),
                )
            })
            .collect(),
        color,
        markers: true,
        ..Default::default()
    };
    // a cross where a model diverged at every seed
    let crosses = (0..2)
        .flat_map(|m| (0..o.lrs.len()).map(move |l| (m, l)))
        .filter(|&(m, l)| points.iter().all(|s| s[m][l].diverged))
        .map(|(m, l)| (o.lrs[l], m))
        .collect();
    let figure = Figure::new(
        vec![Panel {
            title: format!("Test accuracy after {} epochs of plain SGD", o.epochs),
            x_label: "learning rate".into(),
            y_label: "test accuracy (x: diverged)".into(),
            log_x: true,
            y_range: Some((0.0, 1.0)),
            series: vec![series(0, "without BN", 0), series(1, "with BN", 1)],
            crosses,
            legend: Legend::LowerLeft,
            ..Default::default()
        }],
        1,
    );
    Ok(Outcome {
        name: "lr-sweep",
        title: "Learning-rate sweep: BatchNorm allows higher learning rates".into(),
        protocol: vec![format!(
            "The chapter's model (784-256-128-64-10, ReLU) with BatchNorm (Linear → BatchNorm1d → ReLU) and without, PyTorch's initialisation ({}; the same weights at every rate), trained with plain SGD (no momentum) for {} epochs of batches of {} on MNIST, the same data order for every run of a seed, at learning rates {}. Test accuracy in eval mode at the end. A run whose loss becomes NaN or infinite is stopped and recorded as diverged.",
            seeds_text(seeds),
            o.epochs,
            o.batch_size,
            o.lrs.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "),
        )],
        table,
        findings,
        figures: vec![("lr-sweep.png".into(), if one {
            "Final test accuracy against the learning rate (log scale); a cross marks a run that diverged."
        } else {
            "Mean final test accuracy over the seeds that did not diverge, against the learning rate (log scale); a cross marks a rate at which every seed diverged."
        }.into(), figure)],
        models: vec![],
        results,
        seconds,
    })
}
