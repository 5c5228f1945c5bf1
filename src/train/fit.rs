//! The course's `fit`: each epoch one training pass, then both sets evaluated again in eval
//! mode, the scheduler stepped, the epoch's line printed; optionally the best model saved and
//! training stopped early. Returns the history.

use super::checkpoint::{save_checkpoint, TrainState};
use super::evaluate::{evaluate, Mode, StepBuffers};
use super::history::{EpochRecord, History};
use super::observer::Observer;
use super::schedule::Scheduler;
use super::step::train_step;
use crate::data::augment::{self, Augmentation};
use crate::data::{Dataset, Loader};
use crate::error::{LossSeen, NonFiniteLoss};
use crate::graph::Graph;
use crate::nn::{set_training, Module};
use crate::optim::Optimizer;
use crate::rng::Rng;
use crate::{state_dict, Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// fit's options, with the course's meaning.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Epochs to train for, in all (a resumed run continues up to this count). Default 10.
    pub epochs: usize,
    /// Examples per training step and per evaluation batch (at least 1). Default 256.
    pub batch_size: usize,
    /// Skip the last training batch of each epoch when it is smaller than `batch_size`, as
    /// PyTorch's `DataLoader(drop_last=True)`: a BatchNorm cannot train on a batch of one
    /// example. Evaluation always sees every example. Default false.
    pub drop_last: bool,
    /// Save the model here whenever the validation loss improves (strictly).
    pub save_best: Option<PathBuf>,
    /// Stop after this many epochs without improvement of the validation loss.
    pub early_stopping: Option<usize>,
    /// Multi-class or binary classification: the loss and the accuracy. Default multi-class.
    pub mode: Mode,
    /// The learning rate schedule, stepped after every epoch. Default constant.
    pub scheduler: Scheduler,
    /// Seeds the order of the training examples.
    pub seed: u64,
    /// Draw a progress bar on stderr while an epoch runs (only when stderr is a terminal, and
    /// only with the crate's `progress` feature, which the default `cli` feature brings).
    pub progress: bool,
    /// Augment every training batch with this (never the evaluations), from a generator of its own
    /// seeded by `seed` (see [`crate::data::augment::stream_seed`]). Default none.
    pub augment: Option<Augmentation>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 10,
            batch_size: 256,
            drop_last: false,
            save_best: None,
            early_stopping: None,
            mode: Mode::Multi,
            scheduler: Scheduler::None,
            seed: 0,
            progress: true,
            augment: None,
        }
    }
}

