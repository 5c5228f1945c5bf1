//! Training curves: loss (left) and accuracy (right) per epoch, one colour per run, as a
//! two-panel [`Figure`]. `history.png` of `bnlab train` and `compare.png` of `bnlab compare`.

use super::{Figure, Legend, Panel, Series};
use crate::train::{EpochRecord, History};
use crate::{Error, Result};
use std::path::Path;

/// Width and height of the picture, in pixels.
pub const SIZE: (u32, u32) = (1200, 500);

/// Up to this many epochs every point gets a marker; above it only isolated points do.
const MARKERS_UP_TO: usize = 30;

/// The runs' loss (left) and accuracy (right) per epoch.
///
/// Each run has one colour; its training curve is dashed and lighter with rings, its validation
/// curve solid with dots, and the legend names run and set ("bn train", "bn validation"). NaN
/// and infinite values are left out (the line breaks there).
pub fn figure(runs: &[(&str, &History)]) -> Figure {
    let panel = |title: &str, y: &str, legend: Legend, pick: fn(&EpochRecord) -> (f64, f64)| {
        let mut series = vec![];
        for (i, (name, h)) in runs.iter().enumerate() {
            let label = |set: &str| match name.trim() {
                "" => set.to_string(),
                name => format!("{name} {set}"),
            };
            let markers = h.epochs.len() <= MARKERS_UP_TO;
            let points = |train: bool| {
                h.epochs
                    .iter()
                    .map(|e| {
                        let (t, v) = pick(e);
                        (e.epoch as f64, if train { t } else { v })
                    })
                    .collect()
            };
            series.push(Series {
                label: label("train"),
                points: points(true),
                color: i,
                dashed: true,
                markers,
            });
            series.push(Series {
                label: label("validation"),
                points: points(false),
                color: i,
                dashed: false,
                markers,
            });
        }
        Panel {
            title: title.into(),
            x_label: "epoch".into(),
            y_label: y.into(),
            series,
            legend,
            ..Default::default()
        }
    };
    Figure {
        panels: vec![
            // loss falls and accuracy rises: the legend's first choices are the emptier corners
            panel("Loss per epoch", "loss", Legend::UpperRight, |e| {
                (e.train_loss, e.val_loss)
            }),
            panel("Accuracy per epoch", "accuracy", Legend::LowerRight, |e| {
                (e.train_accuracy, e.val_accuracy)
            }),
        ],
        columns: 2,
        panel_size: (SIZE.0 / 2, SIZE.1),
    }
}

/// Plots the runs' loss and accuracy per epoch (see [`figure`]) into one PNG at `path`,
/// replacing it atomically. It is an error, naming `path`, to give no runs, a run without
/// epochs, or a path that cannot be written.
pub fn write(runs: &[(&str, &History)], path: &Path) -> Result<()> {
    let fail = |msg: String| Error::Invalid(format!("{}: cannot plot: {msg}", path.display()));
    if runs.is_empty() {
        return Err(fail("no runs given".into()));
    }
    if let Some((name, _)) = runs.iter().find(|(_, h)| h.epochs.is_empty()) {
        return Err(fail(format!("the history of run {name:?} has no epochs")));
    }
    figure(runs).write(path).map(|_| ())
}
