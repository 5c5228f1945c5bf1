//! Modules: layers that hold parameters (as ids into the graph's `ParamStore`) and buffers,
//! know their PyTorch state-dict names, and switch between training and eval mode.
//!
//! A model is any type implementing [`Module`]: a forward pass written in plain Rust on the
//! graph, and its named children in PyTorch's registration order.

mod batch_norm;
mod conv;
pub mod fused;
pub mod hooks;
mod init;
mod layer;
mod linear;
mod simple;

pub use batch_norm::{BatchNorm, BatchNormConfig, BatchNormKind};
pub use conv::{Conv2d, MaxPool2d};
pub use hooks::{call, register_backward_hook, register_forward_hook};
pub use init::kaiming_uniform;
pub use layer::{Layer, Net, Sequential};
pub use linear::Linear;
pub use simple::{Dropout, Flatten, ReLU};

use crate::graph::{Graph, ParamId, Var};
use crate::tensor::Tensor;
use crate::Result;

/// A parameter or buffer of a module, for the state dict.
pub enum StateRef<'a> {
    /// A learnable parameter, in the graph's `ParamStore` (saved in PyTorch's layout).
    Param(ParamId),
    /// A float32 buffer (running_mean, running_var).
    Buffer(&'a mut Tensor),
    /// An int64 scalar buffer (num_batches_tracked).
    Counter(&'a mut i64),
}

/// A layer or model, as nn.Module: a forward pass on the graph, named children, its own
/// parameters and buffers, and a training flag. Only `forward` is required; the defaults
/// describe a module with no children, no state, and no difference between modes.
pub trait Module {
    /// The forward pass: record ops on the graph, return the output.
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var>;

    /// Named sub-modules, in PyTorch's registration order (their names prefix their state).
    fn children(&mut self) -> Vec<(String, &mut dyn Module)> {
        Vec::new()
    }

    /// This module's own parameters and buffers, in PyTorch's order (not its children's).
    fn own_state(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        Vec::new()
    }

    /// Switch this module itself (not its children) between training and eval mode.
    fn set_own_training(&mut self, _training: bool) {}

    /// Whether this module's input should come with its nonzeros (a first Linear built for
    /// images, [`Linear::with_stored_transpose`], whose kernels then read only those). The
    /// training and evaluation loops gather them for a batch only when the model asks; a
    /// container asks when its first module does.
    fn wants_sparse_input(&self) -> bool {
        false
    }

    /// PyTorch's class name, as summaries show it. By default the type's own name without its
    /// module path (`Residual` for `my_crate::Residual`).
    fn type_name(&self) -> &str {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full)
    }

    /// The output shape for an input shape (batch dimension included), so that a summary can
    /// describe the module without running it. The default says it cannot: a layer of your own
    /// implements this to appear in `summary`.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Err(crate::Error::Shape(format!(
            "{} does not tell its output shape for input {input:?} (implement Module::output_shape)",
            self.type_name()
        )))
    }

    /// Every parameter this module holds, itself and below, for a summary's count (the state
    /// dict goes through `own_state` and `children`). Default: none.
    fn summary_params(&self) -> Vec<ParamId> {
        Vec::new()
    }
}

/// Switch a module and all its descendants to training (`true`) or eval (`false`) mode.
pub fn set_training(m: &mut dyn Module, training: bool) {
    m.set_own_training(training);
    for (_, child) in m.children() {
        set_training(child, training);
    }
}

/// Visit every parameter and buffer with its full state-dict name (`b1.0.weight`).
pub fn visit_state(m: &mut dyn Module, prefix: &str, f: &mut dyn FnMut(&str, StateRef<'_>)) {
    for (name, entry) in m.own_state() {
        f(&join(prefix, name), entry);
    }
    for (name, child) in m.children() {
        visit_state(child, &join(prefix, &name), f);
    }
}

/// The ids of a module's parameters, in state-dict order (PyTorch's `model.parameters()`).
pub fn parameters(m: &mut dyn Module) -> Vec<ParamId> {
    let mut ids = Vec::new();
    visit_state(m, "", &mut |_, e| {
        if let StateRef::Param(id) = e {
            ids.push(id);
        }
    });
    ids
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
