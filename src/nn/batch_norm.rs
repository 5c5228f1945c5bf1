//! nn.BatchNorm1d and nn.BatchNorm2d, with every option PyTorch has and its exact semantics.

use super::{Forward, Module};
use crate::graph::{BnStats, Graph, ParamId, ParamStore, Var};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The start of the error a BatchNorm gives in training on one value per channel (a batch of
/// one example, for BatchNorm1d), in PyTorch's words: callers recognise it to name the batch.
pub const ONE_VALUE_PER_CHANNEL: &str = "Expected more than 1 value per channel";

/// Which PyTorch class this is: it fixes the input ranks accepted and the summary's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchNormKind {
    /// Inputs (N, C) or (N, C, L).
    OneD,
    /// Inputs (N, C, H, W).
    TwoD,
}

impl BatchNormKind {
    /// PyTorch's class name: `BatchNorm1d` or `BatchNorm2d`.
    pub fn type_name(self) -> &'static str {
        match self {
            BatchNormKind::OneD => "BatchNorm1d",
            BatchNormKind::TwoD => "BatchNorm2d",
        }
    }
}

/// BatchNorm's options, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root. Default 1e-5.
    pub eps: f32,
    /// Weight of the new batch in the running statistics; `None` for a cumulative average
    /// (factor 1 / num_batches_tracked). Default Some(0.1).
    pub momentum: Option<f32>,
    /// Learnable per-channel weight (init 1) and bias (init 0). Default true.
    pub affine: bool,
    /// Keep running statistics for eval mode; without them every mode uses batch statistics.
    /// Default true.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

/// Batch normalisation over channel dimension 1.
///
/// Training: y = (x - mean) / sqrt(var_biased + eps) * weight + bias, statistics per channel over
/// every other axis; then running_mean = (1 - m) running_mean + m mean and
/// running_var = (1 - m) running_var + m var_unbiased, num_batches_tracked += 1.
/// Eval: the same with the running statistics.
///
/// # Shapes
///
/// - input: (N, C) or (N, C, L) for BatchNorm1d ([`BatchNormKind::OneD`]), (N, C, H, W) for
///   BatchNorm2d ([`BatchNormKind::TwoD`]), with C = `num_features`. Wherever batch
///   statistics are used (training, or without `track_running_stats`), more than one value
///   per channel: N > 1 for (N, C), N * L > 1, N * H * W > 1.
/// - output: the input's shape.
#[derive(Module)]
#[module(type_name = BatchNorm::type_name)]
pub struct BatchNorm {
    /// BatchNorm1d or BatchNorm2d: which input ranks are accepted, and the name in summaries.
    #[module(skip)]
    pub kind: BatchNormKind,
    /// C, the number of channels (dimension 1 of the input).
    #[module(skip)]
    pub num_features: usize,
    /// The options the layer was built with.
    #[module(skip)]
    pub config: BatchNormConfig,
    /// The learnable per-channel scale, (C), initialised to 1; None without `affine`.
    pub weight: Option<ParamId>,
    /// The learnable per-channel shift, (C), initialised to 0; None without `affine`.
    pub bias: Option<ParamId>,
    /// (C): the running mean of the batch means, initialised to 0, used in eval mode. Updated
    /// and in the state dict only with `track_running_stats`.
    #[module(buffer, when = tracks_running_stats)]
    pub running_mean: Tensor,
    /// (C): the running mean of the unbiased batch variances, initialised to 1, used in eval
    /// mode. Updated and in the state dict only with `track_running_stats`.
    #[module(buffer, when = tracks_running_stats)]
    pub running_var: Tensor,
    /// Training batches that updated the running statistics; with `momentum` None, the new
    /// batch's weight is 1 / num_batches_tracked. An int64 scalar in the state dict.
    #[module(counter, when = tracks_running_stats)]
    pub num_batches_tracked: i64,
    #[module(skip)]
    training: bool,
}

impl BatchNorm {
    /// A BatchNorm of `kind` over `num_features` channels with `config`, in training mode:
    /// weight 1 and bias 0 (with `affine`), running mean 0 and running variance 1.
    pub fn with_config(
        params: &mut ParamStore,
        kind: BatchNormKind,
        num_features: usize,
        config: BatchNormConfig,
    ) -> Result<BatchNorm> {
        super::bad_size::sizes_at_least_one(kind.type_name(), &[("num_features", num_features)])?;
        let (weight, bias) = if config.affine {
            (
                Some(params.add(Tensor::full(&[num_features], 1.0))?),
                Some(params.add(Tensor::zeros(&[num_features]))?),
            )
        } else {
            (None, None)
        };
        Ok(BatchNorm {
            kind,
            num_features,
            config,
            weight,
            bias,
            running_mean: Tensor::zeros(&[num_features]),
            running_var: Tensor::full(&[num_features], 1.0),
            num_batches_tracked: 0,
            training: true,
        })
    }

