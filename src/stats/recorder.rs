//! What `bnlab train --stats` records: for every normalisation layer, on every stats step,
//! its input and output distributions, its batch statistics against its running ones, the
//! gradient reaching it and the weight norm of the layer before it.
//!
//! Everything is read through the open library's hooks (`nn::register_forward_hook`,
//! `nn::register_backward_hook`), registered just before a stats step and removed just after
//! it, so the other steps run exactly as without `--stats` (fused blocks stay fused) and the
//! layers themselves know nothing of it.

use super::describe::{unit_moments, units, Distribution};
use super::layers::{norm_layers, running_stats, NormLayer};
use super::row::StatsRow;
use crate::graph::{Graph, HookHandle};
use crate::nn::{hooks::find, register_backward_hook, register_forward_hook, Module};
use crate::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// How often and what to record.
#[derive(Clone, Copy, Debug)]
pub struct StatsOptions {
    /// Record on step 1 and then on every step that is a multiple of this (steps counted over
    /// the whole run, from 1). At least 1.
    pub every: usize,
    /// The unit (index of dimension 1: a feature or a channel) whose percentiles are recorded.
    pub unit: usize,
    /// Keep each stats step's raw inputs and outputs (for TensorBoard's histograms).
    pub keep_values: bool,
}

/// What the hooks of one layer saw during a stats step.
#[derive(Default)]
struct Capture {
    input: Option<Distribution>,
    output: Option<Distribution>,
    /// Per-unit batch mean and unbiased variance of the input (what BatchNorm's running
    /// statistics average).
    batch_moments: Option<(Vec<f64>, Vec<f64>)>,
    grad_norm: Option<f64>,
    /// The units the layer's input has, when fewer than the chosen unit needs.
    too_few_units: Option<usize>,
    values: Option<(Vec<f32>, Vec<f32>)>,
}

/// Running statistics and weight norm, read before the step's forward changes them.
struct Before {
    running: Option<(Vec<f32>, Vec<f32>)>,
    weight_norm: Option<f64>,
}

/// Records statistics of a model's normalisation layers on stats steps (see the module docs).
pub struct StatsRecorder {
    layers: Vec<NormLayer>,
    options: StatsOptions,
    captures: Rc<RefCell<Vec<Capture>>>,
    /// Seconds spent recording (hooks, running statistics, rows), for the overhead benchmark.
    spent: Rc<std::cell::Cell<f64>>,
    handles: Vec<HookHandle>,
    before: Vec<Before>,
    /// (global step, epoch) of the stats step under way.
    current: Option<(u64, usize)>,
    rows: Vec<StatsRow>,
    values: Vec<(String, Vec<f32>)>,
}

impl StatsRecorder {
    /// A recorder for every BatchNorm, LayerNorm and GroupNorm of `model`; an error when it
    /// has none, or when `every` is 0.
    pub fn new(model: &dyn Module, options: StatsOptions) -> Result<StatsRecorder> {
        if options.every == 0 {
            return Err(Error::Invalid(
                "statistics: --stats-every must be at least 1".into(),
            ));
        }
        let layers = norm_layers(model);
        if layers.is_empty() {
            return Err(Error::Invalid(format!(
                "statistics: the model ({}) has no BatchNorm, LayerNorm or GroupNorm layer to watch",
                model.type_name()
            )));
        }
        Ok(StatsRecorder {
            layers,
            options,
            captures: Rc::default(),
            handles: vec![],
            before: vec![],
            current: None,
            rows: vec![],
            spent: Rc::default(),
            values: vec![],
        })
    }

    /// The layers watched, in the model's order.
    pub fn layers(&self) -> &[NormLayer] {
        &self.layers
    }

    /// Whether global step `step` (from 1) is a stats step.
    pub fn is_stats_step(&self, step: u64) -> bool {
        step == 1 || step.is_multiple_of(self.options.every as u64)
    }

