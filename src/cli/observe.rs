//! `--stats` and `--tensorboard` as one observer of a `bnlab train` run: the statistics
//! recorder on stats steps, its rows written to OUT/stats.csv at every checkpoint (so an
//! interrupted run keeps what it recorded) and drawn as OUT/stats.png at the end, and TensorBoard's event file:
//! scalars per epoch (step = the epoch), histograms per stats step (step = the training step).

use super::args::WatchOptions;
use super::run_folder::{STATS_CSV, STATS_PNG};
use bnlab::nn::Module;
use bnlab::stats::{StatsOptions, StatsRecorder};
use bnlab::tensorboard::EventWriter;
use bnlab::train::{EpochRecord, Observer};
use bnlab::{Error, Graph, Result};
use std::path::{Path, PathBuf};

/// Refuse --stats-every and --unit without anything to record, and a zero --stats-every.
pub fn validate(w: &WatchOptions) -> Result<()> {
    if !w.any() {
        for (given, flag) in [
            (w.stats_every.is_some(), "--stats-every"),
            (w.unit.is_some(), "--unit"),
        ] {
            if given {
                return Err(Error::Invalid(format!(
                    "{flag} needs --stats or --tensorboard (it says what they record)"
                )));
            }
        }
    }
    if w.stats_every == Some(0) {
        return Err(Error::Invalid("--stats-every must be at least 1".into()));
    }
    Ok(())
}

/// Draw `stats.png` from the run's `stats.csv` (after the run has finished).
pub fn write_figure(w: &WatchOptions, dir: &Path) -> Result<()> {
    if !w.stats {
        return Ok(());
    }
    let rows = bnlab::stats::read_csv(&dir.join(STATS_CSV))?;
    if rows.is_empty() {
        return Ok(());
    }
    bnlab::stats::figure::write(&rows, w.unit.unwrap_or(0), &dir.join(STATS_PNG))
}

/// The statistics recorder `w` asks for on `model`: an error (naming --stats) for a model
/// with nothing to watch. `bnlab train` asks once before it claims a folder, so that such a
/// run leaves nothing behind.
pub fn recorder_for(w: &WatchOptions, model: &dyn Module) -> Result<StatsRecorder> {
    let options = StatsOptions {
        every: w.every(),
        unit: w.unit.unwrap_or(0),
        keep_values: w.tensorboard.is_some(),
    };
    StatsRecorder::new(model, options).map_err(|e| match e {
        Error::Invalid(m) => {
            Error::Invalid(format!("--stats: {}", m.trim_start_matches("statistics: ")))
        }
        e => e,
    })
}

/// The observer of a run that watches something.
pub struct RunObserver {
    recorder: StatsRecorder,
    /// Where stats.csv and stats.png go; None with --tensorboard alone.
    stats_dir: Option<PathBuf>,
    tensorboard: Option<EventWriter>,
}

impl RunObserver {
    /// The observer for `model` trained into `dir`, or None when nothing is watched. A resumed
    /// run (`resumed_at`: the checkpoint's step) continues the rows of its stats.csv.
    pub fn new(
        w: &WatchOptions,
        model: &dyn Module,
        dir: &Path,
        resumed_at: Option<u64>,
    ) -> Result<Option<RunObserver>> {
        if !w.any() {
            return Ok(None);
        }
        let mut recorder = recorder_for(w, model)?;
        let csv = dir.join(STATS_CSV);
        if let (Some(step), true, true) = (resumed_at, w.stats, csv.exists()) {
            recorder.continue_from(bnlab::stats::read_csv(&csv)?, step);
        }
        let tensorboard = w
            .tensorboard
            .as_deref()
            .map(EventWriter::create)
            .transpose()?;
        Ok(Some(RunObserver {
            recorder,
            stats_dir: w.stats.then(|| dir.to_path_buf()),
            tensorboard,
        }))
    }
}

impl Observer for RunObserver {
    fn before_step(
        &mut self,
        g: &mut Graph,
        model: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> Result<()> {
        self.recorder.before_step(g, model, step, epoch)
    }

    fn after_step(
        &mut self,
        g: &mut Graph,
        model: &dyn Module,
        step: u64,
        epoch: usize,
    ) -> Result<()> {
        let stats_step = self.recorder.is_stats_step(step);
        self.recorder.after_step(g, model, step, epoch)?;
        let Some(tb) = &mut self.tensorboard else {
            return Ok(());
        };
        if stats_step {
            // the normalisation layers' inputs and outputs of this step, then every parameter
            for (tag, values) in self.recorder.last_values() {
                tb.add_histogram(&format!("activations/{tag}"), step as i64, values)?;
            }
            // the parameters as they are in the store (a histogram does not care about W's
            // layout), without copying them into a state dict; buffers are not parameters
            let mut written = Ok(());
            bnlab::nn::visit_state(model, "", &mut |name, entry| {
                if let (Some(id), Ok(())) = (entry.param(), &written) {
                    let tag = format!("parameters/{name}");
                    written = tb.add_histogram(&tag, step as i64, g.params.value(id));
                }
            });
            written?;
        }
        Ok(())
    }

    fn after_epoch(&mut self, _g: &Graph, _model: &dyn Module, r: &EpochRecord) -> Result<()> {
        if let Some(tb) = &mut self.tensorboard {
            let step = r.epoch as i64;
            for (tag, v) in [
                ("loss/train", r.train_loss),
                ("loss/validation", r.val_loss),
                ("accuracy/train", r.train_accuracy),
                ("accuracy/validation", r.val_accuracy),
                ("learning_rate", r.lr),
            ] {
                tb.add_scalar(tag, step, v)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(dir) = &self.stats_dir {
            // the figure is drawn once, at the end (`write_figure`): drawn at every epoch it
            // cost 5% of an epoch of the seed's model
            bnlab::stats::write_csv(self.recorder.rows(), &dir.join(STATS_CSV))?;
        }
        if let Some(tb) = &mut self.tensorboard {
            tb.flush()?;
        }
        Ok(())
    }
}
