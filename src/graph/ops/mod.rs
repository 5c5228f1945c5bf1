//! The ops, one file per family. Each file holds an op's forward (check the shapes, record a
//! node, run the forward kernel into the node's buffers), the layout of what the node saves
//! for its backward, and the backward, which `Graph::backward` dispatches to.

pub(super) mod activation;
pub(super) mod batch_norm;
pub(super) mod conv;
pub(super) mod elementwise;
pub(super) mod fused;
pub(super) mod linear;
pub(super) mod loss;
pub(super) mod norm;
mod shape;

pub use batch_norm::BnStats;
pub use fused::ConvArgs;
pub(super) use linear::SparseInput;

use super::Var;
use crate::{Error, Result};

/// What a node computed, with the inputs its backward needs (what it saved is in its slot).
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    /// An input or constant.
    Leaf,
    /// A view of another node's buffer with another shape (flatten, reshape): no copy, and the
    /// gradient flows into the same buffer, so the backward has nothing to do.
    Alias,
    Linear(linear::Linear),
    BatchNorm(batch_norm::BatchNorm),
    BatchNormReluPool(fused::BnReluPool),
    ConvBnReluPool(fused::ConvBnReluPool),
    Relu {
        x: Var,
    },
    Activation {
        x: Var,
        f: activation::Activation,
    },
    Norm(norm::Norm),
    AvgPool2d(conv::AvgPool2d),
    Dropout {
        x: Var,
    },
    Conv2d(conv::Conv2d),
    MaxPool2d {
        x: Var,
        plane_in: usize,
    },
    Add {
        a: Var,
        b: Var,
    },
    Mul {
        a: Var,
        b: Var,
    },
    CrossEntropy {
        logits: Var,
        classes: usize,
    },
    BceWithLogits {
        x: Var,
    },
    Mse {
        x: Var,
    },
}

fn shape_err<T>(msg: String) -> Result<T> {
    Err(Error::Shape(msg))
}

/// The total length of an op's saved layout (see `carve`).
fn layout_len<const K: usize>(lens: [usize; K]) -> usize {
    lens.iter().sum()
}

/// Cut `buf` into consecutive pieces of the given lengths: an op's saved values, in the
/// layout the op's own file gives in one function.
fn carve<const K: usize>(mut buf: &[f32], lens: [usize; K]) -> [&[f32]; K] {
    lens.map(|len| {
        let (piece, rest) = buf.split_at(len);
        buf = rest;
        piece
    })
}

/// `carve`, writable.
fn carve_mut<const K: usize>(mut buf: &mut [f32], lens: [usize; K]) -> [&mut [f32]; K] {
    lens.map(|len| {
        let (piece, rest) = std::mem::take(&mut buf).split_at_mut(len);
        buf = rest;
        piece
    })
}
