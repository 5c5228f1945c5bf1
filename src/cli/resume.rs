//! `bnlab train --resume OUT`: what a resumed run may change, and training a finished run for
//! more epochs.
//!
//! A resumed run keeps every option it was started with, so that it ends as the uninterrupted
//! run would. Only these may be given with `--resume`:
//! - `--epochs N`: train to N epochs in all. A finished run goes on from its last epoch: the
//!   data order, dropout and optimizer continue their streams, so N epochs this way equal a run
//!   started with `--epochs N` (bit for bit at the same thread count), except for a cosine
//!   schedule, whose period stays the run's first `--epochs` (PyTorch's `CosineAnnealingLR`
//!   past `T_max` rises again, and bnlab's formula does the same). A run that stopped early
//!   has ended: its patience ran out, and it is not trained further.
//! - `--train-csv`/`--test-csv`: where a run's table is now, when it moved (its content must
//!   be the same: the run recorded each table's SHA-256).
//! - The process settings (`--threads`, `--data-dir`, `--quiet`: [`Settings`]), which are not
//!   the run's options: how this process runs, not what it computes. Without `--data-dir`, the
//!   run reads its data from the folder it was started with.
//!
//! Any other option is refused, naming each, rather than accepted and ignored.
//!
//! [`Settings`]: super::args::Settings

use super::args::{SchedulerName, TrainOptions};
use super::run_folder::{CHECKPOINT, LAST};
use bnlab::io::read_safetensors;
use bnlab::{Error, Result};
use std::path::{Path, PathBuf};

/// The key of a run's configuration that records its `--data-dir`.
pub const DATA_DIR: &str = "data_dir";

/// The run's options that `--resume` accepts (clap's argument ids): itself, `--epochs`, and
/// the new place of a table that moved (checked against the SHA-256 the run recorded).
const CHANGEABLE: &[&str] = &["resume", "epochs", "train_csv", "test_csv"];

/// A run's folder as its checkpoint describes it.
pub struct ResumedRun {
    /// The model it trains, as its configuration names it (a preset or a model file's path).
    pub model: String,
    /// Its whole configuration (the model's text among it, for a model file).
    pub config: serde_json::Value,
    /// The options it was started with (its epochs are the ones it trains to).
    pub options: TrainOptions,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Whether early stopping ended it.
    pub stopped_early: bool,
    /// The data folder it was started with (`--data-dir`), if one was given.
    pub data_dir: Option<PathBuf>,
}

/// Read the model, options and progress of the run in `dir` from its checkpoint.
pub fn read_run(dir: &Path) -> Result<ResumedRun> {
    let path = dir.join(CHECKPOINT);
    let file = read_safetensors(&path)?;
    let bad = |m: &str| Error::bad_file(&path, format!("cannot resume: {m}"));
    let state: serde_json::Value = file
        .metadata
        .get("bnlab_checkpoint")
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| bad("not a bnlab checkpoint"))?;
    let config = &state["history"]["config"];
    let model = config["model"]
        .as_str()
        .ok_or_else(|| bad("no model in its configuration"))?
        .to_string();
    let options = serde_json::from_value(config["options"].clone())
        .map_err(|_| bad("no options in its configuration"))?;
    let epochs_done = state["epoch"]
        .as_u64()
        .ok_or_else(|| bad("no epoch count in its state"))? as usize;
    let stopped_early = state["history"]["stopped_early"].as_bool() == Some(true);
    // recorded beside the options; a run from before the process settings were split kept it
    // among them
    let data_dir = [&config[DATA_DIR], &config["options"][DATA_DIR]]
        .into_iter()
        .find_map(|v| v.as_str().map(PathBuf::from));
    Ok(ResumedRun {
        model,
        config: config.clone(),
        options,
        epochs_done,
        stopped_early,
        data_dir,
    })
}

/// Refuse every option given on the command line (`given`: clap's ids) that `--resume` cannot
/// change, naming each.
pub fn check_given(given: &[String]) -> Result<()> {
    let refused: Vec<String> = given
        .iter()
        .filter(|id| !CHANGEABLE.contains(&id.as_str()))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "--resume keeps the options its run was started with and cannot change {} (only --epochs, --train-csv and --test-csv (a table that moved), --threads, --data-dir and --quiet may be given with it)",
        refused.join(", ")
    )))
}

/// What to do with the run: train it (with these options) or nothing (it has finished).
pub enum Plan {
    /// Train with these options (their epochs may be more than the run's first).
    Train(Box<TrainOptions>),
    /// Nothing left to train: the line to print.
    Finished(String),
}

/// Apply `--epochs` (`epochs`, when given) to the run in `dir`.
pub fn plan(dir: &Path, run: &ResumedRun, epochs: Option<usize>) -> Result<Plan> {
    let mut options = run.options.clone();
    let done = run.epochs_done;
    let d = dir.display();
    let epochs_word = |n: usize| if n == 1 { "epoch" } else { "epochs" };
    if let Some(n) = epochs {
        if n < done {
            return Err(Error::Invalid(format!(
                "--epochs {n}: the run in {d} has already trained {done} {}",
                epochs_word(done)
            )));
        }
        if run.stopped_early && n > done {
            return Err(Error::Invalid(format!(
                "--epochs {n}: the run in {d} stopped early after epoch {done} (its validation loss stopped improving) and is not trained further"
            )));
        }
        if n > options.epochs && options.scheduler == SchedulerName::Cosine {
            // the cosine period stays the run's first length
            options.cosine_t_max.get_or_insert(options.epochs);
        }
        options.epochs = n;
    }
    let finished = run.stopped_early || done >= options.epochs;
    // a run killed after its last checkpoint but before its files: write them
    if finished && dir.join(LAST).exists() {
        let how = if run.stopped_early {
            format!("stopped early after epoch {done}")
        } else {
            format!("has finished its {done} {}", epochs_word(done))
        };
        let more = if run.stopped_early {
            String::new()
        } else {
            format!(" (--epochs {} or more trains it further)", done + 1)
        };
        return Ok(Plan::Finished(format!(
            "The run in {d} {how}: nothing to train{more}"
        )));
    }
    Ok(Plan::Train(Box::new(options)))
}
