//! `bnlab experiment smoothness`: Santurkar, Tsipras, Ilyas and Madry (2018), "How Does Batch
//! Normalization Help Optimization?", Figure 4, at MNIST scale. The chapter's model with and
//! without BatchNorm, and with "noisy BatchNorm" (each BatchNorm's output scaled and shifted
//! per unit by amounts drawn anew at every step: a distribution of non-zero mean and non-unit
//! variance that shifts all the time, their argument against the covariate-shift explanation),
//! trained with plain SGD at one learning rate.
//!
//! Every `every` steps the step's batch is frozen and the loss and gradient are evaluated at
//! θ − η·g for a range of step sizes η along the current gradient g:
//! - `loss_range`: the spread (max − min) of the loss along that walk (Figure 4a);
//! - `grad_change`: the largest ℓ2 distance between the gradient there and at θ (4b, "gradient
//!   predictiveness");
//! - `beta`: the largest ‖Δg‖ / ‖Δθ‖ (4c, "effective β-smoothness").
//!
//! The walk changes nothing: the weights and the running statistics are put back before the
//! step is taken.

use super::design::{from_results, run_design, to_result, without_seed, Design};
use super::models::chapter_preset;
use super::outcome::{Outcome, Table};
use super::seeds::{mean_curve, results_json, seeds_text, Observations};
use super::steps::Ended;
use crate::data::{Dataset, Loader};
use crate::figure::{Band, Figure, Legend, Panel, Series};
use crate::graph::Graph;
use crate::nn::{parameters, set_training, Forward, Layer, Net};
use crate::optim::{Sgd, SgdConfig};
use crate::precision::Precision;
use crate::presets::Preset;
use crate::train::{evaluate, run_batch, train_step, Mode, StepBuffers};
use crate::{state_dict, Error, ParamId, Result, Rng, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The experiment's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Options {
    /// Training steps (default 1,500).
    pub steps: usize,
    /// Steps between two walks along the gradient (default 50).
    pub every: usize,
    /// Examples per step (default 64).
    pub batch_size: usize,
    /// Plain SGD's learning rate, the same for every arm (default 0.1).
    pub lr: f64,
    /// The step sizes of the walk, as multiples of the learning rate (default 0.25 to 4).
    pub walk: Vec<f64>,
    /// Seeds the initial weights, the data order and the noise (default 0).
    pub seed: u64,
    /// How the matrix products compute (default float32; see [`crate::precision`]).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            steps: 1_500,
            every: 50,
            batch_size: 64,
            lr: 0.1,
            walk: vec![0.25, 0.5, 1.0, 2.0, 4.0],
            seed: 0,
            precision: Precision::F32,
        }
    }
}

impl Options {
    /// An error unless there is at least one walk, of positive step sizes.
    pub fn validate(&self) -> Result<()> {
        if self.every == 0 || self.steps < self.every {
            return Err(Error::Invalid(format!(
                "--steps {} must be at least one walk interval (--every {}, at least 1)",
                self.steps, self.every
            )));
        }
        if self.batch_size < 2 {
            return Err(Error::Invalid(
                "the batch must hold at least 2 examples".into(),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::Invalid(format!(
                "--lr {} is not a positive learning rate",
                self.lr
            )));
        }
        if self.walk.is_empty() || self.walk.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(Error::Invalid(
                "the walk's step sizes must be positive multiples of the learning rate".into(),
            ));
        }
        Ok(())
    }
}

/// One walk along the gradient.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// The training step (from 1) whose batch was frozen, before its update.
    pub step: usize,
    /// The loss at θ on that batch.
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub loss: f64,
    /// max − min of the loss along the walk (θ included).
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub loss_range: f64,
    /// The largest ‖g(θ − ηg) − g(θ)‖ along the walk.
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub grad_change: f64,
    /// The largest ‖g(θ − ηg) − g(θ)‖ / ‖ηg‖ along the walk.
    #[serde(deserialize_with = "super::design::nan_if_null")]
    pub beta: f64,
}

