//! What a run records per epoch, and its CSV and JSON files.

use crate::io::write_atomic;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One epoch's line of the course's output: the losses and accuracies of both sets, evaluated
/// in eval mode after the epoch's training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch's number, from 1.
    pub epoch: usize,
    /// Mean of the per-batch losses over the training set, in eval mode.
    pub train_loss: f64,
    /// Fraction of the training set predicted correctly (0 to 1).
    pub train_accuracy: f64,
    /// Mean of the per-batch losses over the validation set.
    pub val_loss: f64,
    /// Fraction of the validation set predicted correctly (0 to 1).
    pub val_accuracy: f64,
    /// The learning rate used during this epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and both evaluations).
    pub seconds: f64,
}

/// Everything a run records: one record per epoch, the best epoch, how it ended and took, and
/// its settings. `bnlab train` saves it as `history.csv` (the epochs) and `history.json` (all).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The completed epochs, in order.
    pub epochs: Vec<EpochRecord>,
    /// The epoch (1-based) with the lowest validation loss.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended the run before its last epoch.
    pub stopped_early: bool,
    /// Wall-clock seconds of the run (training and evaluations), summed over the sessions of a
    /// resumed run.
    pub elapsed_seconds: f64,
    /// The run's settings, as given.
    pub config: serde_json::Value,
}

impl History {
    /// The course's four lists: train loss, train accuracy, validation loss, validation accuracy.
    pub fn lists(&self) -> [Vec<f64>; 4] {
        [
            self.train_losses(),
            self.train_accuracies(),
            self.val_losses(),
            self.val_accuracies(),
        ]
    }

    /// The training loss of every epoch, in order.
    pub fn train_losses(&self) -> Vec<f64> {
        self.column(|e| e.train_loss)
    }

    /// The training accuracy of every epoch, in order.
    pub fn train_accuracies(&self) -> Vec<f64> {
        self.column(|e| e.train_accuracy)
    }

    /// The validation loss of every epoch, in order.
    pub fn val_losses(&self) -> Vec<f64> {
        self.column(|e| e.val_loss)
    }

    /// The validation accuracy of every epoch, in order.
    pub fn val_accuracies(&self) -> Vec<f64> {
        self.column(|e| e.val_accuracy)
    }

    fn column(&self, field: fn(&EpochRecord) -> f64) -> Vec<f64> {
        self.epochs.iter().map(field).collect()
    }

    /// The epochs as CSV: a header line, then one line per epoch with the fields of
    /// [`EpochRecord`] in order.
    pub fn to_csv(&self) -> String {
        let mut s =
            String::from("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
        for e in &self.epochs {
            s += &format!(
                "{},{},{},{},{},{},{}\n",
                e.epoch,
                e.train_loss,
                e.train_accuracy,
                e.val_loss,
                e.val_accuracy,
                e.lr,
                e.seconds
            );
        }
        s
    }

    /// Write [`History::to_csv`] to `path`, atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_csv().as_bytes())
    }

    /// Write the whole history as pretty-printed JSON to `path`, atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a history serialises");
        write_atomic(path, text.as_bytes())
    }
}
