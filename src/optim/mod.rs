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

/// Restore a list of buffers by name from saved state, replacing them all, or none when the
/// state does not fit (wrong count or names).
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
    if let Some((name, (found, _))) = names.iter().zip(state).find(|(name, (k, _))| k != *name) {
        return Err(Error::Invalid(format!(
            "optimizer state: expected '{name}', found '{found}'"
        )));
    }
    for (buf, (_, v)) in bufs.iter_mut().zip(state) {
        buf.clone_from(v);
    }
    Ok(())
}
