//! nn.Conv2d and nn.MaxPool2d.

use super::{kaiming_uniform, Module, StateRef};
use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::rng::Rng;
use crate::Result;

/// A 2-d convolution with square kernels.
///
/// Shapes: input (N, in_channels, H, W), weight (out_channels, in_channels, k, k), bias
/// (out_channels), output (N, out_channels, Ho, Wo), Ho = (H + 2 padding - k) / stride + 1.
/// Initialised as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels k k.
pub struct Conv2d {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        params: &mut ParamStore,
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Conv2d> {
        let fan_in = in_channels * kernel_size * kernel_size;
        let shape = [out_channels, in_channels, kernel_size, kernel_size];
        let weight = params.add(kaiming_uniform(&shape, fan_in, rng)?)?;
        let bias = if bias {
            Some(params.add(kaiming_uniform(&[out_channels], fan_in, rng)?)?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
        })
    }

    /// The output shape for an input shape (N, C, H, W), or None if the input does not fit.
    pub fn output_shape(&self, input: &[usize]) -> Option<Vec<usize>> {
        if input.len() != 4 || input[1] != self.in_channels {
            return None;
        }
        let (h, w) = (input[2] + 2 * self.padding, input[3] + 2 * self.padding);
        if h < self.kernel_size || w < self.kernel_size {
            return None;
        }
        let ho = (h - self.kernel_size) / self.stride + 1;
        let wo = (w - self.kernel_size) / self.stride + 1;
        Some(vec![input[0], self.out_channels, ho, wo])
    }
}

impl Module for Conv2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = (g.param(self.weight), self.bias.map(|b| g.param(b)));
        g.conv2d(x, w, b, self.stride, self.padding)
    }

    fn own_state(&mut self) -> Vec<(&'static str, StateRef<'_>)> {
        let mut s = vec![("weight", StateRef::Param(self.weight))];
        if let Some(b) = self.bias {
            s.push(("bias", StateRef::Param(b)));
        }
        s
    }
}

/// Max pooling over square windows, no padding (stride defaults to the kernel size).
pub struct MaxPool2d {
    pub kernel_size: usize,
    pub stride: usize,
}

impl MaxPool2d {
    pub fn new(kernel_size: usize) -> MaxPool2d {
        MaxPool2d {
            kernel_size,
            stride: kernel_size,
        }
    }

    /// 2 x 2 windows with stride 2, the case the fused ops cover.
    pub fn is_2x2(&self) -> bool {
        self.kernel_size == 2 && self.stride == 2
    }

    pub fn output_shape(&self, input: &[usize]) -> Option<Vec<usize>> {
        use crate::kernels::max_pool2d::out_size;
        if input.len() != 4 {
            return None;
        }
        let (ho, wo) = (
            out_size(input[2], self.kernel_size, self.stride),
            out_size(input[3], self.kernel_size, self.stride),
        );
        (ho > 0 && wo > 0).then(|| vec![input[0], input[1], ho, wo])
    }
}

impl Module for MaxPool2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.max_pool2d(x, self.kernel_size, self.stride)
    }
}
