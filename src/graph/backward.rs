//! Reverse-mode gradients: walk the recorded nodes backwards, handing each node's gradient to
//! its op's backward kernel, which accumulates into the gradients of the node's inputs.

use super::{Graph, Op, Var, VarKind};
use crate::kernels::{
    batch_norm, bn_relu_pool, conv2d, dropout, elementwise, linear, loss, max_pool2d, relu,
    sparse_linear,
};
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
    fn take_grad(&mut self, v: Var) -> Option<Vec<f32>> {
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
    fn take_grad_to_overwrite(&mut self, v: Var) -> Option<(Vec<f32>, bool)> {
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

    fn put_grad(&mut self, v: Var, g: Option<Vec<f32>>) {
        let Some(g) = g else { return };
        match v.0 {
            VarKind::Param(p) => self.params.put_grad(p, g),
            VarKind::Node(j) => {
                let s = self.nodes[j].storage;
                self.slots[s].grad = g;
            }
        }
    }

    fn take_opt(&mut self, v: Option<Var>) -> Option<Vec<f32>> {
        v.and_then(|v| self.take_grad(v))
    }

    fn put_opt(&mut self, v: Option<Var>, g: Option<Vec<f32>>) {
        if let Some(v) = v {
            self.put_grad(v, g);
        }
    }

    fn backward_node(&mut self, i: usize, dy: &[f32]) {
        let op = self.nodes[i].op;
        match op {
            Op::Leaf | Op::Alias => {}
            Op::Linear {
                x,
                w,
                b,
                sparse,
                transposed,
            } => {
                let (mut gx, gw, mut gb) = (
                    self.take_grad(x),
                    self.take_grad_to_overwrite(w),
                    self.take_opt(b),
                );
                let ws = self.shape_inline(w);
                let (o, inner) = if transposed {
                    (ws.dims()[1], ws.dims()[0])
                } else {
                    (ws.dims()[0], ws.dims()[1])
                };
                let mut gw = gw.map(|(mut g, fresh)| {
                    // only the sparse kernel for W^T overwrites; the others accumulate
                    if fresh && !(transposed && sparse.is_some()) {
                        g.fill(0.0);
                    }
                    (g, fresh)
                });
                if let Some(src) = sparse {
                    // x needs no gradient; dw from the nonzeros of x, by columns of x
                    if let Some((gw, fresh)) = gw.as_mut() {
                        let mut csc = std::mem::take(&mut self.slots[i].csc);
                        if !self.slots[i].csc_ready {
                            sparse_linear::csr_to_csc(&self.slots[src].csr, inner, &mut csc);
                        }
                        if transposed {
                            sparse_linear::backward_weight_t(gw, dy, &csc, o, *fresh);
                        } else {
                            sparse_linear::backward_weight(gw, dy, &csc, o, inner);
                        }
                        self.slots[i].csc = csc;
                    }
                    if let Some(gb) = gb.as_deref_mut() {
                        linear::bias_grad(gb, dy, o);
                    }
                } else {
                    let v = self.values_all();
                    let n = v.get(x).len() / inner;
                    linear::backward(
                        dy,
                        v.get(x),
                        v.get(w),
                        transposed,
                        gx.as_deref_mut(),
                        gw.as_mut().map(|(g, _)| &mut g[..]),
                        gb.as_deref_mut(),
                        n,
                        inner,
                        o,
                    );
                }
                self.put_grad(x, gx);
                self.put_grad(w, gw.map(|(g, _)| g));
                self.put_opt(b, gb);
            }
            Op::BatchNorm {
                x,
                w,
                b,
                spatial,
                batch,
            } => {
                let (mut gx, mut gw, mut gb) =
                    (self.take_grad(x), self.take_opt(w), self.take_opt(b));
                let c = self.shape(x)[1];
                // scratch from the node's own aux: [mean var rstd alpha beta | sums (2C) | k (3C)]
                let mut aux = std::mem::take(&mut self.slots[i].aux);
                aux.resize(10 * c, 0.0);
                let (stats, scratch) = aux.split_at_mut(5 * c);
                let (mean, rest) = stats.split_at(c);
                let (_var, rest) = rest.split_at(c);
                let (rstd, rest) = rest.split_at(c);
                let (alpha, _beta) = rest.split_at(c);
                let (sums, k) = scratch.split_at_mut(2 * c);
                let (sum_dy, sum_dy_xhat) = sums.split_at_mut(c);
                let v = self.values_all();
                let xv = v.get(x);
                batch_norm::grad_sums(dy, xv, mean, rstd, spatial, sum_dy, sum_dy_xhat);
                if let Some(gw) = gw.as_deref_mut() {
                    elementwise::accumulate(gw, sum_dy_xhat);
                }
                if let Some(gb) = gb.as_deref_mut() {
                    elementwise::accumulate(gb, sum_dy);
                }
                if let Some(gx) = gx.as_deref_mut() {
                    if batch {
                        let wv = v.opt(w);
                        batch_norm::backward_train(
                            gx,
                            dy,
                            xv,
                            mean,
                            rstd,
                            wv,
                            sum_dy,
                            sum_dy_xhat,
                            spatial,
                            k,
                        );
                    } else {
                        batch_norm::backward_fixed(gx, dy, alpha, spatial);
                    }
                }
                aux.truncate(5 * c);
                self.slots[i].aux = aux;
                self.put_grad(x, gx);
                self.put_opt(w, gw);
                self.put_opt(b, gb);
            }
            Op::BatchNormReluPool { x, w, b, batch } => {
                let (gx, mut gw, mut gb) = (
                    self.take_grad_to_overwrite(x),
                    self.take_opt(w),
                    self.take_opt(b),
                );
                let (mut gx, overwrite) = gx.map_or((None, false), |(g, o)| (Some(g), o));
                let d = self.shape(x).to_vec();
                let (c, h, wd) = (d[1], d[2], d[3]);
                let plane_out = bn_relu_pool::pooled(h) * bn_relu_pool::pooled(wd);
                // scratch for the sums at the end of the node's own aux, dropped afterwards
                let mut aux = std::mem::take(&mut self.slots[i].aux);
                let kept = aux.len();
                let planes = dy.len() / plane_out;
                aux.resize(kept + bn_relu_pool::backward_scratch_len(c, planes), 0.0);
                let (kept_aux, work) = aux.split_at_mut(kept);
                let (stats, x_at) = kept_aux.split_at(5 * c);
                let v = self.values_all();
                let (y, argmax) = (&self.slots[i].value, &self.slots[i].idx);
                let xv = v.get(x);
                let coef = bn_relu_pool::backward_params(
                    dy,
                    y,
                    x_at,
                    stats,
                    plane_out,
                    (xv.len() / c) as f32,
                    v.opt(w),
                    batch,
                    gw.as_deref_mut(),
                    gb.as_deref_mut(),
                    work,
                );
                if let Some(gx) = gx.as_deref_mut() {
                    let mean = &stats[..c];
                    bn_relu_pool::backward_input(
                        gx, overwrite, dy, y, argmax, xv, mean, coef.k1, coef.coef, h, wd,
                    );
                }
                aux.truncate(kept);
                self.slots[i].aux = aux;
                self.put_grad(x, gx);
                self.put_opt(w, gw);
                self.put_opt(b, gb);
            }
            Op::ConvBnReluPool {
                x,
                conv_w,
                conv_b,
                geom,
                w,
                b,
                batch,
            } => {
                let (mut gx, mut gcw, mut gcb) = (
                    self.take_grad(x),
                    self.take_grad(conv_w),
                    self.take_opt(conv_b),
                );
                let (mut gw, mut gb) = (self.take_opt(w), self.take_opt(b));
                let (c, h, wd) = (geom.cout, geom.ho(), geom.wo());
                let plane_out = bn_relu_pool::pooled(h) * bn_relu_pool::pooled(wd);
                // scratch for the sums at the end of the node's own aux, dropped afterwards
                let mut aux = std::mem::take(&mut self.slots[i].aux);
                let kept = aux.len();
                let planes = dy.len() / plane_out;
                aux.resize(kept + bn_relu_pool::backward_scratch_len(c, planes), 0.0);
                let mut partials = std::mem::take(&mut self.scratch);
                let (kept_aux, work) = aux.split_at_mut(kept);
                let (bn_stats, rest) = kept_aux.split_at(5 * c);
                let (x_at, rest) = rest.split_at(self.nodes[i].shape.numel());
                let conv_y = &rest[..geom.n * c * h * wd];
                let v = self.values_all();
                let (y, argmax) = (&self.slots[i].value, &self.slots[i].idx);
                let coef = bn_relu_pool::backward_params(
                    dy,
                    y,
                    x_at,
                    bn_stats,
                    plane_out,
                    (conv_y.len() / c) as f32,
                    v.opt(w),
                    batch,
                    gw.as_deref_mut(),
                    gb.as_deref_mut(),
                    work,
                );
                if gx.is_some() || gcw.is_some() || gcb.is_some() {
                    let (mean, k1, coef) = (&bn_stats[..c], coef.k1, coef.coef);
                    let (conv_plane, n_out) = (h * wd, c * plane_out);
                    // the convolution's output gradient for sample n, made when its loop needs it
                    let upstream = |n: usize, dy_conv: &mut [f32]| {
                        let outs = n * n_out..(n + 1) * n_out;
                        bn_relu_pool::sample_input_grad(
                            dy_conv,
                            &conv_y[n * c * conv_plane..][..c * conv_plane],
                            &dy[outs.clone()],
                            &y[outs.clone()],
                            &argmax[outs],
                            mean,
                            k1,
                            coef,
                            h,
                            wd,
                        )
                    };
                    conv2d::backward(
                        conv2d::Upstream::PerSample(&upstream),
                        v.get(x),
                        v.get(conv_w),
                        gx.as_deref_mut(),
                        gcw.as_deref_mut(),
                        gcb.as_deref_mut(),
                        &geom,
                        &mut partials,
                    );
                }
                self.scratch = partials;
                aux.truncate(kept);
                self.slots[i].aux = aux;
                self.put_grad(x, gx);
                self.put_grad(conv_w, gcw);
                self.put_opt(conv_b, gcb);
                self.put_opt(w, gw);
                self.put_opt(b, gb);
            }
            Op::Relu { x } => {
                let mut gx = self.take_grad(x);
                if let Some(g) = gx.as_deref_mut() {
                    relu::backward(g, dy, &self.slots[i].value);
                }
                self.put_grad(x, gx);
            }
            Op::Dropout { x } => {
                let mut gx = self.take_grad(x);
                if let Some(g) = gx.as_deref_mut() {
                    dropout::backward(g, dy, &self.slots[i].aux);
                }
                self.put_grad(x, gx);
            }
            Op::Conv2d { x, w, b, geom } => {
                let (mut gx, mut gw, mut gb) =
                    (self.take_grad(x), self.take_grad(w), self.take_opt(b));
                let mut partials = std::mem::take(&mut self.scratch);
                let v = self.values_all();
                conv2d::backward(
                    conv2d::Upstream::Dense(dy),
                    v.get(x),
                    v.get(w),
                    gx.as_deref_mut(),
                    gw.as_deref_mut(),
                    gb.as_deref_mut(),
                    &geom,
                    &mut partials,
                );
                self.scratch = partials;
                self.put_grad(x, gx);
                self.put_grad(w, gw);
                self.put_opt(b, gb);
            }
            Op::MaxPool2d { x, plane_in } => {
                let mut gx = self.take_grad(x);
                if let Some(g) = gx.as_deref_mut() {
                    let d = self.nodes[i].shape.dims();
                    let plane_out = d[2] * d[3];
                    max_pool2d::backward(g, dy, &self.slots[i].idx, plane_in, plane_out);
                }
                self.put_grad(x, gx);
            }
            Op::Add { a, b } => {
                for operand in [a, b] {
                    let mut g = self.take_grad(operand);
                    if let Some(g) = g.as_deref_mut() {
                        elementwise::accumulate(g, dy);
                    }
                    self.put_grad(operand, g);
                }
            }
            Op::Mul { a, b } => {
                // one operand at a time: a and b may be the same value (or views of one buffer),
                // and then the two contributions simply add up
                for (operand, other) in [(a, b), (b, a)] {
                    let mut g = self.take_grad(operand);
                    if let Some(g) = g.as_deref_mut() {
                        elementwise::mul_backward(g, dy, self.value(other));
                    }
                    self.put_grad(operand, g);
                }
            }
            Op::CrossEntropy { logits, classes } => {
                let mut g = self.take_grad(logits);
                if let Some(g) = g.as_deref_mut() {
                    let slot = &self.slots[i];
                    loss::cross_entropy_backward(g, &slot.aux, &slot.idx, classes, dy[0]);
                }
                self.put_grad(logits, g);
            }
            Op::BceWithLogits { x } | Op::Mse { x } => {
                let mut g = self.take_grad(x);
                if let Some(g) = g.as_deref_mut() {
                    let v = self.values_all();
                    let t = &self.slots[i].aux;
                    if matches!(op, Op::Mse { .. }) {
                        loss::mse_backward(g, v.get(x), t, dy[0]);
                    } else {
                        loss::bce_with_logits_backward(g, v.get(x), t, dy[0]);
                    }
                }
                self.put_grad(x, g);
            }
        }
    }
}
