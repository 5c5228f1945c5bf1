//! Layers run as one op: BatchNorm2d -> ReLU -> MaxPool2d(2, 2), with or without the Conv2d
//! before it, for a hand-written forward as for [`Sequential::fused`](super::Sequential::fused).
//!
//! Each gives the same values, running-statistics updates, gradients and errors as the layers
//! one after the other (tests/fused.rs), reading and writing the activations once instead of
//! four times (graph/ops/fused.rs, kernels/bn_relu_pool/). Each returns None when the input
//! does not allow it (not (N, C, H, W), or too small to pool): run the layers one by one then, and
//! they say what is wrong.

use super::{BatchNorm, Conv2d};
use crate::graph::{ConvArgs, Graph, Var};
use crate::Result;

/// Whether a (N, C, H, W) shape can be pooled by a 2 x 2 window.
fn poolable(shape: &[usize]) -> Option<()> {
    matches!(shape, &[_, _, h, w] if h >= 2 && w >= 2).then_some(())
}

/// `max_pool2d(relu(bn(x)), 2, 2)` as one op (`Graph::batch_norm_relu_pool`).
pub fn bn_relu_pool(g: &mut Graph, bn: &mut BatchNorm, x: Var) -> Option<Result<Var>> {
    let shape = g.shape(x).to_vec();
    poolable(&shape)?;
    Some(bn.forward_with(g, &shape, |g, w, b, stats| {
        g.batch_norm_relu_pool(x, w, b, stats)
    }))
}

/// `max_pool2d(relu(bn(conv(x))), 2, 2)` as one op (`Graph::conv_bn_relu_pool`).
pub fn conv_bn_relu_pool(
    g: &mut Graph,
    conv: &Conv2d,
    bn: &mut BatchNorm,
    x: Var,
) -> Option<Result<Var>> {
    let shape = conv.output_shape(g.shape(x))?;
    poolable(&shape)?;
    let args = ConvArgs {
        w: g.param(conv.weight),
        b: conv.bias.map(|b| g.param(b)),
        stride: conv.stride,
        pad: conv.padding,
    };
    Some(bn.forward_with(g, &shape, |g, w, b, stats| {
        g.conv_bn_relu_pool(x, args, w, b, stats)
    }))
}