/// One arm's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Run {
    curve: Vec<Point>,
    test_accuracy: Option<f64>,
    ended: Ended,
}

/// The arms: (results key, words).
pub const ARMS: [(&str, &str); 3] = [
    ("bn", "with BatchNorm"),
    ("plain", "without BatchNorm"),
    ("noisy_bn", "noisy BatchNorm"),
];

/// After a BatchNorm, in training: each unit's output times a scale and plus a shift that are
/// drawn anew at every step (scale uniform in [0.5, 1.5], shift uniform in [−1, 1]; the same for
/// every example of the batch, and for every forward pass of the same step), so that the
/// next layer sees a distribution of non-zero mean and non-unit variance that keeps moving.
/// In eval mode it passes its input through: the noise's expected scale is 1, its shift 0.
#[derive(crate::nn::Module)]
pub struct NoisyShift {
    #[module(skip)]
    units: usize,
    #[module(skip)]
    seed: u64,
    #[module(skip)]
    step: Arc<AtomicU64>,
    #[module(skip)]
    training: bool,
}

impl Forward for NoisyShift {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        if !self.training {
            return Ok(x);
        }
        let n = g.shape(x)[0];
        let step = self.step.load(Ordering::Relaxed);
        let mut rng = Rng::seed(
            self.seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (self.units as u64) << 48,
        );
        let (scale, shift): (Vec<f32>, Vec<f32>) = (0..self.units)
            .map(|_| (rng.uniform(0.5, 1.5), rng.uniform(-1.0, 1.0)))
            .unzip();
        let mut rows = |v: &[f32]| -> Result<Var> {
            let data: Vec<f32> = (0..n).flat_map(|_| v.iter().copied()).collect();
            g.input(&Tensor::new(&[n, self.units], data)?, false)
        };
        let (s, m) = (rows(&scale)?, rows(&shift)?);
        let y = g.mul(x, s)?;
        g.add(y, m)
    }

    fn set_own_training(&mut self, training: bool) {
        self.training = training;
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
}

/// Arm `arm`'s model from `seed` (the same initial weights for all three), and for the noisy
/// arm the counter its noise reads the step from.
fn model(arm: usize, seed: u64, precision: Precision) -> Result<(Graph, Net, Arc<AtomicU64>)> {
    let step = Arc::new(AtomicU64::new(0));
    let preset = if ARMS[arm].0 == "plain" {
        Preset::Plain
    } else {
        Preset::Bn
    };
    let (g, mut net) = chapter_preset(preset, seed, precision)?;
    if ARMS[arm].0 == "noisy_bn" {
        for (_, block) in &mut net.blocks {
            if let Layer::Sequential(seq) = block {
                if let Some(i) = seq
                    .layers
                    .iter()
                    .position(|l| l.type_name() == "BatchNorm1d")
                {
                    let units = g.params.shape(parameters(&seq.layers[i])[0])[0];
                    seq.layers.insert(
                        i + 1,
                        Layer::custom(NoisyShift {
                            units,
                            seed: seed ^ 0x5eed_0f40_1e00,
                            step: step.clone(),
                            training: true,
                        }),
                    );
                }
            }
        }
    }
    Ok((g, net, step))
}

/// The loss at the current weights on `batch`, and the gradient of every parameter.
fn loss_and_grad(
    net: &mut Net,
    g: &mut Graph,
    ds: &Dataset,
    batch: &[u32],
    ids: &[ParamId],
    bufs: &mut StepBuffers,
) -> Result<(f64, Vec<Vec<f32>>)> {
    let (loss, _) = run_batch(net, g, ds, batch, Mode::Multi, bufs)?;
    let value = g.value(loss)[0] as f64;
    g.params.zero_grad();
    g.backward(loss)?;
    let grads = ids
        .iter()
        .map(|&id| {
            g.params
                .grad(id)
                .map_or_else(|| vec![0.0; g.params.value(id).len()], <[f32]>::to_vec)
        })
        .collect();
    Ok((value, grads))
}

