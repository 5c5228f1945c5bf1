//! nn.Conv2d and nn.MaxPool2d.

use super::{kaiming_uniform, Forward, Module};
use crate::graph::{Graph, ParamId, ParamStore, Var};
use crate::rng::Rng;
use crate::Result;

/// A 2-d convolution with square kernels.
///
/// Weight (out_channels, in_channels, k, k) and bias (out_channels), k = `kernel_size`.
/// Initialised as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels k k.
///
/// # Shapes
///
/// - input: (N, in_channels, H, W), with H + 2 padding >= k and W + 2 padding >= k.
/// - output: (N, out_channels, Ho, Wo), Ho = (H + 2 padding - k) / stride + 1 and
///   Wo = (W + 2 padding - k) / stride + 1, rounded down.
#[derive(Module)]
pub struct Conv2d {
    /// The filters, (out_channels, in_channels, kernel_size, kernel_size).
    pub weight: ParamId,
    /// One value per output channel, (out_channels); None when built without bias.
    pub bias: Option<ParamId>,
    /// Channels of the input (its dimension 1).
    #[module(skip)]
    pub in_channels: usize,
    /// Channels of the output: the number of filters.
    #[module(skip)]
    pub out_channels: usize,
    /// Height and width of each filter, k.
    #[module(skip)]
    pub kernel_size: usize,
    /// Step between windows, along both height and width (at least 1).
    #[module(skip)]
    pub stride: usize,
    /// Zeros added on each side of the input, along both height and width.
    #[module(skip)]
    pub padding: usize,
}

/// nn.Conv2d's options, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Channels of the input (its dimension 1).
    pub in_channels: usize,
    /// Channels of the output: the number of filters.
    pub out_channels: usize,
    /// Height and width of each filter, k.
    pub kernel_size: usize,
    /// Step between windows, along both height and width (at least 1). Default 1.
    pub stride: usize,
    /// Zeros added on each side of the input, along both height and width. Default 0.
    pub padding: usize,
    /// A learnable bias (out_channels). Default true.
    pub bias: bool,
}

impl Conv2dConfig {
    /// nn.Conv2d(in_channels, out_channels, kernel_size)'s options: stride 1, no padding, a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Conv2dConfig {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size,
            stride: 1,
            padding: 0,
            bias: true,
        }
    }
}

impl Conv2d {
    /// nn.Conv2d(in_channels, out_channels, kernel_size): stride 1, no padding, with a bias,
    /// initialised from `rng` as PyTorch does.
    pub fn new(
        params: &mut ParamStore,
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        rng: &mut Rng,
    ) -> Result<Conv2d> {
        let config = Conv2dConfig::new(in_channels, out_channels, kernel_size);
        Conv2d::with_config(params, config, rng)
    }

    /// nn.Conv2d with the options of `config`, its weight (and bias) drawn from `rng` as
    /// PyTorch initialises them. A stride of 0 fails at the forward, as in PyTorch.
    pub fn with_config(
        params: &mut ParamStore,
        config: Conv2dConfig,
        rng: &mut Rng,
    ) -> Result<Conv2d> {
        let Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            bias,
        } = config;
        super::bad_size::sizes_at_least_one(
            "Conv2d",
            &[
                ("in_channels", in_channels),
                ("out_channels", out_channels),
                ("kernel_size", kernel_size),
                ("stride", stride),
            ],
        )?;
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

impl Forward for Conv2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        let (w, b) = (g.param(self.weight), self.bias.map(|b| g.param(b)));
        g.conv2d(x, w, b, self.stride, self.padding)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Conv2d::output_shape(self, input).ok_or_else(|| {
            let why = format!(
                "must be (N, {}, H, W) and no smaller than the kernel",
                self.in_channels
            );
            super::bad_input::bad_input("Conv2d", input, &why)
        })
    }
}

/// Max pooling over square windows, no padding (stride defaults to the kernel size).
///
/// # Shapes
///
/// - input: (N, C, H, W), with H >= kernel_size and W >= kernel_size.
/// - output: (N, C, Ho, Wo), Ho = (H - kernel_size) / stride + 1 and
///   Wo = (W - kernel_size) / stride + 1, rounded down (a last partial window is dropped).
#[derive(Module)]
pub struct MaxPool2d {
    /// Height and width of each window.
    #[module(skip)]
    pub kernel_size: usize,
    /// Step between windows, along both height and width; `new` makes it `kernel_size`
    /// (windows side by side, not overlapping).
    #[module(skip)]
    pub stride: usize,
}

impl MaxPool2d {
    /// nn.MaxPool2d(kernel_size): kernel_size x kernel_size windows with stride kernel_size.
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

    /// The output shape for an input shape (N, C, H, W), or None if the input is not 4-D or is
    /// smaller than a window, or the window or its stride is zero.
    pub fn output_shape(&self, input: &[usize]) -> Option<Vec<usize>> {
        use crate::kernels::max_pool2d::out_size;
        if input.len() != 4 || self.kernel_size == 0 || self.stride == 0 {
            return None;
        }
        let (ho, wo) = (
            out_size(input[2], self.kernel_size, self.stride),
            out_size(input[3], self.kernel_size, self.stride),
        );
        (ho > 0 && wo > 0).then(|| vec![input[0], input[1], ho, wo])
    }
}

impl Forward for MaxPool2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.max_pool2d(x, self.kernel_size, self.stride)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        // public fields, so checked here rather than when built
        let sizes = [("kernel_size", self.kernel_size), ("stride", self.stride)];
        super::bad_size::sizes_at_least_one("MaxPool2d", &sizes)?;
        MaxPool2d::output_shape(self, input).ok_or_else(|| {
            let why = "must be (N, C, H, W) and no smaller than the window";
            super::bad_input::bad_input("MaxPool2d", input, why)
        })
    }
}

/// nn.AvgPool2d without padding: the mean of each kh x kw window (stride defaults to the
/// kernel size), the output size rounded down.
///
/// # Shapes
///
/// - input: (N, C, H, W), with H >= kh and W >= kw.
/// - output: (N, C, Ho, Wo), Ho = (H - kh) / sh + 1 and Wo = (W - kw) / sw + 1, rounded down.
#[derive(Module)]
pub struct AvgPool2d {
    /// The window's (height, width).
    #[module(skip)]
    pub kernel_size: (usize, usize),
    /// The step between windows, (along height, along width).
    #[module(skip)]
    pub stride: (usize, usize),
}

impl AvgPool2d {
    /// nn.AvgPool2d(kernel_size): k x k windows with stride k.
    pub fn new(kernel_size: usize) -> AvgPool2d {
        AvgPool2d {
            kernel_size: (kernel_size, kernel_size),
            stride: (kernel_size, kernel_size),
        }
    }
}

impl Forward for AvgPool2d {
    fn forward(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        g.avg_pool2d(x, self.kernel_size, self.stride)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (k, s) = (self.kernel_size, self.stride);
        if input.len() != 4 || input[2] < k.0 || input[3] < k.1 || s.0 == 0 || s.1 == 0 {
            let why = "must be (N, C, H, W) and no smaller than the window";
            return Err(super::bad_input::bad_input("AvgPool2d", input, why));
        }
        let (ho, wo) = crate::kernels::avg_pool2d::out_dims(input[2], input[3], k, s);
        Ok(vec![input[0], input[1], ho, wo])
    }
}
