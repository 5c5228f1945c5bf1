//! The parameters of a model: values and gradients, by id. Modules hold `ParamId`s; the graph
//! reads values and writes gradients here; optimizers update values from gradients.

use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    pub fn index(self) -> usize {
        self.0
    }
}

#[derive(Default)]
pub struct ParamStore {
    values: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    /// PyTorch's `grad is None`: false after `zero_grad` until a backward writes a gradient;
    /// optimizers skip such parameters, as torch.optim does.
    has_grad: Vec<bool>,
    shapes: Vec<Shape>,
    /// Bumped whenever a value may have changed, so that derived data (a transposed weight)
    /// can be cached until then.
    versions: Vec<u64>,
}

impl ParamStore {
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    pub fn add(&mut self, t: Tensor) -> Result<ParamId> {
        let shape = Shape::new(&t.shape)?;
        self.values.push(t.data);
        self.grads.push(Vec::new());
        self.has_grad.push(false);
        self.shapes.push(shape);
        self.versions.push(0);
        Ok(ParamId(self.values.len() - 1))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.values.len()).map(ParamId)
    }

    pub fn value(&self, id: ParamId) -> &[f32] {
        &self.values[id.0]
    }

    pub fn value_mut(&mut self, id: ParamId) -> &mut [f32] {
        self.versions[id.0] += 1;
        &mut self.values[id.0]
    }

    pub fn shape(&self, id: ParamId) -> &[usize] {
        self.shapes[id.0].dims()
    }

    pub(crate) fn shape_inline(&self, id: ParamId) -> Shape {
        self.shapes[id.0]
    }

    /// Replace a parameter's values; the shape must be the parameter's own.
    pub fn set(&mut self, id: ParamId, t: &Tensor) -> Result<()> {
        if t.shape != self.shape(id) {
            return Err(Error::Shape(format!(
                "parameter has shape {:?}, got {:?}",
                self.shape(id),
                t.shape
            )));
        }
        self.versions[id.0] += 1;
        self.values[id.0].copy_from_slice(&t.data);
        Ok(())
    }

    /// The gradient, or None when no backward has written one since `zero_grad`.
    pub fn grad(&self, id: ParamId) -> Option<&[f32]> {
        self.has_grad[id.0].then(|| &self.grads[id.0][..])
    }

    /// Value and gradient together, for optimizers.
    pub fn value_and_grad(&mut self, id: ParamId) -> (&mut [f32], Option<&[f32]>) {
        self.versions[id.0] += 1;
        let grad = self.has_grad[id.0].then(|| &self.grads[id.0][..]);
        (&mut self.values[id.0], grad)
    }

    /// Forget every gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&mut self) {
        self.has_grad.iter_mut().for_each(|h| *h = false);
    }

    /// Take the gradient buffer out for a backward kernel to accumulate into: zero-filled
    /// if no gradient has been written since `zero_grad`.
    pub(crate) fn take_grad(&mut self, id: ParamId) -> Vec<f32> {
        let mut g = std::mem::take(&mut self.grads[id.0]);
        if !self.has_grad[id.0] {
            g.clear();
            g.resize(self.values[id.0].len(), 0.0);
            self.has_grad[id.0] = true;
        }
        g
    }

    pub(crate) fn put_grad(&mut self, id: ParamId, g: Vec<f32>) {
        self.grads[id.0] = g;
    }

    /// Changes whenever the parameter's value may have changed.
    pub fn version(&self, id: ParamId) -> u64 {
        self.versions[id.0]
    }

    pub fn num_elements(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }
}