    /// Before step `step` of epoch `epoch`: on a stats step, read the running statistics and
    /// weight norms and register the hooks. Returns whether this is a stats step.
    pub fn begin_step(
        &mut self,
        g: &mut Graph,
        model: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> Result<bool> {
        if !self.is_stats_step(step) {
            return Ok(false);
        }
        let started = Instant::now();
        self.current = Some((step, epoch));
        *self.captures.borrow_mut() = (0..self.layers.len()).map(|_| Capture::default()).collect();
        self.before.clear();
        for (i, layer) in self.layers.iter().enumerate() {
            let module = find(model, &layer.path)?;
            self.before.push(Before {
                running: running_stats(module),
                weight_norm: layer.weight_before.map(|id| {
                    g.params
                        .value(id)
                        .iter()
                        .map(|&w| w as f64 * w as f64)
                        .sum::<f64>()
                        .sqrt()
                }),
            });
            let (captures, unit, keep, spent) = (
                self.captures.clone(),
                self.options.unit,
                self.options.keep_values,
                self.spent.clone(),
            );
            self.handles.push(register_forward_hook(
                g,
                model,
                &layer.path,
                move |g, x, y| {
                    let started = Instant::now();
                    let mut all = captures.borrow_mut();
                    let c = &mut all[i];
                    let (xs, ys) = (g.value(x), g.value(y));
                    let shape = g.shape(x);
                    // the input's moments serve its distribution and the running comparison
                    let (mean, var) = unit_moments(xs, shape);
                    c.input = Distribution::with_moments(xs, shape, unit, &mean, &var);
                    c.output = Distribution::of(ys, g.shape(y), unit);
                    if c.input.is_none() {
                        c.too_few_units = Some(units(shape));
                    }
                    // running_var averages the unbiased variance: n / (n − 1) times the biased one
                    let n = (xs.len() / mean.len().max(1)) as f64;
                    let unbiased = var.iter().map(|v| v * n / (n - 1.0).max(1.0)).collect();
                    c.batch_moments = Some((mean, unbiased));
                    if keep {
                        c.values = Some((xs.to_vec(), ys.to_vec()));
                    }
                    spent.set(spent.get() + started.elapsed().as_secs_f64());
                },
            )?);
            let (captures, spent) = (self.captures.clone(), self.spent.clone());
            self.handles.push(register_backward_hook(
                g,
                model,
                &layer.path,
                move |grad, _| {
                    let started = Instant::now();
                    let sq: f64 = grad.iter().map(|&d| d as f64 * d as f64).sum();
                    captures.borrow_mut()[i].grad_norm = Some(sq.sqrt());
                    spent.set(spent.get() + started.elapsed().as_secs_f64());
                },
            )?);
        }
        self.spent
            .set(self.spent.get() + started.elapsed().as_secs_f64());
        Ok(true)
    }

    /// After a stats step (its backward and optimizer step done): remove the hooks and keep
    /// one row per layer. Nothing happens after a step that was not a stats step.
    pub fn end_step(&mut self, g: &mut Graph) -> Result<()> {
        for h in self.handles.drain(..) {
            g.remove_hook(h);
        }
        let Some((step, epoch)) = self.current.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let captures = std::mem::take(&mut *self.captures.borrow_mut());
        self.values.clear();
        for ((layer, c), before) in self.layers.iter().zip(captures).zip(&self.before) {
            if let Some(have) = c.too_few_units {
                return Err(Error::Invalid(format!(
                    "--unit {}: layer {} ({}) has {have} units (0 to {})",
                    self.options.unit,
                    layer.path,
                    layer.type_name,
                    have.saturating_sub(1)
                )));
            }
            // a layer the step did not run (a branch not taken) has nothing to report
            let (Some(input), Some(output)) = (c.input, c.output) else {
                continue;
            };
            let (mean_gap, var_ratio) = match (&before.running, &c.batch_moments) {
                (Some((rm, rv)), Some((bm, bv))) if rm.len() == bm.len() => {
                    let k = bm.len() as f64;
                    let gap = bm
                        .iter()
                        .zip(rm)
                        .map(|(b, r)| (b - *r as f64).abs())
                        .sum::<f64>()
                        / k;
                    let ratio = bv.iter().zip(rv).map(|(b, r)| b / *r as f64).sum::<f64>() / k;
                    (Some(gap), Some(ratio))
                }
                _ => (None, None),
            };
            if let Some((xs, ys)) = c.values {
                self.values.push((format!("{}/input", layer.path), xs));
                self.values.push((format!("{}/output", layer.path), ys));
            }
            self.rows.push(StatsRow {
                step,
                epoch,
                layer: layer.path.clone(),
                kind: layer.type_name.clone(),
                input,
                output,
                mean_gap,
                var_ratio,
                grad_norm: c.grad_norm,
                weight_norm_before: before.weight_norm,
            });
        }
        self.spent
            .set(self.spent.get() + started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Seconds spent recording so far: in the hooks, reading the running statistics and weight
    /// norms, and making the rows (not the writing of files).
    pub fn seconds_spent(&self) -> f64 {
        self.spent.get()
    }

    /// Every row recorded so far, in step order.
    pub fn rows(&self) -> &[StatsRow] {
        &self.rows
    }

    /// Start from rows recorded earlier (a resumed run): those after `step` are dropped.
    pub fn continue_from(&mut self, mut rows: Vec<StatsRow>, step: u64) {
        rows.retain(|r| r.step <= step);
        self.rows = rows;
    }

    /// The last stats step's raw values, tagged `PATH/input` and `PATH/output` (with
    /// `keep_values`; empty otherwise).
    pub fn last_values(&self) -> &[(String, Vec<f32>)] {
        &self.values
    }
}
