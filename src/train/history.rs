//! What a run records per epoch, and its CSV and JSON files.

use crate::io::write_atomic;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// The learning rate used during this epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and both evaluations).
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    /// The epoch (1-based) with the lowest validation loss.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    pub elapsed_seconds: f64,
    /// The run's settings, as given.
    pub config: serde_json::Value,
}

impl History {
    /// The course's four lists: train loss, train accuracy, validation loss, validation accuracy.
    pub fn lists(&self) -> [Vec<f64>; 4] {
        let col = |f: fn(&EpochRecord) -> f64| self.epochs.iter().map(f).collect();
        [
            col(|e| e.train_loss),
            col(|e| e.train_accuracy),
            col(|e| e.val_loss),
            col(|e| e.val_accuracy),
        ]
    }

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

    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_csv().as_bytes())
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a history serialises");
        write_atomic(path, text.as_bytes())
    }
}
