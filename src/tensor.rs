//! A plain float32 tensor: a contiguous row-major buffer and its shape. The graph keeps its own
//! buffers; `Tensor` is what crosses the API boundary (inputs, state dicts, results).

use crate::{Error, Result};

/// A float32 tensor that owns its values, row-major (the last dimension varies fastest).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The dimensions, outermost first (e.g. (N, C, H, W)); empty for a scalar.
    pub shape: Vec<usize>,
    /// The values, row-major; as many as the product of `shape` (1 for a scalar).
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from a shape and its row-major data; the lengths must agree.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::Shape(format!(
                "shape {:?} holds {} values, but {} were given",
                shape,
                numel,
                data.len()
            )));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of `shape` filled with 0.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// A tensor of `shape` with every value `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: vec![value; shape.iter().product()],
        }
    }

    /// The number of values.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// A shape of up to six dimensions, kept inline so that recording an op allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    dims: [usize; Shape::MAX_RANK],
    rank: usize,
}

impl Shape {
    /// The most dimensions a shape can have.
    pub const MAX_RANK: usize = 6;

    /// The shape with these dimensions, or a shape error if there are more than
    /// [`Shape::MAX_RANK`].
    pub fn new(dims: &[usize]) -> Result<Shape> {
        if dims.len() > Self::MAX_RANK {
            return Err(Error::Shape(format!(
                "{:?} has {} dimensions; at most {} are supported",
                dims,
                dims.len(),
                Self::MAX_RANK
            )));
        }
        let mut s = Shape {
            dims: [0; Self::MAX_RANK],
            rank: dims.len(),
        };
        s.dims[..dims.len()].copy_from_slice(dims);
        Ok(s)
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// The number of values a tensor of this shape holds (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}
