//! nn.Linear: y = x W^T + b.

use super::{kaiming_uniform, Module, StateRef};
use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::rng::Rng;
use crate::Result;

/// A fully connected layer: y = x W^T + b.
///
/// Weight (out_features, in_features) and bias (out_features). Initialised as PyTorch does:
/// weight and bias U(-1/sqrt(in), 1/sqrt(in)).
///
/// # Shapes
///
/// - input: (*, in_features), * being any number of leading dimensions (none included), up
///   to six dimensions in all; usually (N, in_features).
/// - output: (*, out_features), the leading dimensions unchanged; usually (N, out_features).
pub struct Linear {
    /// W, (out_features, in_features) in PyTorch's layout; stored as W^T
    /// (in_features, out_features) when built by [`Linear::with_stored_transpose`].
    pub weight: ParamId,
    /// b, (out_features); None when built without bias.
    pub bias: Option<ParamId>,
    /// Size of the input's last dimension.
    pub in_features: usize,
    /// Size of the output's last dimension.
    pub out_features: usize,
    /// Built for a mostly-zero input such as images ([`Linear::with_stored_transpose`]): as a
    /// model's first layer it asks for the batch's nonzeros ([`Module::wants_sparse_input`]).
    pub sparse_input: bool,
}

impl Linear {
    /// nn.Linear(in_features, out_features), with a bias, initialised from `rng`.
    pub fn new(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        rng: &mut Rng,
    ) -> Result<Linear> {
        Linear::with_bias(params, in_features, out_features, true, rng)
    }

    /// nn.Linear(in_features, out_features, bias=bias), initialised from `rng`.
    pub fn with_bias(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Linear> {
        Linear::build(params, in_features, out_features, bias, false, rng)
    }

    /// The same layer, with the same initial values for the same `rng`, but its weight stored
    /// as W^T (in_features, out_features) (`ParamLayout::Transposed`). For a first layer fed by
    /// a mostly-zero input such as images: its sparse kernels read rows of W^T, which would
    /// otherwise be transposed from W every training step (6% of an epoch of the seed's
    /// model at batch 256, 12% at batch 32), and its weight gradient is written row by row.
    /// The state dict still holds PyTorch's (out_features, in_features).
    pub fn with_stored_transpose(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        rng: &mut Rng,
    ) -> Result<Linear> {
        Linear::build(params, in_features, out_features, true, true, rng)
    }

    fn build(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        bias: bool,
        stored_transposed: bool,
        rng: &mut Rng,
    ) -> Result<Linear> {
        let w = kaiming_uniform(&[out_features, in_features], in_features, rng)?;
        let weight = if stored_transposed {
            params.add_transposed(w)?
        } else {
            params.add(w)?
        };
        let bias = if bias {
            Some(params.add(kaiming_uniform(&[out_features], in_features, rng)?)?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            in_features,
            out_features,
            sparse_input: stored_transposed,
        })
    }
}

impl Module for Linear {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = (g.param(self.weight), self.bias.map(|b| g.param(b)));
        g.linear(x, w, b)
    }

    fn wants_sparse_input(&self) -> bool {
        self.sparse_input
    }

    fn own_state(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        let mut s = vec![("weight", StateRef::Param(self.weight))];
        if let Some(b) = self.bias {
            s.push(("bias", StateRef::Param(b)));
        }
        s
    }
}
