//! A plain float32 tensor: a contiguous row-major buffer and its shape. The graph keeps its own
//! buffers; `Tensor` is what crosses the API boundary (inputs, state dicts, results).

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
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

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: vec![value; shape.iter().product()],
        }
    }

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
    pub const MAX_RANK: usize = 6;

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

    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.dims())
    }
}
