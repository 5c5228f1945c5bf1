//! The parameters of a model: values and gradients, by id. Modules hold `ParamId`s; the graph
//! reads values and writes gradients here; optimizers update values from gradients.

use crate::internal::aligned::AlignedVec;
use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};

/// A parameter's handle in its [`ParamStore`]: ids are given out in order by
/// [`ParamStore::add`], and mean nothing in another store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// The position of the parameter in its store (0 for the first added).
    pub fn index(self) -> usize {
        self.0
    }
}

/// Every parameter of a model: values, gradients and shapes, by [`ParamId`]. How a layer lays
/// a parameter out against PyTorch is the layer's business (`nn::ParamMapper`).
#[derive(Default)]
pub struct ParamStore {
    /// Cache-line aligned, so that the kernels' speed does not depend on allocation order.
    values: Vec<AlignedVec>,
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
    /// An empty store.
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    /// Add a parameter with the tensor's shape and initial values;
    /// it has no gradient until a backward writes one. Fails if the shape has more than
    /// [`Shape::MAX_RANK`] dimensions.
    pub fn add(&mut self, t: Tensor) -> Result<ParamId> {
        let shape = Shape::new(&t.shape)?;
        self.values.push(AlignedVec::from_slice(&t.data));
        self.grads.push(Vec::new());
        self.has_grad.push(false);
        self.shapes.push(shape);
        self.versions.push(0);
        Ok(ParamId(self.values.len() - 1))
    }

    /// The number of parameters (tensors, not values; see [`ParamStore::num_elements`]).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every parameter's id, in the order they were added.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.values.len()).map(ParamId)
    }

    /// The parameter's values as stored (row-major in [`ParamStore::shape`]).
    pub fn value(&self, id: ParamId) -> &[f32] {
        &self.values[id.0]
    }

    /// The parameter's values to change in place, as stored; bumps its version, so that data
    /// derived from it (a transposed copy) is rebuilt.
    pub fn value_mut(&mut self, id: ParamId) -> &mut [f32] {
        self.versions[id.0] += 1;
        &mut self.values[id.0]
    }

    /// The parameter's shape as stored (a layer that keeps a parameter in a layout of its own
    /// maps it to PyTorch's, `nn::ParamMapper`).
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

    /// [`ParamStore::value_and_grad`] of several distinct parameters at once, in the order of
    /// `ids`, so that an optimizer can update them side by side.
    ///
    /// # Panics
    /// If an id appears twice.
    pub fn values_and_grads(&mut self, ids: &[ParamId]) -> Vec<(&mut [f32], Option<&[f32]>)> {
        let mut values: Vec<Option<&mut AlignedVec>> = self.values.iter_mut().map(Some).collect();
        ids.iter()
            .map(|&id| {
                self.versions[id.0] += 1;
                let value = values[id.0]
                    .take()
                    .expect("values_and_grads: a parameter listed twice");
                let grad = self.has_grad[id.0].then(|| &self.grads[id.0][..]);
                (&mut value[..], grad)
            })
            .collect()
    }

    /// Forget every gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&mut self) {
        self.has_grad.iter_mut().for_each(|h| *h = false);
    }

    /// Take the gradient buffer out for a backward kernel. A gradient not yet started since
    /// `zero_grad` comes back unzeroed, with `true`: the caller must then either overwrite
    /// every value or zero it first; `false`: accumulate into it.
    pub(crate) fn take_grad_to_overwrite(&mut self, id: ParamId) -> (Vec<f32>, bool) {
        let mut g = std::mem::take(&mut self.grads[id.0]);
        let fresh = !self.has_grad[id.0];
        if fresh {
            g.resize(self.values[id.0].len(), 0.0);
            self.has_grad[id.0] = true;
        }
        (g, fresh)
    }

    pub(crate) fn put_grad(&mut self, id: ParamId, g: Vec<f32>) {
        self.grads[id.0] = g;
    }

    /// Changes whenever the parameter's value may have changed.
    pub fn version(&self, id: ParamId) -> u64 {
        self.versions[id.0]
    }

    /// The total number of values over every parameter: for a store holding one model,
    /// PyTorch's `sum(p.numel() for p in model.parameters())`.
    pub fn num_elements(&self) -> usize {
        self.values.iter().map(|v| v.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(values: &[&[f32]]) -> (ParamStore, Vec<ParamId>) {
        let mut s = ParamStore::new();
        let ids = values
            .iter()
            .map(|v| s.add(Tensor::new(&[v.len()], v.to_vec()).unwrap()).unwrap())
            .collect();
        (s, ids)
    }

    #[test]
    fn several_values_and_grads_come_in_the_order_asked_each_bumped_once() {
        let (mut s, ids) = store_of(&[&[1.0, 2.0], &[3.0], &[4.0, 5.0, 6.0]]);
        // a gradient for the last parameter only
        let (mut g, fresh) = s.take_grad_to_overwrite(ids[2]);
        assert!(fresh);
        g.copy_from_slice(&[0.5, 0.25, 0.125]);
        s.put_grad(ids[2], g);
        let before: Vec<u64> = ids.iter().map(|&id| s.version(id)).collect();
        let got = s.values_and_grads(&[ids[2], ids[0]]);
        assert_eq!(got.len(), 2);
        assert_eq!(&*got[0].0, &[4.0, 5.0, 6.0]);
        assert_eq!(got[0].1, Some(&[0.5, 0.25, 0.125][..]));
        assert_eq!(&*got[1].0, &[1.0, 2.0]);
        assert_eq!(got[1].1, None);
        let after: Vec<u64> = ids.iter().map(|&id| s.version(id)).collect();
        assert_eq!(after, [before[0] + 1, before[1], before[2] + 1]);
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn a_parameter_asked_for_twice_is_refused() {
        let (mut s, ids) = store_of(&[&[1.0], &[2.0]]);
        let _ = s.values_and_grads(&[ids[1], ids[0], ids[1]]);
    }
}
