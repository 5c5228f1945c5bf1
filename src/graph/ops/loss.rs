//! Losses: cross entropy, binary cross entropy with logits, mean squared error; their
//! forwards and backwards (`kernels::loss`). Each gives a scalar node.

use super::{shape_err, Op};
use crate::graph::{fit_len, Graph, Var};
use crate::kernels::loss;
use crate::tensor::Shape;
use crate::{Error, Result};

impl Graph {
    /// Mean cross entropy of logits (N, C) against class indices (N). The node saves the
    /// softmax probabilities (N, C) in its slot's `saved` and the targets in `saved_idx`.
    pub fn cross_entropy(&mut self, logits: Var, target: &[u32]) -> Result<Var> {
        let d = self.shape(logits).to_vec();
        if d.len() != 2 || d[0] != target.len() || d[0] == 0 {
            return shape_err(format!(
                "cross_entropy: logits {d:?} must be (N, C) with N = {} targets",
                target.len()
            ));
        }
        let classes = d[1];
        if let Some((i, t)) = target
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= classes)
        {
            return Err(Error::Invalid(format!(
                "cross_entropy: target {t} (sample {i}) is out of bounds for {classes} classes"
            )));
        }
        let rg = self.requires_grad(logits);
        let k = self.push(Op::CrossEntropy { logits, classes }, Shape::new(&[])?, rg);
        let (v, slot) = self.split(k);
        fit_len(&mut slot.saved, d[0] * classes);
        slot.saved_idx.clear();
        slot.saved_idx.extend_from_slice(target);
        let probs = &mut slot.saved;
        slot.value[0] = loss::cross_entropy_forward(probs, v.get(logits), target, classes);
        Ok(Graph::node_var(k))
    }

    /// Mean binary cross entropy of logits against targets in [0, 1] (same number of values).
    pub fn bce_with_logits(&mut self, x: Var, target: &[f32]) -> Result<Var> {
        self.target_loss(
            x,
            target,
            "bce_with_logits",
            |x| Op::BceWithLogits { x },
            loss::bce_with_logits_forward,
        )
    }

    /// Mean squared error against targets (same number of values).
    pub fn mse(&mut self, x: Var, target: &[f32]) -> Result<Var> {
        self.target_loss(x, target, "mse", |x| Op::Mse { x }, loss::mse_forward)
    }

    /// A loss against one target per value; the node saves the targets in its slot's `saved`.
    fn target_loss(
        &mut self,
        x: Var,
        target: &[f32],
        what: &str,
        op: fn(Var) -> Op,
        forward: fn(&[f32], &[f32]) -> f32,
    ) -> Result<Var> {
        let n = self.shape_inline(x).numel();
        if n != target.len() || n == 0 {
            return shape_err(format!(
                "{what}: input {:?} and {} targets differ in size",
                self.shape(x),
                target.len()
            ));
        }
        let rg = self.requires_grad(x);
        let k = self.push(op(x), Shape::new(&[])?, rg);
        let (v, slot) = self.split(k);
        slot.saved.clear();
        slot.saved.extend_from_slice(target);
        slot.value[0] = forward(v.get(x), target);
        Ok(Graph::node_var(k))
    }
}

/// The backward of CrossEntropy node `i`, from its saved probabilities and targets.
pub(in crate::graph) fn cross_entropy_backward(
    g: &mut Graph,
    i: usize,
    logits: Var,
    classes: usize,
    dy: &[f32],
) {
    let mut grad = g.take_grad(logits);
    if let Some(grad) = grad.as_deref_mut() {
        let slot = &g.slots[i];
        loss::cross_entropy_backward(grad, &slot.saved, &slot.saved_idx, classes, dy[0]);
    }
    g.put_grad(logits, grad);
}

/// The backward of a BceWithLogits (`mse` false) or Mse node `i`, from its saved targets.
pub(in crate::graph) fn target_loss_backward(
    g: &mut Graph,
    i: usize,
    x: Var,
    mse: bool,
    dy: &[f32],
) {
    let mut grad = g.take_grad(x);
    if let Some(grad) = grad.as_deref_mut() {
        let v = g.values_all();
        let targets = &g.slots[i].saved;
        if mse {
            loss::mse_backward(grad, v.get(x), targets, dy[0]);
        } else {
            loss::bce_with_logits_backward(grad, v.get(x), targets, dy[0]);
        }
    }
    g.put_grad(x, grad);
}
