//! One training step, the same for `fit` and for the experiments' runs of steps: forward, the
//! finite check, zero_grad, backward, the optimizer's update. One function keeps the two
//! bit for bit alike.

use super::evaluate::{run_batch, Mode, StepBuffers};
use crate::data::Dataset;
use crate::graph::Graph;
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::Result;

/// Train `model` on the examples `indices` of `ds` (training mode and gradients are the
/// caller's to set): the batch's loss, then, when it is finite, the gradients and one update of
/// `opt`. Returns the loss; a NaN or infinite loss leaves the parameters untouched, and what it
/// means (an error, a diverged run) is the caller's to say.
pub fn train_step(
    model: &mut dyn Module,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
    ds: &Dataset,
    indices: &[u32],
    mode: Mode,
    bufs: &mut StepBuffers,
) -> Result<f32> {
    let (loss, _) = run_batch(model, g, ds, indices, mode, bufs)?;
    let value = g.value(loss)[0];
    if value.is_finite() {
        g.params.zero_grad();
        g.backward(loss)?;
        opt.step(&mut g.params);
    }
    Ok(value)
}