    /// nn.BatchNorm1d(num_features) with default options.
    pub fn d1(params: &mut ParamStore, num_features: usize) -> Result<BatchNorm> {
        BatchNorm::with_config(
            params,
            BatchNormKind::OneD,
            num_features,
            BatchNormConfig::default(),
        )
    }

    /// nn.BatchNorm2d(num_features) with default options.
    pub fn d2(params: &mut ParamStore, num_features: usize) -> Result<BatchNorm> {
        BatchNorm::with_config(
            params,
            BatchNormKind::TwoD,
            num_features,
            BatchNormConfig::default(),
        )
    }

    /// PyTorch's class name: `BatchNorm1d` or `BatchNorm2d`.
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// Whether the running statistics are kept, and so in the state dict (PyTorch registers
    /// them as `None` otherwise).
    pub fn tracks_running_stats(&self) -> bool {
        self.config.track_running_stats
    }

    /// PyTorch's input checks: the rank for the class, and C = num_features.
    pub fn check_input(&self, shape: &[usize]) -> Result<()> {
        let ok_rank = match self.kind {
            BatchNormKind::OneD => shape.len() == 2 || shape.len() == 3,
            BatchNormKind::TwoD => shape.len() == 4,
        };
        if !ok_rank {
            let want = match self.kind {
                BatchNormKind::OneD => "2D or 3D",
                BatchNormKind::TwoD => "4D",
            };
            return Err(Error::Shape(format!(
                "{}: expected {want} input (got {}D input of shape {shape:?})",
                self.type_name(),
                shape.len()
            )));
        }
        if shape[1] != self.num_features {
            return Err(Error::Shape(format!(
                "{}({}): input {shape:?} has {} channels",
                self.type_name(),
                self.num_features,
                shape[1]
            )));
        }
        Ok(())
    }
}

impl BatchNorm {
    /// The layer's logic around `op`, which applies BatchNorm (and whatever is fused with it)
    /// given weight, bias and statistics; `shape` is the BatchNorm's input shape.
    pub(super) fn forward_with(
        &mut self,
        g: &mut Graph,
        shape: &[usize],
        op: impl FnOnce(&mut Graph, Option<Var>, Option<Var>, BnStats) -> Result<Var>,
    ) -> Result<Var> {
        self.check_input(shape)?;
        let cfg = self.config;
        let (w, b) = (
            self.weight.map(|p| g.param(p)),
            self.bias.map(|p| g.param(p)),
        );
        // PyTorch: batch statistics in training, or whenever there are no running statistics
        let use_batch = self.training || !cfg.track_running_stats;
        if !use_batch {
            let stats = BnStats::Running {
                mean: &self.running_mean.data,
                var: &self.running_var.data,
                eps: cfg.eps,
            };
            return op(g, w, b, stats);
        }
        let per_channel: usize = shape[0] * shape[2..].iter().product::<usize>();
        if per_channel <= 1 {
            return Err(Error::Shape(format!(
                "{} when training, got input size {shape:?}",
                ONE_VALUE_PER_CHANNEL
            )));
        }
        let y = op(g, w, b, BnStats::Batch { eps: cfg.eps })?;
        if self.training && cfg.track_running_stats {
            self.num_batches_tracked += 1;
            let m = cfg
                .momentum
                .unwrap_or(1.0 / self.num_batches_tracked as f32);
            let (mean, var) = g.batch_stats(y).expect("a batch_norm node has statistics");
            let unbias = per_channel as f32 / (per_channel - 1) as f32;
            for (r, &v) in self.running_mean.data.iter_mut().zip(mean) {
                *r = (1.0 - m) * *r + m * v;
            }
            for (r, &v) in self.running_var.data.iter_mut().zip(var) {
                *r = (1.0 - m) * *r + m * v * unbias;
            }
        }
        Ok(y)
    }
}

impl Forward for BatchNorm {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let shape = g.shape(x).to_vec();
        self.forward_with(g, &shape, |g, w, b, stats| g.batch_norm(x, w, b, stats))
    }

    fn set_own_training(&mut self, training: bool) {
        self.training = training;
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.check_input(input).map(|_| input.to_vec())
    }
}
