//! Modules: layers that hold parameters (as ids into the graph's `ParamStore`) and buffers,
//! know their PyTorch state-dict names, and switch between training and eval mode.
//!
//! A model is any type implementing [`Module`]: a forward pass written in plain Rust on the
//! graph ([`Forward`]), and its named children in PyTorch's registration order, which
//! `#[derive(Module)]` reads from the struct's fields:
//!
//! ```
//! use bnlab::nn::{Forward, Linear, Module, ReLU};
//! use bnlab::{Graph, Result, Rng, Var};
//!
//! #[derive(Module)]
//! struct Mlp {
//!     hidden: Linear, // state dict: hidden.weight, hidden.bias
//!     act: ReLU,
//!     output: Linear, // output.weight, output.bias
//! }
//!
//! impl Forward for Mlp {
//!     fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
//!         let h = self.hidden.forward(g, x)?;
//!         let h = self.act.forward(g, h)?;
//!         self.output.forward(g, h)
//!     }
//! }
//!
//! let (mut g, mut rng) = (Graph::new(0), Rng::seed(0));
//! let mlp = Mlp {
//!     hidden: Linear::new(&mut g.params, 4, 8, &mut rng)?,
//!     act: ReLU,
//!     output: Linear::new(&mut g.params, 8, 2, &mut rng)?,
//! };
//! let names: Vec<String> = bnlab::state_dict::state_dict(&mlp, &g.params)
//!     .into_iter()
//!     .map(|(name, _)| name)
//!     .collect();
//! assert_eq!(names, ["hidden.weight", "hidden.bias", "output.weight", "output.bias"]);
//! # Ok::<(), bnlab::Error>(())
//! ```

mod activation;
mod bad_input;
mod bad_size;
mod batch_norm;
mod conv;
pub mod fused;
pub mod hooks;
mod init;
mod layer;
mod linear;
mod norm;
mod simple;

pub use crate::kernels::activations::GeluApproximate;
pub use activation::{Gelu, Identity, LeakyReLU, Sigmoid, Tanh};
pub use batch_norm::{BatchNorm, BatchNormConfig, BatchNormKind, ONE_VALUE_PER_CHANNEL};
/// `#[derive(Module)]`: a struct's fields as its children and state (see the `bnlab-derive` crate).
pub use bnlab_derive::Module;
pub use conv::{AvgPool2d, Conv2d, Conv2dConfig, MaxPool2d};
pub use hooks::{call, register_backward_hook, register_forward_hook};
pub use init::kaiming_uniform;
pub use layer::{Layer, Net, Sequential};
pub use linear::{Linear, LinearConfig};
pub use norm::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig};
pub use simple::{Dropout, Flatten, ReLU};

use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::tensor::Tensor;
use crate::Result;

/// How a layer keeps a parameter against PyTorch's layout of it: its save and load mappers,
/// as burn's. The layer alone chooses how it stores a parameter (a [`Linear`] built with
/// [`LinearConfig::stored_transpose`] keeps W^T); whoever saves, loads, folds or exports it
/// sees PyTorch's tensor through these, and the optimizer, whose updates are elementwise,
/// does not care.
#[derive(Clone, Copy, Debug)]
pub struct ParamMapper {
    /// PyTorch's shape, from the stored shape.
    pub torch_shape: fn(&[usize]) -> Vec<usize>,
    /// PyTorch's values from the stored values (saving), given the stored shape.
    pub save: fn(&[usize], &[f32]) -> Vec<f32>,
    /// The stored values from PyTorch's values (loading), given the stored shape.
    pub load: fn(&[usize], &[f32]) -> Vec<f32>,
}

impl ParamMapper {
    /// A 2-D parameter stored as the transpose of PyTorch's (rows, cols), as (cols, rows).
    pub const TRANSPOSE: ParamMapper = ParamMapper {
        torch_shape: |stored| stored.iter().rev().copied().collect(),
        // stored (r, c) -> PyTorch's (c, r), and back
        save: |stored, values| transposed(values, stored[0], stored[1]),
        load: |stored, values| transposed(values, stored[1], stored[0]),
    };

    /// PyTorch's tensor of parameter `id`, stored as this mapper says.
    pub fn saved(&self, params: &ParamStore, id: ParamId) -> Tensor {
        let shape = params.shape(id);
        Tensor {
            shape: (self.torch_shape)(shape),
            data: (self.save)(shape, params.value(id)),
        }
    }

    /// Set parameter `id` from PyTorch's values (as many as the parameter holds).
    pub fn load_into(&self, params: &mut ParamStore, id: ParamId, torch: &[f32]) {
        let stored = (self.load)(params.shape(id), torch);
        params.value_mut(id).copy_from_slice(&stored);
    }
}

/// The (cols, rows) transpose of a row-major (rows, cols) matrix.
fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    crate::kernels::sparse_linear::transpose(&mut out, values, rows, cols);
    out
}