impl FitOptions {
    /// An error unless `batch_size` and `early_stopping` (when set) are at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Invalid(
                "FitOptions: batch_size must be at least 1".into(),
            ));
        }
        if self.early_stopping == Some(0) {
            return Err(Error::Invalid(
                "FitOptions: early_stopping (the patience) must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("<output>", e)
}

/// Called after every training step with the epoch (from 1) and the steps done in it (from 1),
/// before the interrupt flag is checked: a caller can watch a run's progress, or hold the run
/// at a known step (the command's `BNLAB_PAUSE_AT`) while something happens to it.
pub type StepHook = Box<dyn FnMut(usize, usize)>;

/// What a resumable run adds to `fit`: a checkpoint after every epoch (and when interrupted),
/// a flag that interrupts the run between two steps, and a state to continue from.
#[derive(Default)]
pub struct RunControl {
    /// Write the checkpoint here after every epoch, and when interrupted.
    pub checkpoint: Option<PathBuf>,
    /// Set (from a signal handler, say) to stop after the current step.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Continue this run (from `load_checkpoint`) instead of starting afresh.
    pub resume: Option<TrainState>,
    /// The run's settings, kept in the history (and so in every checkpoint) of a new run.
    pub config: serde_json::Value,
    /// Called after every training step (see [`StepHook`]).
    pub after_step: Option<StepHook>,
    /// Watches every step and epoch (statistics, TensorBoard; see [`Observer`]).
    pub observer: Option<Box<dyn Observer>>,
}

/// Train `model` on `train`, evaluating on `val` after each epoch; lines go to `out`.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    model: &mut dyn Module,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    train: &Dataset,
    val: &Dataset,
    opts: &FitOptions,
    out: &mut dyn Write,
) -> Result<History> {
    fit_resumable(
        model,
        g,
        opt,
        train,
        val,
        opts,
        out,
        &mut RunControl::default(),
    )
}

/// `fit` with checkpoints, interruption and resumption. With a fixed seed and thread count, a
/// run interrupted (or killed) and resumed from its checkpoint ends with the same weights and
/// history (times apart) as a run that was never stopped.
#[allow(clippy::too_many_arguments)]
pub fn fit_resumable(
    model: &mut dyn Module,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    train: &Dataset,
    val: &Dataset,
    opts: &FitOptions,
    out: &mut dyn Write,
    control: &mut RunControl,
) -> Result<History> {
    opts.validate()?;
    let start = Instant::now();
    let mut st = match control.resume.take() {
        Some(st) => st,
        None => TrainState {
            epoch: 0,
            step: 0,
            loader: Loader::new(opts.batch_size, true, opts.drop_last, opts.seed)?,
            dropout_rng: g.rng.clone(),
            augment_rng: opts
                .augment
                .map(|_| Rng::seed(augment::stream_seed(opts.seed))),
            base_lr: opt.lr(),
            best: f64::INFINITY,
            since_best: 0,
            history: History {
                config: control.config.clone(),
                ..Default::default()
            },
        },
    };
    let elapsed_before = st.history.elapsed_seconds;
    let mut bufs = StepBuffers::default();
    if let Some(a) = opts.augment {
        let Some(rng) = st.augment_rng.clone() else {
            return Err(Error::Invalid(
                "fit: augmentation asked for, but the run resumed has no augmentation stream (it was started without)".into(),
            ));
        };
        bufs.augment = Some((a, rng));
    }
    while st.epoch < opts.epochs && !st.history.stopped_early {
        let epoch = st.epoch + 1;
        let t0 = Instant::now();
        let lr = opts.scheduler.lr_at(st.base_lr, st.epoch);
        opt.set_lr(lr);
        // this epoch's order, drawn from the generator as it was before the epoch
        let mut loader = st.loader.clone();
        loader.fill_epoch_indices(train.len, &mut bufs.order);
        let order = std::mem::take(&mut bufs.order);
        // the pool's workers kept awake for the epoch's many small kernels
        let stopped_at = crate::runtime::with_workers_awake(|| {
            train_epoch(
                model, g, opt, train, &loader, &order, st.step, &mut bufs, opts, epoch, control,
            )
        })?;
        bufs.order = order;
        if let Some(step) = stopped_at {
            st.step = step;
            st.dropout_rng = g.rng.clone();
            st.augment_rng = bufs.augment.as_ref().map(|(_, rng)| rng.clone());
            let Some(path) = &control.checkpoint else {
                return Err(Error::Interrupted(format!(
                    "interrupted at epoch {epoch}, step {step}"
                )));
            };
            if let Some(o) = &mut control.observer {
                o.flush()?;
            }
            save_checkpoint(path, model, g, opt, &st)?;
            return Err(Error::Interrupted(format!(
                "interrupted at epoch {epoch}, step {step}: checkpoint written to {}",
                path.display()
            )));
        }
        st.loader = loader;
        st.step = 0;
        let (train_loss, train_accuracy) = evaluate(model, g, train, opts.batch_size, opts.mode)?;
        let (val_loss, val_accuracy) = evaluate(model, g, val, opts.batch_size, opts.mode)?;
        // the epoch's last step is checked only here, through the losses it leads to
        if !(train_loss.is_finite() && val_loss.is_finite()) {
            let steps = st.loader.num_batches(train.len);
            return Err(Error::NonFinite(NonFiniteLoss {
                epoch,
                step: steps,
                steps,
                seen: LossSeen::Evaluation {
                    train: train_loss,
                    validation: val_loss,
                },
            }));
        }
        let new_lr = opts.scheduler.lr_at(st.base_lr, epoch);
        if new_lr != lr {
            opt.set_lr(new_lr);
            writeln!(out, "Learning rate: {lr} -> {new_lr}").map_err(out_err)?;
        }
        writeln!(
            out,
            "Epoch[{epoch}/{}] - Train loss: {train_loss:.5} Train Accuracy: {train_accuracy:.5} || Validation Loss: {val_loss:.5} Validation Accuracy: {val_accuracy:.5}",
            opts.epochs
        )
        .map_err(out_err)?;
        writeln!(out, "{}", "=".repeat(100)).map_err(out_err)?;
        let record = EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        if let Some(o) = &mut control.observer {
            o.after_epoch(g, model, &record)?;
        }
        st.history.epochs.push(record);
        if val_loss < st.best {
            if let Some(path) = &opts.save_best {
                state_dict::save(model, &g.params, path)?;
                writeln!(
                    out,
                    "Validation loss improved from {:.5} to {val_loss:.5}: model saved to {}",
                    st.best,
                    path.display()
                )
                .map_err(out_err)?;
            }
            st.best = val_loss;
            st.since_best = 0;
            st.history.best_epoch = Some(epoch);
        } else {
            st.since_best += 1;
            if opts.early_stopping.is_some_and(|p| st.since_best >= p) {
                writeln!(
                    out,
                    "Early stopping at epoch {epoch}: validation loss has not improved for {} epochs (best {:.5} at epoch {})",
                    st.since_best,
                    st.best,
                    st.history.best_epoch.unwrap_or(0)
                )
                .map_err(out_err)?;
                st.history.stopped_early = true;
            }
        }
        st.epoch = epoch;
        st.dropout_rng = g.rng.clone();
        st.augment_rng = bufs.augment.as_ref().map(|(_, rng)| rng.clone());
        st.history.elapsed_seconds = elapsed_before + start.elapsed().as_secs_f64();
        if let Some(o) = &mut control.observer {
            o.flush()?;
        }
        if let Some(path) = &control.checkpoint {
            save_checkpoint(path, model, g, opt, &st)?;
        }
        let interrupted = control
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst));
        if interrupted && st.epoch < opts.epochs && !st.history.stopped_early {
            let at = control.checkpoint.as_ref().map_or(String::new(), |p| {
                format!(": checkpoint written to {}", p.display())
            });
            return Err(Error::Interrupted(format!(
                "interrupted after epoch {epoch}{at}"
            )));
        }
    }
    let mut history = st.history;
    history.elapsed_seconds = elapsed_before + start.elapsed().as_secs_f64();
    writeln!(out, "{:.2} seconds", history.elapsed_seconds).map_err(out_err)?;
    Ok(history)
}

