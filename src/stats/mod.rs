//! Activation statistics while training (`bnlab train --stats`): what a BatchNorm layer sees
//! and gives, step by step, read through the library's hooks. See [`StatsRecorder`].

pub mod describe;
pub mod figure;
mod layers;
mod observer;
mod probe;
mod recorder;
mod row;

pub use describe::{quantile, Distribution};
pub use layers::{norm_layers, running_stats, NormLayer, NORM_TYPES};
pub use probe::{eval_input_moments, eval_input_values};
pub use recorder::{StatsOptions, StatsRecorder};
pub use row::{csv_header, read_csv, to_csv, write_csv, StatsRow};
