//! `bnlab experiment lr-sweep`: the chapter's model with and without BatchNorm, trained with
//! plain SGD at learning rates from 0.01 to 3, on the same data order. BatchNorm makes the
//! scale of a layer's weights irrelevant to its output, so higher rates do not blow up its
//! activations (Ioffe and Szegedy 2015, section 3.3); without it a high rate diverges.
//! A diverged run is a result: it is recorded as such and the sweep goes on.

use super::models::chapter_preset;
use super::outcome::{Outcome, Table};
use super::parallel::{run_all, Job};
use super::steps::train_steps;
use crate::data::Dataset;
use crate::figure::{Figure, Legend, Panel, Series};
use crate::optim::{Sgd, SgdConfig};
use crate::presets::Preset;
use crate::train::{evaluate, Mode};
use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// The sweep's settings.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// The learning rates (default 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 3).
    pub lrs: Vec<f64>,
    /// Passes over the training set per run (default 2).
    pub epochs: usize,
    /// Examples per step (default 64).
    pub batch_size: usize,
    /// Seeds the initial weights (the same for every rate) and the data order (default 0).
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lrs: vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0],
            epochs: 2,
            batch_size: 64,
            seed: 0,
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
    let (mut g, mut net) = chapter_preset(preset, o.seed)?;
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

/// Run the sweep, printing progress to `log`.
pub fn run(o: &Options, train: &Dataset, test: &Dataset, log: &mut dyn Write) -> Result<Outcome> {
    o.validate()?;
    let started = Instant::now();
    let models = [("plain", Preset::Plain), ("bn", Preset::Bn)];
    let mut jobs: Vec<Job<Point>> = vec![];
    for &(_, preset) in &models {
        for &lr in &o.lrs {
            jobs.push(Box::new(move || run_one(preset, lr, o, train, test)));
        }
    }
    let all = run_all(jobs)?;
    let (plain, bn): (Vec<Point>, Vec<Point>) = {
        let pts: Vec<Point> = all.iter().map(|(p, _)| *p).collect();
        let (a, b) = pts.split_at(o.lrs.len());
        (a.to_vec(), b.to_vec())
    };
    let _ = writeln!(
        log,
        "{} runs of {} epochs in {:.1} s",
        all.len(),
        o.epochs,
        started.elapsed().as_secs_f64()
    );
    let cell = |p: &Point| match (p.diverged, p.test_accuracy) {
        (true, _) => format!(
            "diverged (step {})",
            p.diverged_at_step.map_or("end".into(), |s| s.to_string())
        ),
        (false, Some(a)) => format!("{a:.4}"),
        (false, None) => "-".into(),
    };
    let mut table = Table::new(&[
        "learning rate",
        "test accuracy without BN",
        "test accuracy with BN",
    ]);
    for (a, b) in plain.iter().zip(&bn) {
        table.row(vec![format!("{}", a.lr), cell(a), cell(b)]);
    }
    let best = |pts: &[Point]| {
        pts.iter()
            .filter_map(|p| p.test_accuracy.map(|a| (p.lr, a)))
            .fold(
                (f64::NAN, f64::NEG_INFINITY),
                |b, x| if x.1 > b.1 { x } else { b },
            )
    };
    let first_failure = |pts: &[Point]| {
        pts.iter()
            .find(|p| p.diverged || p.test_accuracy.is_some_and(|a| a < 0.5))
            .map(|p| p.lr)
    };
    let (bp, bb) = (best(&plain), best(&bn));
    let describe = |f: Option<f64>| {
        f.map_or("at none of the rates tried".to_string(), |lr| {
            format!("from learning rate {lr}")
        })
    };
    let findings = vec![
        format!(
            "Best test accuracy: {:.4} at learning rate {} without BatchNorm, {:.4} at {} with it.",
            bp.1, bp.0, bb.1, bb.0
        ),
        format!(
            "Without BatchNorm training fails (diverges, or ends below 50% accuracy) {}; with BatchNorm {}. Ioffe and Szegedy (section 3.3): BatchNorm makes a layer's output independent of the scale of its weights, so higher learning rates do not make it blow up.",
            describe(first_failure(&plain)),
            describe(first_failure(&bn))
        ),
    ];
    let series = |pts: &[Point], label: &str, color: usize| Series {
        label: label.into(),
        points: pts
            .iter()
            .map(|p| (p.lr, p.test_accuracy.unwrap_or(f64::NAN)))
            .collect(),
        color,
        markers: true,
        ..Default::default()
    };
    let crosses = plain
        .iter()
        .map(|p| (p, 0))
        .chain(bn.iter().map(|p| (p, 1)))
        .filter(|(p, _)| p.diverged)
        .map(|(p, c)| (p.lr, c))
        .collect();
    let figure = Figure::new(
        vec![Panel {
            title: format!("Test accuracy after {} epochs of plain SGD", o.epochs),
            x_label: "learning rate".into(),
            y_label: "test accuracy (x: diverged)".into(),
            log_x: true,
            y_range: Some((0.0, 1.0)),
            series: vec![series(&plain, "without BN", 0), series(&bn, "with BN", 1)],
            crosses,
            legend: Legend::LowerLeft,
            ..Default::default()
        }],
        1,
    );
    let results = serde_json::json!({ "plain": { "points": plain }, "bn": { "points": bn } });
    Ok(Outcome {
        name: "lr-sweep",
        title: "Learning-rate sweep: BatchNorm allows higher learning rates".into(),
        protocol: vec![format!(
            "The chapter's model (784-256-128-64-10, ReLU) with BatchNorm (Linear → BatchNorm1d → ReLU) and without, PyTorch's initialisation from seed {seed} (the same weights at every rate), trained with plain SGD (no momentum) for {} epochs of batches of {} on MNIST, the same data order for every run, at learning rates {}. Test accuracy in eval mode at the end. A run whose loss becomes NaN or infinite is stopped and recorded as diverged.",
            o.epochs,
            o.batch_size,
            o.lrs.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", "),
            seed = o.seed
        )],
        table,
        findings,
        figures: vec![("lr-sweep.png".into(), "Final test accuracy against the learning rate (log scale); a cross marks a run that diverged.".into(), figure)],
        models: vec![],
        results,
        seconds: started.elapsed().as_secs_f64(),
    })
}
