//! Optimizers with PyTorch's update rules. Each updates the parameters it was given from their
//! gradients; a parameter without a gradient since `zero_grad` is skipped, as in torch.optim.

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::graph::ParamStore;

pub trait Optimizer {
    /// One update of every parameter that has a gradient.
    fn step(&mut self, params: &mut ParamStore);
    fn lr(&self) -> f64;
    /// Change the learning rate (what an LR scheduler does).
    fn set_lr(&mut self, lr: f64);
    /// The optimizer's state (moments, step counts) as named tensors, for checkpoints.
    fn state(&self) -> Vec<(String, Vec<f32>)>;
    /// Restore what `state` gave.
    fn load_state(&mut self, state: &[(String, Vec<f32>)]) -> crate::Result<()>;
}

/// Restore a list of buffers by name from saved state, checking names and lengths.
fn restore(
    bufs: &mut [&mut Vec<f32>],
    names: &[String],
    state: &[(String, Vec<f32>)],
) -> crate::Result<()> {
    use crate::Error;
    if state.len() != bufs.len() {
        return Err(Error::Invalid(format!(
            "optimizer state has {} tensors, this optimizer needs {}",
            state.len(),
            bufs.len()
        )));
    }
    for ((buf, name), (k, v)) in bufs.iter_mut().zip(names).zip(state) {
        if k != name || (!buf.is_empty() && buf.len() != v.len()) {
            return Err(Error::Invalid(format!(
                "optimizer state: expected '{name}', found '{k}' ({} values)",
                v.len()
            )));
        }
        buf.clone_from(v);
    }
    Ok(())
}
