//! nn.LayerNorm and nn.GroupNorm: normalisation within each sample, so the same in training
//! and eval and at any batch size (batch 1 included), unlike BatchNorm.

use super::{Forward, Module};
use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// nn.LayerNorm's options, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the variance before the square root. Default 1e-5.
    pub eps: f32,
    /// A learnable weight (init 1) over the normalized shape. Default true.
    pub elementwise_affine: bool,
    /// With `elementwise_affine`, a learnable bias (init 0) too. Default true.
    pub bias: bool,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig {
            eps: 1e-5,
            elementwise_affine: true,
            bias: true,
        }
    }
}

/// Layer normalisation over the last dimensions: y = (x - mean) / sqrt(var_biased + eps) *
/// weight + bias, the statistics per sample over the `normalized_shape` values.
///
/// # Shapes
///
/// - input: (*, normalized_shape...), ending in `normalized_shape`.
/// - output: the input's shape.
#[derive(Module)]
pub struct LayerNorm {
    /// The trailing dimensions normalised together.
    #[module(skip)]
    pub normalized_shape: Vec<usize>,
    /// The options it was built with.
    #[module(skip)]
    pub config: LayerNormConfig,
    /// The scale, `normalized_shape`, initialised to 1; None without `elementwise_affine`.
    pub weight: Option<ParamId>,
    /// The shift, `normalized_shape`, initialised to 0; None without a bias.
    pub bias: Option<ParamId>,
}

impl LayerNorm {
    /// nn.LayerNorm(normalized_shape) with `config`.
    pub fn with_config(
        params: &mut ParamStore,
        normalized_shape: &[usize],
        config: LayerNormConfig,
    ) -> Result<LayerNorm> {
        if normalized_shape.is_empty() || normalized_shape.contains(&0) {
            return Err(Error::Invalid(format!(
                "LayerNorm: normalized_shape {normalized_shape:?} must be positive sizes"
            )));
        }
        let affine = config.elementwise_affine;
        let weight = affine
            .then(|| params.add(Tensor::full(normalized_shape, 1.0)))
            .transpose()?;
        let bias = (affine && config.bias)
            .then(|| params.add(Tensor::zeros(normalized_shape)))
            .transpose()?;
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            config,
            weight,
            bias,
        })
    }
}

impl Forward for LayerNorm {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = (
            self.weight.map(|p| g.param(p)),
            self.bias.map(|p| g.param(p)),
        );
        g.layer_norm(x, &self.normalized_shape, w, b, self.config.eps)
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let k = self.normalized_shape.len();
        if input.len() < k || input[input.len() - k..] != self.normalized_shape[..] {
            return Err(super::bad_input::bad_input(
                "LayerNorm",
                input,
                &format!("must end in {:?}", self.normalized_shape),
            ));
        }
        Ok(input.to_vec())
    }
}

/// nn.GroupNorm's options, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormConfig {
    /// Added to the variance before the square root. Default 1e-5.
    pub eps: f32,
    /// A learnable per-channel weight (init 1) and bias (init 0). Default true.
    pub affine: bool,
    /// With `affine`, the bias too (PyTorch 2.15's `bias`). Default true.
    pub bias: bool,
}

impl Default for GroupNormConfig {
    fn default() -> Self {
        GroupNormConfig {
            eps: 1e-5,
            affine: true,
            bias: true,
        }
    }
}

/// Group normalisation (Wu and He 2018): the C channels in `num_groups` groups of consecutive
/// channels, each group normalised per sample over its channels and every position, then a
/// per-channel weight and bias.
///
/// # Shapes
///
/// - input: (N, C, *), C = `num_channels`.
/// - output: the input's shape.
#[derive(Module)]
pub struct GroupNorm {
    /// Groups the channels are split into; divides `num_channels`.
    #[module(skip)]
    pub num_groups: usize,
    /// C, the channels of the input (its dimension 1).
    #[module(skip)]
    pub num_channels: usize,
    /// The options it was built with.
    #[module(skip)]
    pub config: GroupNormConfig,
    /// The per-channel scale (C), initialised to 1; None without `affine`.
    pub weight: Option<ParamId>,
    /// The per-channel shift (C), initialised to 0; None without `affine` or `bias`.
    pub bias: Option<ParamId>,
}

impl GroupNorm {
    /// nn.GroupNorm(num_groups, num_channels) with `config`; PyTorch's error unless the groups
    /// divide the channels.
    pub fn with_config(
        params: &mut ParamStore,
        num_groups: usize,
        num_channels: usize,
        config: GroupNormConfig,
    ) -> Result<GroupNorm> {
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(Error::Invalid(format!(
                "GroupNorm: num_channels must be divisible by num_groups (got {num_channels} \
                 channels in {num_groups} groups)"
            )));
        }
        let weight = config
            .affine
            .then(|| params.add(Tensor::full(&[num_channels], 1.0)))
            .transpose()?;
        let bias = (config.affine && config.bias)
            .then(|| params.add(Tensor::zeros(&[num_channels])))
            .transpose()?;
        Ok(GroupNorm {
            num_groups,
            num_channels,
            config,
            weight,
            bias,
        })
    }
}

impl Forward for GroupNorm {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let shape = g.shape(x).to_vec();
        self.output_shape(&shape)?;
        let (w, b) = (
            self.weight.map(|p| g.param(p)),
            self.bias.map(|p| g.param(p)),
        );
        g.group_norm(x, self.num_groups, w, b, self.config.eps)
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        if input.len() < 2 || input[1] != self.num_channels {
            return Err(super::bad_input::bad_input(
                "GroupNorm",
                input,
                &format!("must be (N, {}, *)", self.num_channels),
            ));
        }
        Ok(input.to_vec())
    }
}
