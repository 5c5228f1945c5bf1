//! Training: the course's `fit`, evaluation, learning-rate schedules and the run's history.

mod evaluate;
mod fit;
mod history;
mod schedule;

pub use evaluate::{argmax, evaluate, run_batch, Mode, StepBuffers};
pub use fit::{fit, FitOptions};
pub use history::{EpochRecord, History};
pub use schedule::Scheduler;
