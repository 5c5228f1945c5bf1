//! Elementwise ops: ReLU, Dropout, Add, Mul; their forwards and backwards.

use super::{shape_err, Op};
use crate::graph::{fit_len, Graph, Var};
use crate::kernels::{dropout, elementwise, relu};
use crate::tensor::Shape;
use crate::{Error, Result};

impl Graph {
    /// max(x, 0) elementwise, any shape; NaN passes through, as in PyTorch.
    pub fn relu(&mut self, x: Var) -> Result<Var> {
        let rg = self.requires_grad(x);
        let k = self.push(Op::Relu { x }, self.shape_inline(x), rg);
        let (v, slot) = self.split(k);
        relu::forward(&mut slot.value, v.get(x));
        Ok(Graph::node_var(k))
    }

    /// Inverted dropout with drop probability p, drawing from `self.rng`. The node saves its
    /// mask (0 or 1 / (1 - p) per value) in its slot's `saved`.
    pub fn dropout(&mut self, x: Var, p: f32) -> Result<Var> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Invalid(format!(
                "dropout probability has to be between 0 and 1, but got {p}"
            )));
        }
        let rg = self.requires_grad(x);
        let shape = self.shape_inline(x);
        let k = self.push(Op::Dropout { x }, shape, rg);
        let mut rng = std::mem::replace(&mut self.rng, crate::rng::Rng::seed(0));
        let (v, slot) = self.split(k);
        fit_len(&mut slot.saved, shape.numel());
        dropout::forward(&mut slot.value, &mut slot.saved, v.get(x), p, &mut rng);
        self.rng = rng;
        Ok(Graph::node_var(k))
    }

    fn same_shape(&self, a: Var, b: Var, what: &str) -> Result<Shape> {
        let (sa, sb) = (self.shape_inline(a), self.shape_inline(b));
        if sa != sb {
            return shape_err(format!("{what}: shapes {sa:?} and {sb:?} differ"));
        }
        Ok(sa)
    }

    /// a + b, elementwise (same shapes).
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        let shape = self.same_shape(a, b, "add")?;
        let rg = self.requires_grad(a) || self.requires_grad(b);
        let k = self.push(Op::Add { a, b }, shape, rg);
        let (v, slot) = self.split(k);
        elementwise::add_forward(&mut slot.value, v.get(a), v.get(b));
        Ok(Graph::node_var(k))
    }

    /// a * b, elementwise (same shapes).
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        let shape = self.same_shape(a, b, "mul")?;
        let rg = self.requires_grad(a) || self.requires_grad(b);
        let k = self.push(Op::Mul { a, b }, shape, rg);
        let (v, slot) = self.split(k);
        elementwise::mul_forward(&mut slot.value, v.get(a), v.get(b));
        Ok(Graph::node_var(k))
    }
}

/// The backward of ReLU node `i` (its output, in its own slot, says where x was positive).
pub(in crate::graph) fn relu_backward(g: &mut Graph, i: usize, x: Var, dy: &[f32]) {
    if let Some((mut gx, fresh)) = g.take_grad_to_overwrite(x) {
        relu::backward(&mut gx, !fresh, dy, &g.slots[i].value);
        g.put_grad(x, Some(gx));
    }
}

/// The backward of Dropout node `i`, through its saved mask.
pub(in crate::graph) fn dropout_backward(g: &mut Graph, i: usize, x: Var, dy: &[f32]) {
    let mut gx = g.take_grad(x);
    if let Some(gx) = gx.as_deref_mut() {
        dropout::backward(gx, dy, &g.slots[i].saved);
    }
    g.put_grad(x, gx);
}

/// The backward of a + b: dy to both.
pub(in crate::graph) fn add_backward(g: &mut Graph, a: Var, b: Var, dy: &[f32]) {
    for operand in [a, b] {
        let mut grad = g.take_grad(operand);
        if let Some(grad) = grad.as_deref_mut() {
            elementwise::accumulate(grad, dy);
        }
        g.put_grad(operand, grad);
    }
}

/// The backward of a * b: dy * b to a, dy * a to b.
pub(in crate::graph) fn mul_backward(g: &mut Graph, a: Var, b: Var, dy: &[f32]) {
    // one operand at a time: a and b may be the same value (or views of one buffer), and then
    // the two contributions simply add up
    for (operand, other) in [(a, b), (b, a)] {
        let mut grad = g.take_grad(operand);
        if let Some(grad) = grad.as_deref_mut() {
            elementwise::mul_backward(grad, dy, g.value(other));
        }
        g.put_grad(operand, grad);
    }
}
