//! Training for a number of steps rather than epochs, with a look at the model every so many
//! steps: the BatchNorm paper counts its training in steps (50,000 of batch 60), and the
//! experiments compare runs on the same budget of examples.

use crate::data::{Dataset, Loader};
use crate::graph::Graph;
use crate::nn::{set_training, Net};
use crate::optim::Optimizer;
use crate::train::{train_step, Mode, StepBuffers};
use crate::Result;

/// How a run of steps ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ended {
    /// Every step ran with a finite loss.
    Completed,
    /// The loss was not finite at this step (from 1): the run diverged and stopped there.
    Diverged {
        /// The first step whose loss was NaN or infinite.
        step: usize,
    },
}

impl Ended {
    /// The step at which the run diverged, if it did.
    pub fn diverged_at(self) -> Option<usize> {
        match self {
            Ended::Diverged { step } => Some(step),
            Ended::Completed => None,
        }
    }
}

/// Train `net` for `steps` steps of `batch_size` examples drawn from `train` (reshuffled every
/// pass, the last partial batch dropped so that every batch has the same size: BatchNorm in
/// training mode needs at least two examples), calling `look(step, net, g)` after every
/// `every`-th step. A non-finite loss ends the run as [`Ended::Diverged`], not as an error.
#[allow(clippy::too_many_arguments)]
pub fn train_steps(
    net: &mut Net,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    train: &Dataset,
    batch_size: usize,
    steps: usize,
    seed: u64,
    every: usize,
    mut look: impl FnMut(usize, &mut Net, &mut Graph) -> Result<()>,
) -> Result<Ended> {
    let mut loader = Loader::new(batch_size, true, true, seed)?;
    let per_pass = loader.num_batches(train.len);
    if per_pass == 0 {
        return Err(crate::Error::Invalid(format!(
            "a batch of {batch_size} needs at least that many training examples (have {})",
            train.len
        )));
    }
    let mut bufs = StepBuffers::default();
    let mut order = vec![];
    let mut step = 0;
    while step < steps {
        loader.fill_epoch_indices(train.len, &mut order);
        let ended = crate::runtime::with_workers_awake(|| -> Result<Option<Ended>> {
            set_training(net, true);
            g.set_grad_enabled(true);
            for range in loader.batches(train.len) {
                if step == steps {
                    break;
                }
                step += 1;
                let loss = train_step(net, g, opt, train, &order[range], Mode::Multi, &mut bufs)?;
                if !loss.is_finite() {
                    return Ok(Some(Ended::Diverged { step }));
                }
                if every > 0 && step % every == 0 {
                    look(step, net, g)?;
                    set_training(net, true);
                    g.set_grad_enabled(true);
                }
            }
            Ok(None)
        })?;
        if let Some(e) = ended {
            return Ok(e);
        }
    }
    Ok(Ended::Completed)
}