/// ‖a − b‖ over all parameters, summed in f64.
fn distance(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y))
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Walk from θ along −g on the frozen `batch`; the weights and running statistics are put
/// back afterwards.
#[allow(clippy::too_many_arguments)]
fn walk(
    o: &Options,
    step: usize,
    net: &mut Net,
    g: &mut Graph,
    ds: &Dataset,
    batch: &[u32],
    ids: &[ParamId],
    bufs: &mut StepBuffers,
) -> Result<Point> {
    let saved: std::collections::BTreeMap<_, _> =
        state_dict::state_dict(net, &g.params).into_iter().collect();
    let theta: Vec<Vec<f32>> = ids.iter().map(|&id| g.params.value(id).to_vec()).collect();
    let (loss, grad) = loss_and_grad(net, g, ds, batch, ids, bufs)?;
    let zero: Vec<Vec<f32>> = grad.iter().map(|v| vec![0.0; v.len()]).collect();
    let grad_norm = distance(&grad, &zero);
    let (mut lo, mut hi) = (loss, loss);
    let (mut grad_change, mut beta) = (0.0f64, 0.0f64);
    for &k in &o.walk {
        let eta = k * o.lr;
        for ((&id, t), gr) in ids.iter().zip(&theta).zip(&grad) {
            for ((v, t), gr) in g.params.value_mut(id).iter_mut().zip(t).zip(gr) {
                *v = (*t as f64 - eta * *gr as f64) as f32;
            }
        }
        let (l, gr_eta) = loss_and_grad(net, g, ds, batch, ids, bufs)?;
        lo = lo.min(l);
        hi = hi.max(l);
        let d = distance(&gr_eta, &grad);
        grad_change = grad_change.max(d);
        if grad_norm > 0.0 {
            beta = beta.max(d / (eta * grad_norm));
        }
    }
    state_dict::load_state_dict(net, &mut g.params, &saved, "")?;
    Ok(Point {
        step,
        loss,
        loss_range: hi - lo,
        grad_change,
        beta,
    })
}

fn run_one(o: &Options, arm: usize, train: &Dataset, test: &Dataset) -> Result<Run> {
    let (mut g, mut net, noise_step) = model(arm, o.seed, o.precision)?;
    let ids = parameters(&net);
    let mut opt = Sgd::new(
        ids.clone(),
        SgdConfig {
            lr: o.lr,
            ..Default::default()
        },
    )?;
    let mut loader = Loader::new(o.batch_size, true, true, o.seed)?;
    if loader.num_batches(train.len) == 0 {
        return Err(Error::Invalid(format!(
            "a batch of {} needs at least that many training examples",
            o.batch_size
        )));
    }
    let (mut bufs, mut order, mut curve) = (StepBuffers::default(), vec![], vec![]);
    let mut step = 0;
    let mut ended = Ended::Completed;
    'training: while step < o.steps {
        loader.fill_epoch_indices(train.len, &mut order);
        for range in loader.batches(train.len) {
            if step == o.steps {
                break;
            }
            step += 1;
            noise_step.store(step as u64, Ordering::Relaxed);
            set_training(&mut net, true);
            g.set_grad_enabled(true);
            let batch = &order[range];
            if step % o.every == 0 {
                curve.push(walk(
                    o, step, &mut net, &mut g, train, batch, &ids, &mut bufs,
                )?);
            }
            let loss = train_step(
                &mut net,
                &mut g,
                &mut opt,
                train,
                batch,
                Mode::Multi,
                &mut bufs,
            )?;
            if !loss.is_finite() {
                ended = Ended::Diverged { step };
                break 'training;
            }
        }
    }
    let test_accuracy = if ended == Ended::Completed {
        let (loss, accuracy) = evaluate(&mut net, &mut g, test, 1000, Mode::Multi)?;
        loss.is_finite().then_some(accuracy)
    } else {
        None
    };
    Ok(Run {
        curve,
        test_accuracy,
        ended,
    })
}

