//! Optimizers with PyTorch's update rules. Each updates the parameters it was given from their
//! gradients; a parameter without a gradient since `zero_grad` is skipped, as in torch.optim.

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::graph::{ParamId, ParamStore};

/// What training needs of an optimizer: a step from the gradients, the learning rate (for
/// schedulers), and its state (for checkpoints).
pub trait Optimizer {
    /// One update of every parameter that has a gradient.
    fn step(&mut self, params: &mut ParamStore);
    /// The learning rate the next step uses.
    fn lr(&self) -> f64;
    /// Change the learning rate (what an LR scheduler does).
    fn set_lr(&mut self, lr: f64);
    /// The optimizer's state (moments, step counts) as named tensors, for checkpoints. Each
    /// per-parameter buffer is laid out as its parameter is stored: the updates are
    /// elementwise, so the optimizer does not care how a layer lays a weight out (a model
    /// built the same way reads its checkpoint back). `params` is the store the parameters
    /// live in, for optimizers whose state depends on them (the built-in ones' does not).
    fn state(&self, params: &ParamStore) -> Vec<(String, Vec<f32>)>;
    /// Restore what `state` gave, all or nothing: the names must be this optimizer's, and a
    /// per-parameter buffer must be empty (not started) or as long as its parameter.
    fn load_state(
        &mut self,
        state: &[(String, Vec<f32>)],
        params: &ParamStore,
    ) -> crate::Result<()>;
}

/// A saved per-parameter buffer `name` (empty: not started), checked against its parameter.
fn import(params: &ParamStore, id: ParamId, name: &str, saved: &[f32]) -> crate::Result<Vec<f32>> {
    let want = params.value(id).len();
    if !saved.is_empty() && saved.len() != want {
        return Err(crate::Error::Invalid(format!(
            "optimizer state: '{name}' has {} values, its parameter has {want}",
            saved.len()
        )));
    }
    Ok(saved.to_vec())
}

/// Restore a list of buffers by name from saved state, each through `convert` (buffer index,
/// name, saved values), replacing them all, or none when the state does not fit (wrong count
/// or names, or a buffer `convert` rejects).
fn restore(
    bufs: &mut [&mut Vec<f32>],
    names: &[String],
    state: &[(String, Vec<f32>)],
    convert: impl Fn(usize, &str, &[f32]) -> crate::Result<Vec<f32>>,
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
    let converted = state
        .iter()
        .enumerate()
        .map(|(i, (name, v))| convert(i, name, v))
        .collect::<crate::Result<Vec<_>>>()?;
    for (buf, v) in bufs.iter_mut().zip(converted) {
        **buf = v;
    }
    Ok(())
}
