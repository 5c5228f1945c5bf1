//! The course's `fit`: each epoch one training pass, then both sets evaluated again in eval
//! mode, the scheduler stepped, the epoch's line printed; optionally the best model saved and
//! training stopped early. Returns the history.

use super::evaluate::{evaluate, run_batch, Mode, StepBuffers};
use super::history::{EpochRecord, History};
use super::schedule::Scheduler;
use crate::data::{Dataset, Loader};
use crate::graph::Graph;
use crate::nn::{set_training, Module};
use crate::optim::Optimizer;
use crate::{state_dict, Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// fit's options, with the course's meaning.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Save the model here whenever the validation loss improves (strictly).
    pub save_best: Option<PathBuf>,
    /// Stop after this many epochs without improvement of the validation loss.
    pub early_stopping: Option<usize>,
    pub mode: Mode,
    pub scheduler: Scheduler,
    /// Seeds the order of the training examples.
    pub seed: u64,
    /// Draw a progress bar on stderr while an epoch runs (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 10,
            batch_size: 256,
            save_best: None,
            early_stopping: None,
            mode: Mode::Multi,
            scheduler: Scheduler::None,
            seed: 0,
            progress: true,
        }
    }
}

impl FitOptions {
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Invalid("--batch-size must be at least 1".into()));
        }
        if self.early_stopping == Some(0) {
            return Err(Error::Invalid(
                "--patience must be at least 1 with --early-stopping".into(),
            ));
        }
        Ok(())
    }
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("<output>", e)
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
    opts.validate()?;
    let start = Instant::now();
    let base_lr = opt.lr();
    let mut loader = Loader::new(opts.batch_size, true, false, opts.seed)?;
    let mut bufs = StepBuffers::default();
    let mut history = History::default();
    let mut best = f64::INFINITY;
    let mut since_best = 0;
    for epoch in 1..=opts.epochs {
        let t0 = Instant::now();
        let lr = opt.lr();
        train_epoch(model, g, opt, train, &mut loader, &mut bufs, opts, epoch)?;
        let (train_loss, train_accuracy) = evaluate(model, g, train, opts.batch_size, opts.mode)?;
        let (val_loss, val_accuracy) = evaluate(model, g, val, opts.batch_size, opts.mode)?;
        let new_lr = opts.scheduler.lr_at(base_lr, epoch);
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
        history.epochs.push(EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        });
        if val_loss < best {
            if let Some(path) = &opts.save_best {
                state_dict::save(model, &g.params, path)?;
                writeln!(
                    out,
                    "Validation loss improved from {best:.5} to {val_loss:.5}: model saved to {}",
                    path.display()
                )
                .map_err(out_err)?;
            }
            best = val_loss;
            since_best = 0;
            history.best_epoch = Some(epoch);
        } else {
            since_best += 1;
            if opts.early_stopping.is_some_and(|p| since_best >= p) {
                writeln!(
                    out,
                    "Early stopping at epoch {epoch}: validation loss has not improved for {since_best} epochs (best {best:.5} at epoch {})",
                    history.best_epoch.unwrap_or(0)
                )
                .map_err(out_err)?;
                history.stopped_early = true;
                break;
            }
        }
    }
    history.elapsed_seconds = start.elapsed().as_secs_f64();
    writeln!(out, "{:.2} seconds", history.elapsed_seconds).map_err(out_err)?;
    Ok(history)
}

/// One pass over the training set in training mode.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    model: &mut dyn Module,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    train: &Dataset,
    loader: &mut Loader,
    bufs: &mut StepBuffers,
    opts: &FitOptions,
    epoch: usize,
) -> Result<()> {
    set_training(model, true);
    g.set_grad_enabled(true);
    loader.fill_epoch_indices(train.len, &mut bufs.order);
    let order = std::mem::take(&mut bufs.order);
    let steps = loader.num_batches(train.len);
    let bar = progress_bar(opts.progress, steps as u64, epoch, opts.epochs);
    for (step, range) in loader.batches(train.len).enumerate() {
        let (loss, _) = run_batch(model, g, train, &order[range], opts.mode, bufs)?;
        let value = g.value(loss)[0];
        if !value.is_finite() {
            return Err(Error::NonFinite(format!(
                "training stopped: the loss is {value} at epoch {epoch}, step {} of {steps} (try a lower --lr)",
                step + 1
            )));
        }
        g.params.zero_grad();
        g.backward(loss)?;
        opt.step(&mut g.params);
        if let Some(bar) = &bar {
            bar.inc(1);
            if step % 16 == 0 {
                bar.set_message(format!("loss {value:.4}"));
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    bufs.order = order;
    Ok(())
}

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