/// A parameter or buffer of a module, to change it (loading a state dict).
pub enum StateRef<'a> {
    /// A learnable parameter, in the graph's `ParamStore`, stored as PyTorch stores it.
    Param(ParamId),
    /// A learnable parameter the layer stores its own way (saved and loaded through the
    /// mapper, in PyTorch's layout).
    MappedParam(ParamId, ParamMapper),
    /// A float32 buffer (running_mean, running_var).
    Buffer(&'a mut Tensor),
    /// An int64 scalar buffer (num_batches_tracked).
    Counter(&'a mut i64),
}

/// A parameter or buffer of a module, to read it (saving a state dict, counting parameters).
#[derive(Clone, Copy)]
pub enum StateView<'a> {
    /// A learnable parameter, in the graph's `ParamStore`, stored as PyTorch stores it.
    Param(ParamId),
    /// A learnable parameter the layer stores its own way (saved and loaded through the
    /// mapper, in PyTorch's layout).
    MappedParam(ParamId, ParamMapper),
    /// A float32 buffer (running_mean, running_var).
    Buffer(&'a Tensor),
    /// An int64 scalar buffer (num_batches_tracked).
    Counter(i64),
}

impl StateView<'_> {
    /// The parameter's id, however the layer stores it; None for a buffer.
    pub fn param(&self) -> Option<ParamId> {
        match *self {
            StateView::Param(id) | StateView::MappedParam(id, _) => Some(id),
            _ => None,
        }
    }

    /// The parameter's tensor in PyTorch's layout (through its mapper); None for a buffer.
    pub fn torch_param(&self, params: &ParamStore) -> Option<Tensor> {
        match *self {
            StateView::Param(id) => Some(Tensor {
                shape: params.shape(id).to_vec(),
                data: params.value(id).to_vec(),
            }),
            StateView::MappedParam(id, m) => Some(m.saved(params, id)),
            _ => None,
        }
    }
}

impl StateRef<'_> {
    /// The parameter's id, however the layer stores it; None for a buffer.
    pub fn param(&self) -> Option<ParamId> {
        match *self {
            StateRef::Param(id) | StateRef::MappedParam(id, _) => Some(id),
            _ => None,
        }
    }
}

/// What a layer or model computes: PyTorch's `forward`, and what depends on it. Only `forward`
/// is required.
pub trait Forward {
    /// The forward pass: record ops on the graph, return the output.
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var>;

    /// Switch this module itself (not its children) between training and eval mode.
    fn set_own_training(&mut self, _training: bool) {}

    /// The output shape for an input shape (batch dimension included), so that a summary can
    /// describe the module without running it. The default says it cannot: a layer of your own
    /// implements this to appear in `summary`.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Err(crate::Error::Shape(format!(
            "{} does not tell its output shape for input {input:?} (implement Forward::output_shape)",
            std::any::type_name::<Self>().rsplit("::").next().unwrap_or("module")
        )))
    }

    /// What a container's forward makes of its input before its children run in order, for a
    /// summary that describes it through them: the input itself by default; a model that
    /// flattens its input inline (`Net::flatten_input`) gives the flattened shape.
    fn children_input(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
}

/// A layer or model as nn.Module sees it: a [`Forward`], its named children in PyTorch's
/// registration order, and its own parameters and buffers. `#[derive(Module)]` writes all of
/// it from the struct's fields (see [`derive@Module`]); the defaults describe a module with no
/// children and no state.
pub trait Module: Forward {
    /// Named sub-modules, in PyTorch's registration order (their names prefix their state).
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// The same children as [`Module::children`], to change them.
    fn children_mut(&mut self) -> Vec<(String, &mut dyn Module)> {
        Vec::new()
    }

    /// This module's own parameters and buffers, in PyTorch's order (not its children's).
    fn own_state(&self) -> Vec<(&'static str, StateView<'_>)> {
        Vec::new()
    }

    /// The same state as [`Module::own_state`], to change it.
    fn own_state_mut(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        Vec::new()
    }

    /// PyTorch's class name, as summaries show it. By default the type's own name without its
    /// module path (`Residual` for `my_crate::Residual`).
    fn type_name(&self) -> &str {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full)
    }
}

/// Switch a module and all its descendants to training (`true`) or eval (`false`) mode.
pub fn set_training(m: &mut dyn Module, training: bool) {
    m.set_own_training(training);
    for (_, child) in m.children_mut() {
        set_training(child, training);
    }
}

/// Visit `m` and every module below it, parents first, with its state-dict path (`""` for
/// `m`, `b1.1` for a child's child).
pub fn visit_modules(m: &dyn Module, path: &str, f: &mut dyn FnMut(&str, &dyn Module)) {
    f(path, m);
    for (name, child) in m.children() {
        visit_modules(child, &join(path, &name), f);
    }
}

/// Visit every parameter and buffer with its full state-dict name (`b1.0.weight`).
pub fn visit_state(m: &dyn Module, prefix: &str, f: &mut dyn FnMut(&str, StateView<'_>)) {
    for (name, entry) in m.own_state() {
        f(&join(prefix, name), entry);
    }
    for (name, child) in m.children() {
        visit_state(child, &join(prefix, &name), f);
    }
}

/// Visit every parameter and buffer with its full state-dict name, to change it.
pub fn visit_state_mut(m: &mut dyn Module, prefix: &str, f: &mut dyn FnMut(&str, StateRef<'_>)) {
    for (name, entry) in m.own_state_mut() {
        f(&join(prefix, name), entry);
    }
    for (name, child) in m.children_mut() {
        visit_state_mut(child, &join(prefix, &name), f);
    }
}

/// The ids of a module's parameters, in state-dict order (PyTorch's `model.parameters()`).
pub fn parameters(m: &dyn Module) -> Vec<ParamId> {
    let mut ids = Vec::new();
    visit_state(m, "", &mut |_, e| ids.extend(e.param()));
    ids
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
