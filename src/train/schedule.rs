//! Learning-rate schedulers, stepped once per epoch as the course does, with the closed forms
//! PyTorch documents for StepLR, CosineAnnealingLR and CosineAnnealingWarmRestarts.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// How the learning rate changes from epoch to epoch, from the optimizer's initial rate (base).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scheduler {
    /// A constant learning rate.
    None,
    /// lr = base * gamma^floor(epoch / step_size)
    Step {
        /// Epochs between two decays (0 is taken as 1).
        step_size: usize,
        /// Factor the rate is multiplied by at each decay.
        gamma: f64,
    },
    /// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2
    Cosine {
        /// Epochs from the base rate down to `eta_min` (half a cosine period; 0 is taken as 1).
        t_max: usize,
        /// The lowest rate.
        eta_min: f64,
    },
    /// Cosine annealing restarted after t_0 epochs, the period then multiplied by t_mult:
    /// lr = eta_min + (base - eta_min) (1 + cos(pi t_cur / t_i)) / 2
    CosineRestarts {
        /// Epochs of the first period (0 is taken as 1).
        t_0: usize,
        /// Factor each period's length is multiplied by for the next (0 is taken as 1).
        t_mult: usize,
        /// The rate each period decays towards, before the next restarts at the base rate.
        eta_min: f64,
    },
}

impl Scheduler {
    /// The learning rate after `epoch` scheduler steps (epoch 0 is the base rate).
    pub fn lr_at(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Scheduler::None => base,
            Scheduler::Step { step_size, gamma } => {
                base * gamma.powi((epoch / step_size.max(1)) as i32)
            }
            Scheduler::Cosine { t_max, eta_min } => {
                eta_min
                    + (base - eta_min) * (1.0 + (PI * epoch as f64 / t_max.max(1) as f64).cos())
                        / 2.0
            }
            Scheduler::CosineRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                // find the current period t_i and the position t_cur inside it
                let (mut t_cur, mut t_i) = (epoch, t_0.max(1));
                while t_cur >= t_i {
                    t_cur -= t_i;
                    t_i *= t_mult.max(1);
                }
                eta_min + (base - eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
            }
        }
    }
}
