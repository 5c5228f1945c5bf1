//! Reverse-mode gradients: walk the recorded nodes backwards, handing each node's gradient to
//! its op's backward (in the op's file under `ops`), which accumulates into the gradients of
//! the node's inputs. Here: the walk, the hooks' calls, and taking and returning the gradient
//! buffers the ops' backwards write into.

use super::ops::{activation, batch_norm, conv, elementwise, fused, linear, loss, norm, Op};
use super::{Graph, Var, VarKind};
use crate::{Error, Result};

impl Graph {
    /// Gradients of the scalar `loss` with respect to every parameter (accumulated into the
    /// parameters' gradients, as `loss.backward()` does) and every node that requires one.
    pub fn backward(&mut self, loss: Var) -> Result<()> {
        self.expect_scalar(loss, "backward")?;
        self.backward_from(loss, &[1.0])
    }

    /// Backpropagate from any node with a given upstream gradient (PyTorch's `y.backward(dy)`).
    pub fn backward_from(&mut self, y: Var, dy: &[f32]) -> Result<()> {
        let last = match y.0 {
            VarKind::Node(i) => i,
            VarKind::Param(_) => {
                return Err(Error::Invalid(
                    "backward: start from a node, not a parameter".into(),
                ))
            }
        };
        if dy.len() != self.nodes[last].shape.numel() {
            return Err(Error::Shape(format!(
                "backward: gradient of {} values for a node of shape {:?}",
                dy.len(),
                self.nodes[last].shape
            )));
        }
        if !self.nodes[last].requires_grad {
            return Err(Error::Invalid(
                "backward: the output does not depend on anything that requires a gradient (are gradients disabled?)".into(),
            ));
        }
        // node gradients belong to one backward pass (parameters' gradients accumulate)
        for node in &self.nodes[..=last] {
            self.slots[node.storage].grad_live = false;
        }
        {
            let slot = &mut self.slots[self.nodes[last].storage];
            slot.grad.clear();
            slot.grad.extend_from_slice(dy);
            slot.grad_live = true;
        }
        for i in (0..=last).rev() {
            let node = &self.nodes[i];
            if !node.requires_grad || matches!(node.op, Op::Leaf | Op::Alias) {
                continue;
            }
            let s = node.storage;
            if !self.slots[s].grad_live {
                continue; // nothing downstream of this node reached the output
            }
            let dy = std::mem::take(&mut self.slots[s].grad);
            self.gradient_done(s, &dy);
            self.backward_node(i, &dy);
            self.slots[s].grad = dy;
        }
        Ok(())
    }

    /// Take the gradient buffer of an input out for a kernel to accumulate into, or None when
    /// that input needs no gradient.
    pub(super) fn take_grad(&mut self, v: Var) -> Option<Vec<f32>> {
        self.take_grad_to_overwrite(v).map(|(mut g, fresh)| {
            if fresh {
                g.fill(0.0);
            }
            g
        })
    }

    /// Like `take_grad`, but a gradient not yet started this step comes back unzeroed, with
    /// `true`: the caller must overwrite every value (saving a pass that zeroes the buffer and
    /// one that reads the zeros back). `false`: accumulate into it.
    pub(super) fn take_grad_to_overwrite(&mut self, v: Var) -> Option<(Vec<f32>, bool)> {
        let j = match v.0 {
            VarKind::Param(p) => {
                return self
                    .grad_enabled
                    .then(|| self.params.take_grad_to_overwrite(p))
            }
            VarKind::Node(j) => j,
        };
        if !self.nodes[j].requires_grad {
            return None;
        }
        let len = self.nodes[j].shape.numel();
        let slot = &mut self.slots[self.nodes[j].storage];
        let mut g = std::mem::take(&mut slot.grad);
        let fresh = !slot.grad_live;
        if fresh && g.len() != len {
            g.clear();
            g.resize(len, 0.0);
        }
        slot.grad_live = true;
        Some((g, fresh))
    }

    /// Give back a gradient taken with `take_grad_to_overwrite`.
    pub(super) fn put_taken_grad(&mut self, v: Var, taken: Option<(Vec<f32>, bool)>) {
        self.put_grad(v, taken.map(|(grad, _)| grad));
    }

    pub(super) fn put_grad(&mut self, v: Var, g: Option<Vec<f32>>) {
        let Some(g) = g else { return };
        match v.0 {
            VarKind::Param(p) => self.params.put_grad(p, g),
            VarKind::Node(j) => {
                let s = self.nodes[j].storage;
                self.slots[s].grad = g;
            }
        }
    }

    pub(super) fn take_opt(&mut self, v: Option<Var>) -> Option<Vec<f32>> {
        v.and_then(|v| self.take_grad(v))
    }

    pub(super) fn put_opt(&mut self, v: Option<Var>, g: Option<Vec<f32>>) {
        if let Some(v) = v {
            self.put_grad(v, g);
        }
    }

    /// Node i's backward, in its op's file: it accumulates into the gradients of the node's
    /// inputs from `dy`, the gradient of its output.
    fn backward_node(&mut self, i: usize, dy: &[f32]) {
        match self.nodes[i].op {
            Op::Leaf | Op::Alias => {}
            Op::Linear(op) => linear::backward(self, i, op, dy),
            Op::BatchNorm(op) => batch_norm::backward(self, i, op, dy),
            Op::BatchNormReluPool(op) => fused::bn_relu_pool_backward(self, i, op, dy),
            Op::ConvBnReluPool(op) => fused::conv_bn_relu_pool_backward(self, i, op, dy),
            Op::Relu { x } => elementwise::relu_backward(self, i, x, dy),
            Op::Activation { x, f } => activation::backward(self, i, x, f, dy),
            Op::Norm(op) => norm::backward(self, i, op, dy),
            Op::AvgPool2d(op) => conv::avg_pool2d_backward(self, op, dy),
            Op::Dropout { x } => elementwise::dropout_backward(self, i, x, dy),
            Op::Conv2d(op) => conv::conv2d_backward(self, op, dy),
            Op::MaxPool2d { x, plane_in } => conv::max_pool2d_backward(self, i, x, plane_in, dy),
            Op::Add { a, b } => elementwise::add_backward(self, a, b, dy),
            Op::Mul { a, b } => elementwise::mul_backward(self, a, b, dy),
            Op::CrossEntropy { logits, classes } => {
                loss::cross_entropy_backward(self, i, logits, classes, dy)
            }
            Op::BceWithLogits { x } => loss::target_loss_backward(self, i, x, false, dy),
            Op::Mse { x } => loss::target_loss_backward(self, i, x, true, dy),
        }
    }
}