impl Design for Options {
    fn name(&self) -> &'static str {
        "smoothness"
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
        to_result(&run_one(&o, run, train, test)?)
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
    let _ = writeln!(log, "3 runs of {} steps in {:.1} s", o.steps, out.seconds);
    Ok(out)
}

/// One of the three quantities: (results field, words, how to read it off a walk).
type Quantity = (&'static str, &'static str, fn(&Point) -> f64);

/// The three quantities.
const QUANTITIES: [Quantity; 3] = [
    ("loss_range", "the loss's range along the gradient", |p| {
        p.loss_range
    }),
    ("grad_change", "the gradient's largest change (ℓ2)", |p| {
        p.grad_change
    }),
    ("beta", "the effective β-smoothness", |p| p.beta),
];

fn mean_of(c: &[Point], pick: fn(&Point) -> f64) -> Option<f64> {
    let v: Vec<f64> = c.iter().map(pick).filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn outcome(o: &Options, seeds: &[u64], runs: &[Vec<Run>], seconds: f64) -> Result<Outcome> {
    let one = seeds.len() == 1;
    let mut obs = Observations::new(seeds);
    let mut per_seed = vec![];
    for (s, row) in runs.iter().enumerate() {
        let mut results = serde_json::Map::new();
        for ((key, _), r) in ARMS.iter().zip(row) {
            for (q, _, pick) in QUANTITIES {
                obs.record(s, key, &format!("mean {q}"), mean_of(&r.curve, pick));
            }
            obs.record(s, key, "test_accuracy", r.test_accuracy);
            results.insert(
                key.to_string(),
                serde_json::json!({ "curve": r.curve, "test_accuracy": r.test_accuracy }),
            );
        }
        per_seed.push(serde_json::Value::Object(results));
    }
    let results = results_json(seeds, per_seed, &obs);
    let h = if one { "" } else { " (mean ± 95%)" };
    let mut table = Table::new(&[
        "model",
        &format!("loss range{h}"),
        &format!("gradient change{h}"),
        &format!("β-smoothness{h}"),
        &format!("test accuracy{h}"),
    ]);
    for (key, words) in ARMS {
        table.row(vec![
            words.to_string(),
            obs.cell(key, "mean loss_range", 1.0, 4, "-"),
            obs.cell(key, "mean grad_change", 1.0, 4, "-"),
            obs.cell(key, "mean beta", 1.0, 3, "-"),
            obs.cell(key, "test_accuracy", 1.0, 4, "diverged"),
        ]);
    }
    let mut findings = vec![format!(
        "Each quantity is averaged over the {} walks of a run{}.",
        runs[0][0].curve.len(),
        if one {
            ""
        } else {
            ", then over the seeds (mean ± 95% interval)"
        }
    )];
    let mut agree = 0;
    for (q, words, _) in QUANTITIES {
        let metric = format!("mean {q}");
        findings.push(obs.sentence(
            &format!("Along the gradient, {words}"),
            ("bn", "with BatchNorm"),
            ("plain", "without"),
            &metric,
            1.0,
            4,
            "",
        ));
        if obs.verdict("bn", "plain", &metric).a_smaller() {
            agree += 1;
        }
    }
    let sure = if one {
        " in this one run (one seed cannot tell a finding from noise)"
    } else {
        " significantly"
    };
    findings.push(match agree {
        3 => format!(
            "As in Santurkar et al.'s Figure 4, all three are smaller with BatchNorm{sure}: along the gradient its loss changes less and its gradient stays more predictive, a smoother landscape."
        ),
        0 => format!(
            "Unlike Santurkar et al.'s Figure 4, none of the three is {}smaller with BatchNorm here.",
            if one { "" } else { "significantly " }
        ),
        1 => format!(
            "Only one of the three quantities is smaller with BatchNorm{sure}; Santurkar et al.'s Figure 4 has all three smaller."
        ),
        k => format!(
            "Only {k} of the three quantities are smaller with BatchNorm{sure}; Santurkar et al.'s Figure 4 has all three smaller."
        ),
    });
    findings.push(obs.sentence(
        "Test accuracy at the end",
        ("noisy_bn", "noisy BatchNorm"),
        ("bn", "BatchNorm"),
        "test_accuracy",
        100.0,
        2,
        "%",
    ));
    findings.push(obs.sentence(
        "Test accuracy at the end",
        ("noisy_bn", "noisy BatchNorm"),
        ("plain", "no BatchNorm"),
        "test_accuracy",
        100.0,
        2,
        "%",
    ));
    findings.push("Santurkar et al. found that noisy BatchNorm, whose layers' inputs shift in mean and variance at every step, still trains about as well as BatchNorm and better than none: reducing internal covariate shift is not what makes BatchNorm help.".into());
    // the bands: each arm's spread over the seeds (lowest and highest value at each walk) with
    // the mean as a line; with one seed, the line alone
    let panel = |(q, words, pick): Quantity| {
        let mut series = vec![];
        let mut bands = vec![];
        for (a, (_, arm_words)) in ARMS.iter().enumerate() {
            let curves: Vec<Vec<(f64, f64)>> = runs
                .iter()
                .map(|row| {
                    row[a]
                        .curve
                        .iter()
                        .map(|p| (p.step as f64, pick(p)))
                        .collect()
                })
                .collect();
            series.push(Series {
                label: arm_words.to_string(),
                points: mean_curve(&curves),
                color: a,
                ..Default::default()
            });
            if !one {
                let edge = |f: fn(f64, f64) -> f64| -> Vec<(f64, f64)> {
                    mean_curve(&curves)
                        .iter()
                        .enumerate()
                        .map(|(i, &(x, _))| {
                            let ys = curves.iter().filter_map(|c| c.get(i)).map(|p| p.1);
                            (x, ys.fold(f64::NAN, f))
                        })
                        .collect()
                };
                bands.push(Band {
                    lower: edge(f64::min),
                    upper: edge(f64::max),
                    color: a,
                });
            }
        }
        Panel {
            title: words.to_string(),
            x_label: "step".into(),
            y_label: q.to_string(),
            log_y: true,
            series,
            bands,
            legend: Legend::UpperRight,
            ..Default::default()
        }
    };
    let figure = Figure::new(QUANTITIES.iter().map(|&q| panel(q)).collect(), 3);
    let mut protocol = vec![format!(
        "The chapter's model (784-256-128-64-10, ReLU) with BatchNorm (Linear → BatchNorm1d → ReLU), without it, and with noisy BatchNorm (after each BatchNorm, each unit scaled by a factor uniform in [0.5, 1.5] and shifted by an amount uniform in [−1, 1], drawn anew at every step), PyTorch's initialisation ({}; the same initial weights for the three), plain SGD at learning rate {} for {} steps of batches of {} on MNIST. Every {} steps the step's batch is frozen and the loss and gradient are evaluated at θ − η·g for η = {} times the learning rate; the weights and running statistics are put back before the step. Test accuracy in eval mode at the end (noise off).",
        seeds_text(seeds),
        o.lr,
        o.steps,
        o.batch_size,
        o.every,
        o.walk.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", "),
    )];
    for (seed, row) in seeds.iter().zip(runs) {
        for ((k, _), r) in ARMS.iter().zip(row) {
            if let Some(step) = r.ended.diverged_at() {
                protocol.push(format!("{k} diverged at step {step} at seed {seed}"));
            }
        }
    }
    Ok(Outcome {
        name: "smoothness",
        title: "Santurkar et al. (2018), Figure 4: BatchNorm smooths the loss landscape".into(),
        protocol,
        table,
        findings,
        figures: vec![(
            "smoothness.png".into(),
            format!(
                "Along the gradient of each {}-th step's batch: the loss's range, the gradient's largest change and the effective β-smoothness (log scale){}.",
                o.every,
                if one { "" } else { "; lines are means over the seeds, shaded bands their lowest to highest value" }
            ),
            figure,
        )],
        models: vec![],
        results,
        seconds,
    })
}
