//! The parameters of a model: values and gradients, by id. Modules hold `ParamId`s; the graph
//! reads values and writes gradients here; optimizers update values from gradients.

use crate::tensor::{Shape, Tensor};
use crate::{Error, Result};
use std::borrow::Cow;

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

/// How a parameter's values are stored, against PyTorch's layout of the same tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamLayout {
    /// As PyTorch stores it.
    Torch,
    /// The transpose of PyTorch's 2-D (rows, cols) tensor, stored (cols, rows). A Linear fed
    /// by a sparse input keeps W^T so that its kernels read rows of W^T without transposing
    /// the weight every step (see `LinearConfig::stored_transpose`).
    Transposed,
}

/// Every parameter of a model: values, gradients, shapes and storage layouts, by [`ParamId`].
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
    layouts: Vec<ParamLayout>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    /// Add a parameter with the tensor's shape and initial values, stored as PyTorch stores it;
    /// it has no gradient until a backward writes one. Fails if the shape has more than
    /// [`Shape::MAX_RANK`] dimensions.
    pub fn add(&mut self, t: Tensor) -> Result<ParamId> {
        let shape = Shape::new(&t.shape)?;
        self.values.push(t.data);
        self.grads.push(Vec::new());
        self.has_grad.push(false);
        self.shapes.push(shape);
        self.versions.push(0);
        self.layouts.push(ParamLayout::Torch);
        Ok(ParamId(self.values.len() - 1))
    }

    /// Add a 2-D parameter given in PyTorch's layout (rows, cols), stored transposed as
    /// (cols, rows). `shape` and `value` then give the stored form; the state dict and
    /// `to_torch_layout` give PyTorch's.
    pub fn add_transposed(&mut self, t: Tensor) -> Result<ParamId> {
        let &[rows, cols] = t.shape.as_slice() else {
            return Err(Error::Shape(format!(
                "only a 2-D parameter can be stored transposed, not {:?}",
                t.shape
            )));
        };
        let mut data = vec![0.0; t.data.len()];
        crate::kernels::sparse_linear::transpose(&mut data, &t.data, rows, cols);
        let id = self.add(Tensor::new(&[cols, rows], data)?)?;
        self.layouts[id.0] = ParamLayout::Transposed;
        Ok(id)
    }

    /// How the parameter is stored against PyTorch's layout.
    pub fn layout(&self, id: ParamId) -> ParamLayout {
        self.layouts[id.0]
    }

    /// The shape PyTorch gives this parameter.
    pub fn torch_shape(&self, id: ParamId) -> Vec<usize> {
        let mut d = self.shape(id).to_vec();
        if self.layouts[id.0] == ParamLayout::Transposed {
            d.reverse();
        }
        d
    }

    /// Values laid out as this parameter is stored (its value, gradient, or an optimizer's
    /// moment of it), in PyTorch's layout. Empty stays empty (a gradient or moment not yet
    /// started); any other length must be the parameter's.
    pub fn to_torch_layout<'a>(&self, id: ParamId, stored: &'a [f32]) -> Cow<'a, [f32]> {
        let d = self.shape(id);
        self.relayout(id, stored, d[0], d.get(1).copied().unwrap_or(1))
    }

    /// Values in PyTorch's layout, laid out as this parameter is stored (the inverse of
    /// `to_torch_layout`).
    pub fn from_torch_layout<'a>(&self, id: ParamId, torch: &'a [f32]) -> Cow<'a, [f32]> {
        let d = self.shape(id);
        self.relayout(id, torch, d.get(1).copied().unwrap_or(1), d[0])
    }

    /// `values` as a (rows, cols) matrix, transposed if this parameter is stored transposed.
    fn relayout<'a>(
        &self,
        id: ParamId,
        values: &'a [f32],
        rows: usize,
        cols: usize,
    ) -> Cow<'a, [f32]> {
        if self.layouts[id.0] == ParamLayout::Torch || values.is_empty() {
            return Cow::Borrowed(values);
        }
        assert_eq!(
            values.len(),
            self.values[id.0].len(),
            "values to lay out must be as many as the parameter's"
        );
        let mut out = vec![0.0; values.len()];
        crate::kernels::sparse_linear::transpose(&mut out, values, rows, cols);
        Cow::Owned(out)
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

    /// The parameter's shape as stored: PyTorch's, or its reverse for a 2-D parameter stored
    /// transposed (see [`ParamStore::torch_shape`]).
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
        self.values.iter().map(Vec::len).sum()
    }
}