/// One pass over the training set in training mode, from step `first` of the epoch's order.
/// Returns the number of steps done when interrupted, None when the epoch is complete.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    model: &mut dyn Module,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    train: &Dataset,
    loader: &Loader,
    order: &[u32],
    first: usize,
    bufs: &mut StepBuffers,
    opts: &FitOptions,
    epoch: usize,
    control: &mut RunControl,
) -> Result<Option<usize>> {
    set_training(model, true);
    g.set_grad_enabled(true);
    let steps = loader.num_batches(train.len);
    let bar = progress_bar(opts.progress, steps as u64, epoch, opts.epochs);
    if let Some(bar) = &bar {
        bar.set_position(first as u64);
    }
    for (step, range) in loader.batches(train.len).enumerate().skip(first) {
        // the step's number over the whole run, from 1
        let global = ((epoch - 1) * steps + step + 1) as u64;
        if let Some(o) = &mut control.observer {
            o.before_step(g, model, global, epoch)?;
        }
        let examples = range.len();
        let value = train_step(model, g, opt, train, &order[range], opts.mode, bufs)
            .map_err(|e| name_the_batch(e, epoch, step + 1, steps, examples))?;
        if !value.is_finite() {
            return Err(Error::NonFinite(NonFiniteLoss {
                epoch,
                step: step + 1,
                steps,
                seen: LossSeen::Step(value),
            }));
        }
        if let Some(o) = &mut control.observer {
            o.after_step(g, model, global, epoch)?;
        }
        if let Some(hook) = &mut control.after_step {
            hook(epoch, step + 1);
        }
        if let Some(bar) = &bar {
            bar.inc(1);
            if step % 16 == 0 {
                bar.set_message(format!("loss {value:.4}"));
            }
        }
        if control
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
            && step + 1 < steps
        {
            if let Some(bar) = bar {
                bar.abandon();
            }
            return Ok(Some(step + 1));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(None)
}

/// BatchNorm's "Expected more than 1 value per channel" names no batch: say which one (a last
/// batch of one example is the usual cause) and how to avoid it.
fn name_the_batch(e: Error, epoch: usize, step: usize, steps: usize, examples: usize) -> Error {
    match e {
        Error::Shape(m) if m.contains(crate::nn::ONE_VALUE_PER_CHANNEL) => {
            let s = if examples == 1 { "" } else { "s" };
            Error::Shape(format!(
                "epoch {epoch}, training batch {step} of {steps} holds {examples} example{s}: {m} \
                 (another batch size, or drop_last, avoids a last batch of one)"
            ))
        }
        e => e,
    }
}

#[cfg(feature = "progress")]
fn progress_bar(
    enabled: bool,
    steps: u64,
    epoch: usize,
    epochs: usize,
) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:40}] {pos}/{len} {msg} ({elapsed})",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
    Some(bar)
}

/// Without the `progress` feature there is no bar: [`FitOptions::progress`] draws nothing.
#[cfg(not(feature = "progress"))]
fn progress_bar(_enabled: bool, _steps: u64, _epoch: usize, _epochs: usize) -> Option<NoBar> {
    None
}

/// The bar's calls, doing nothing (never made: there is no bar without the `progress`
/// feature).
#[cfg(not(feature = "progress"))]
struct NoBar;

#[cfg(not(feature = "progress"))]
impl NoBar {
    fn set_position(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn abandon(self) {}
    fn finish_and_clear(self) {}
}
