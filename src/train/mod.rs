//! Training: the course's `fit`, evaluation, learning-rate schedules and the run's history.

mod checkpoint;
mod evaluate;
mod fit;
mod history;
mod learner;
mod observer;
mod schedule;
mod seed;
mod step;

pub use checkpoint::{load_checkpoint, save_checkpoint, TrainState};
pub use evaluate::{argmax, evaluate, evaluate_with, run_batch, LossMean, Mode, StepBuffers};
pub use fit::{fit, fit_resumable, FitOptions, RunControl, StepHook};
pub use history::{EpochRecord, History};
pub use learner::Learner;
pub use observer::Observer;
pub use schedule::Scheduler;
pub use seed::seeded;
pub use step::train_step;
