//! nn.Linear: y = x W^T + b.

use super::{kaiming_uniform, Module, StateRef};
use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::rng::Rng;
use crate::Result;

/// A fully connected layer.
///
/// Shapes: input (*, in_features), weight (out_features, in_features), bias (out_features),
/// output (*, out_features). Initialised as PyTorch does: weight and bias U(-1/sqrt(in), 1/sqrt(in)).
pub struct Linear {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
    pub in_features: usize,
    pub out_features: usize,
}

impl Linear {
    pub fn new(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        rng: &mut Rng,
    ) -> Result<Linear> {
        Linear::with_bias(params, in_features, out_features, true, rng)
    }

    pub fn with_bias(
        params: &mut ParamStore,
        in_features: usize,
        out_features: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Linear> {
        let weight = params.add(kaiming_uniform(
            &[out_features, in_features],
            in_features,
            rng,
        )?)?;
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
        })
    }
}

impl Module for Linear {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = (g.param(self.weight), self.bias.map(|b| g.param(b)));
        g.linear(x, w, b)
    }

    fn own_state(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        let mut s = vec![("weight", StateRef::Param(self.weight))];
        if let Some(b) = self.bias {
            s.push(("bias", StateRef::Param(b)));
        }
        s
    }
}
