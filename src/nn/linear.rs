//! nn.Linear: y = x W^T + b.

use super::{kaiming_uniform, Forward, Module, ParamMapper};
use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::rng::Rng;
use crate::tensor::Tensor;
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
#[derive(Module)]
pub struct Linear {
    /// W, (out_features, in_features) in PyTorch's layout; stored as W^T
    /// (in_features, out_features) when built with [`LinearConfig::stored_transpose`] (the
    /// layer's own business: [`Linear::torch_weight`] and the state dict give PyTorch's W).
    // saved and loaded in PyTorch's layout through the layer's mapper when stored as W^T
    #[module(mapper = weight_mapper)]
    pub weight: ParamId,
    /// b, (out_features); None when built without bias.
    pub bias: Option<ParamId>,
    /// Size of the input's last dimension.
    #[module(skip)]
    pub in_features: usize,
    /// Size of the output's last dimension.
    #[module(skip)]
    pub out_features: usize,
    /// Flatten an input of more than two dimensions to (N, in_features) first, as the seed's
    /// `forward` does with `nn.Flatten()(X)` before its first Linear: a model file whose first
    /// Linear meets images says so this way (the flatten is a view, no copy). Default false.
    #[module(skip)]
    pub flatten_input: bool,
    /// The weight is stored as W^T ([`LinearConfig::stored_transpose`]); only this layer
    /// reads it, through its mapper ([`ParamMapper::TRANSPOSE`]).
    #[module(skip)]
    stored_transpose: bool,
}

/// nn.Linear's options, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearConfig {
    /// Size of the input's last dimension.
    pub in_features: usize,
    /// Size of the output's last dimension.
    pub out_features: usize,
    /// A learnable bias (out_features). Default true.
    pub bias: bool,
    /// Store the weight as W^T (in_features, out_features), with
    /// the same initial values for the same `rng`. For a layer that reads the model's input:
    /// when a batch is mostly zeros (images) the graph gives it the sparse kernels, which read
    /// rows of W^T that would otherwise be transposed from W every training step (6% of an
    /// epoch of the seed's model at batch 256, 12% at batch 32), and write its weight gradient
    /// row by row; a dense batch's GEMM reads either layout at the same cost. The state dict
    /// still holds PyTorch's (out_features, in_features). Default false.
    pub stored_transpose: bool,
}

impl LinearConfig {
    /// nn.Linear(in_features, out_features)'s options: with a bias, stored as PyTorch does.
    pub fn new(in_features: usize, out_features: usize) -> LinearConfig {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
            stored_transpose: false,
        }
    }
}

impl Linear {
    /// nn.Linear(in_features, out_features), with a bias, initialised from `rng`.
    pub fn new(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        rng: &mut Rng,
    ) -> Result<Linear> {
        Linear::with_config(params, LinearConfig::new(in_features, out_features), rng)
    }

    /// nn.Linear with the options of `config`, initialised from `rng` as PyTorch does.
    pub fn with_config(
        params: &mut ParamStore,
        config: LinearConfig,
        rng: &mut Rng,
    ) -> Result<Linear> {
        let LinearConfig {
            in_features,
            out_features,
            bias,
            stored_transpose,
        } = config;
        super::bad_size::sizes_at_least_one(
            "Linear",
            &[("in_features", in_features), ("out_features", out_features)],
        )?;
        let mut w = kaiming_uniform(&[out_features, in_features], in_features, rng)?;
        if stored_transpose {
            let stored = [in_features, out_features];
            w = Tensor::new(&stored, (ParamMapper::TRANSPOSE.load)(&stored, &w.data))?;
        }
        let weight = params.add(w)?;
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
            flatten_input: false,
            stored_transpose,
        })
    }

    /// Whether the weight is stored as W^T ([`LinearConfig::stored_transpose`]).
    pub fn stores_transpose(&self) -> bool {
        self.stored_transpose
    }

    /// The weight as the state dict holds it: how the layer stores it, and its mapper when
    /// that is not PyTorch's (out_features, in_features).
    fn weight_mapper(&self) -> Option<ParamMapper> {
        self.stored_transpose.then_some(ParamMapper::TRANSPOSE)
    }

    /// W in PyTorch's layout, (out_features, in_features), however the layer stores it.
    pub fn torch_weight(&self, params: &ParamStore) -> Tensor {
        match self.weight_mapper() {
            Some(m) => m.saved(params, self.weight),
            None => Tensor {
                shape: params.shape(self.weight).to_vec(),
                data: params.value(self.weight).to_vec(),
            },
        }
    }

    /// Set W from PyTorch's layout, (out_features, in_features) row-major values.
    pub fn set_torch_weight(&self, params: &mut ParamStore, w: &[f32]) {
        match self.weight_mapper() {
            Some(m) => m.load_into(params, self.weight, w),
            None => params.value_mut(self.weight).copy_from_slice(w),
        }
    }
}

impl Forward for Linear {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let x = if self.flatten_input && g.shape(x).len() > 2 {
            g.flatten(x)?
        } else {
            x
        };
        let (w, b) = (g.param(self.weight), self.bias.map(|b| g.param(b)));
        if self.stored_transpose {
            g.linear_wt(x, w, b)
        } else {
            g.linear(x, w, b)
        }
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let flat;
        let input = if self.flatten_input && input.len() > 2 {
            flat = vec![input[0], input[1..].iter().product()];
            &flat[..]
        } else {
            input
        };
        match input.last() {
            Some(&i) if i == self.in_features => {
                let mut out = input.to_vec();
                *out.last_mut().expect("not empty") = self.out_features;
                Ok(out)
            }
            _ => Err(super::bad_input::bad_input(
                "Linear",
                input,
                &format!("must end in {} features", self.in_features),
            )),
        }
    }
}
