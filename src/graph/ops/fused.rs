//! Ops that stand for several layers at once, for the memory traffic they save: BatchNorm ->
//! ReLU -> MaxPool, and Conv2d -> BatchNorm -> ReLU -> MaxPool. Each gives exactly the value
//! the separate ops give (see `kernels::bn_relu_pool`). Here: their forwards, the layouts of
//! what they save, and their backwards.

use super::batch_norm::{self as bn_op, BnStats};
use super::{carve, carve_mut, layout_len, Op};
use crate::graph::{fit_len, grad_out, grow, Graph, Node, Slot, Var};
use crate::kernels::batch_norm::{self as bn_kernel, Saved};
use crate::kernels::bn_relu_pool::{self as kernel, pooled};
use crate::kernels::conv2d::{self, ConvGeom};
use crate::precision::Precision;
use crate::tensor::Shape;
use crate::{Error, Result};

/// A BatchNorm -> ReLU -> MaxPool node's inputs; `batch`: BatchNorm with this batch's
/// statistics (else fixed running ones).
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct BnReluPool {
    x: Var,
    w: Option<Var>,
    b: Option<Var>,
    batch: bool,
}

/// A Conv2d -> BatchNorm -> ReLU -> MaxPool node's inputs: the convolution's, then the
/// BatchNorm's.
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct ConvBnReluPool {
    x: Var,
    conv_w: Var,
    conv_b: Option<Var>,
    geom: ConvGeom,
    w: Option<Var>,
    b: Option<Var>,
    batch: bool,
    /// The convolution's products' precision, forward and backward.
    precision: Precision,
}

/// What a fused node saves in its slot, by name (the argmax of each output in its input plane
/// is in the slot's `saved_idx`).
pub(super) struct PoolSaved<S> {
    /// The BatchNorm's statistics block.
    pub bn: Saved<S>,
    /// The BatchNorm's input at each output's argmax (N, C, Ho, Wo).
    pub x_at: S,
    /// ConvBnReluPool only (else empty): the convolution's output (N, C, H, W).
    pub conv_y: S,
    /// ConvBnReluPool only (else empty), used by the forward alone: each (sample, channel)
    /// run's mean and sum of squared deviations (N, C, 2).
    pub runs: S,
}

/// The layout of a fused node's saved values: C channels, `outs` outputs, and for
/// ConvBnReluPool the convolution's geometry.
fn layout(c: usize, outs: usize, conv: Option<&ConvGeom>) -> [usize; 4] {
    let (conv_y, runs) = conv.map_or((0, 0), |g| (g.n * c * g.ho() * g.wo(), 2 * g.n * c));
    [bn_op::saved_len(c), outs, conv_y, runs]
}

/// The saved values of a fused node in `buf`, by name.
fn saved<'a>(
    buf: &'a [f32],
    c: usize,
    outs: usize,
    conv: Option<&ConvGeom>,
) -> PoolSaved<&'a [f32]> {
    let [bn, x_at, conv_y, runs] = carve(buf, layout(c, outs, conv));
    PoolSaved {
        bn: bn_op::saved(bn, c),
        x_at,
        conv_y,
        runs,
    }
}

/// `saved` to fill, after sizing a slot's `saved` and `saved_idx` for it.
fn saved_mut<'a>(
    buf: &'a mut Vec<f32>,
    idx: &mut Vec<u32>,
    c: usize,
    outs: usize,
    conv: Option<&ConvGeom>,
) -> PoolSaved<&'a mut [f32]> {
    let lens = layout(c, outs, conv);
    fit_len(buf, layout_len(lens));
    fit_len(idx, outs);
    let [bn, x_at, conv_y, runs] = carve_mut(buf, lens);
    PoolSaved {
        bn: bn_op::saved_mut(bn, c),
        x_at,
        conv_y,
        runs,
    }
}

impl BnReluPool {
    /// What node `node` (this op) saved.
    pub(super) fn saved<'a>(&self, g: &Graph, node: &Node, slot: &'a Slot) -> PoolSaved<&'a [f32]> {
        saved(&slot.saved, g.shape(self.x)[1], node.shape.numel(), None)
    }
}

impl ConvBnReluPool {
    /// What node `node` (this op) saved.
    pub(super) fn saved<'a>(&self, node: &Node, slot: &'a Slot) -> PoolSaved<&'a [f32]> {
        saved(
            &slot.saved,
            self.geom.cout,
            node.shape.numel(),
            Some(&self.geom),
        )
    }
}

impl Graph {
    /// max_pool2d(relu(batch_norm(x)), 2, 2) for x: (N, C, H, W), as one op.
    /// Like `batch_norm`, `batch_stats` then gives the statistics used.
    pub fn batch_norm_relu_pool(
        &mut self,
        x: Var,
        w: Option<Var>,
        b: Option<Var>,
        stats: BnStats,
    ) -> Result<Var> {
        let (xs, c, spatial) = self.check_batch_norm(x, w, b)?;
        let xd = xs.dims();
        let (ho, wo) = match xd {
            &[_, _, h, w] => (pooled(h), pooled(w)),
            _ => (0, 0),
        };
        if ho == 0 || wo == 0 {
            return Err(Error::Shape(format!(
                "batch_norm_relu_pool: input {xd:?} must be (N, C, H, W) with H, W >= 2"
            )));
        }
        let (h, wd) = (xd[2], xd[3]);
        let out = Shape::new(&[xd[0], c, ho, wo])?;
        let rg =
            self.requires_grad(x) || [w, b].into_iter().flatten().any(|p| self.requires_grad(p));
        let batch = matches!(stats, BnStats::Batch { .. });
        let op = BnReluPool { x, w, b, batch };
        let k = self.push(Op::BatchNormReluPool(op), out, rg);
        let (v, slot, scratch) = self.split_scratch(k);
        let PoolSaved { mut bn, x_at, .. } =
            saved_mut(&mut slot.saved, &mut slot.saved_idx, c, out.numel(), None);
        let (running, eps) = stats.parts(c)?;
        let (xv, wv, bv) = (v.get(x), v.opt(w), v.opt(b));
        bn_kernel::statistics(&mut bn, running, eps, wv, bv, |mean, var| {
            bn_kernel::batch_stats(xv, c, spatial, mean, var)
        });
        let (y, argmax) = (&mut slot.value, &mut slot.saved_idx);
        kernel::forward(
            y,
            argmax,
            x_at,
            xv,
            bn.alpha,
            bn.beta,
            h,
            wd,
            &mut scratch.pool,
        );
        Ok(Graph::node_var(k))
    }
}

/// A convolution's operands and hyperparameters.
pub struct ConvArgs {
    /// The convolution's weight, (Cout, Cin, kh, kw).
    pub w: Var,
    /// The convolution's bias, (Cout), if it has one.
    pub b: Option<Var>,
    /// Step between windows, in pixels, along both height and width (at least 1).
    pub stride: usize,
    /// Zeros added on each side of the input, along both height and width.
    pub pad: usize,
}

impl Graph {
    /// max_pool2d(relu(batch_norm(conv2d(x))), 2, 2), the cnn preset's whole block, as one op.
    /// Besides `batch_norm_relu_pool`'s savings, the BatchNorm's statistics are taken from each
    /// sample's convolution output while it is in cache, and in the backward the gradient of the
    /// convolution's output is made sample by sample inside the convolution's own loop, never
    /// written to memory. `batch_stats` gives the statistics used.
    pub fn conv_bn_relu_pool(
        &mut self,
        x: Var,
        conv: ConvArgs,
        w: Option<Var>,
        b: Option<Var>,
        stats: BnStats,
    ) -> Result<Var> {
        let geom = self.check_conv2d(x, conv.w, conv.b, conv.stride, conv.pad)?;
        let (n, c, h, wd) = (geom.n, geom.cout, geom.ho(), geom.wo());
        self.check_channel_params(w, b, &[n, c, h, wd])?;
        let (ho, wo) = (pooled(h), pooled(wd));
        if ho == 0 || wo == 0 {
            return Err(Error::Shape(format!(
                "conv_bn_relu_pool: the convolution's output {h}x{wd} is too small to pool"
            )));
        }
        let out = Shape::new(&[n, c, ho, wo])?;
        let rg = self.requires_grad(x)
            || [Some(conv.w), conv.b, w, b]
                .into_iter()
                .flatten()
                .any(|p| self.requires_grad(p));
        let batch = matches!(stats, BnStats::Batch { .. });
        let op = ConvBnReluPool {
            x,
            conv_w: conv.w,
            conv_b: conv.b,
            geom,
            w,
            b,
            batch,
            precision: self.precision,
        };
        let k = self.push(Op::ConvBnReluPool(op), out, rg);
        let (v, slot, scratch) = self.split_scratch(k);
        let PoolSaved {
            mut bn,
            x_at,
            conv_y,
            runs,
        } = saved_mut(
            &mut slot.saved,
            &mut slot.saved_idx,
            c,
            out.numel(),
            Some(&geom),
        );
        let (xv, cw, cb) = (v.get(x), v.get(conv.w), v.opt(conv.b));
        let runs_out = batch.then_some(&mut *runs);
        let p = op.precision;
        conv2d::forward(p, conv_y, xv, cw, cb, &geom, runs_out, &mut scratch.conv);
        let (running, eps) = stats.parts(c)?;
        bn_kernel::statistics(&mut bn, running, eps, v.opt(w), v.opt(b), |mean, var| {
            bn_kernel::stats_from_runs(runs, c, h * wd, mean, var)
        });
        let (y, argmax) = (&mut slot.value, &mut slot.saved_idx);
        kernel::forward(
            y,
            argmax,
            x_at,
            conv_y,
            bn.alpha,
            bn.beta,
            h,
            wd,
            &mut scratch.pool,
        );
        Ok(Graph::node_var(k))
    }
}

/// The backward of BatchNormReluPool node `i`.
pub(in crate::graph) fn bn_relu_pool_backward(g: &mut Graph, i: usize, op: BnReluPool, dy: &[f32]) {
    let BnReluPool { x, w, b, batch } = op;
    let (gx, mut gw, mut gb) = (g.take_grad_to_overwrite(x), g.take_opt(w), g.take_opt(b));
    let (mut gx, overwrite) = gx.map_or((None, false), |(g, o)| (Some(g), o));
    let d = g.shape(x).to_vec();
    let (c, h, wd) = (d[1], d[2], d[3]);
    let plane_out = pooled(h) * pooled(wd);
    let planes = dy.len() / plane_out;
    let outs = g.nodes[i].shape.numel();
    let (v, scratch) = g.values_and_scratch();
    let slot = &v.slots[i];
    let PoolSaved { bn, x_at, .. } = saved(&slot.saved, c, outs, None);
    let (y, argmax, xv, mean) = (&slot.value, &slot.saved_idx, v.get(x), bn.mean);
    let coef = kernel::backward_params(
        dy,
        y,
        x_at,
        bn,
        plane_out,
        (xv.len() / c) as f32,
        v.opt(w),
        batch,
        gw.as_deref_mut(),
        gb.as_deref_mut(),
        grow(&mut scratch.bn, kernel::backward_scratch_len(c, planes)),
    );
    if let Some(gx) = gx.as_deref_mut() {
        let (k1, coef) = (coef.k1, coef.coef);
        let pool = &mut scratch.pool;
        kernel::backward_input(
            gx, overwrite, dy, y, argmax, xv, mean, k1, coef, h, wd, pool,
        );
    }
    g.put_grad(x, gx);
    g.put_opt(w, gw);
    g.put_opt(b, gb);
}

/// The backward of ConvBnReluPool node `i`: the BatchNorm's parameter gradients first, then
/// the convolution's backward, which asks for its output's gradient sample by sample.
pub(in crate::graph) fn conv_bn_relu_pool_backward(
    g: &mut Graph,
    i: usize,
    op: ConvBnReluPool,
    dy: &[f32],
) {
    let ConvBnReluPool {
        x,
        conv_w,
        conv_b,
        geom,
        w,
        b,
        batch,
        precision,
    } = op;
    let (mut gx, mut gcw, mut gcb) = (
        g.take_grad_to_overwrite(x),
        g.take_grad(conv_w),
        g.take_opt(conv_b),
    );
    let (mut gw, mut gb) = (g.take_opt(w), g.take_opt(b));
    let (c, h, wd) = (geom.cout, geom.ho(), geom.wo());
    let plane_out = pooled(h) * pooled(wd);
    let planes = dy.len() / plane_out;
    let outs = g.nodes[i].shape.numel();
    let (v, scratch) = g.values_and_scratch();
    let slot = &v.slots[i];
    let PoolSaved {
        bn, x_at, conv_y, ..
    } = saved(&slot.saved, c, outs, Some(&geom));
    let (y, argmax, mean) = (&slot.value, &slot.saved_idx, bn.mean);
    let coef = kernel::backward_params(
        dy,
        y,
        x_at,
        bn,
        plane_out,
        (conv_y.len() / c) as f32,
        v.opt(w),
        batch,
        gw.as_deref_mut(),
        gb.as_deref_mut(),
        grow(&mut scratch.bn, kernel::backward_scratch_len(c, planes)),
    );
    if gx.is_some() || gcw.is_some() || gcb.is_some() {
        let (k1, coef) = (coef.k1, coef.coef);
        let (conv_plane, n_out) = (h * wd, c * plane_out);
        // the convolution's output gradient for sample n, made when its loop needs it
        let upstream = |n: usize, dy_conv: &mut [f32], g_plane: &mut [f32]| {
            let outs = n * n_out..(n + 1) * n_out;
            kernel::sample_input_grad(
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
                g_plane,
            )
        };
        let upstream = conv2d::Upstream::PerSample {
            grad: &upstream,
            scratch: kernel::sample_scratch_len(h, wd),
        };
        conv2d::backward(
            precision,
            upstream,
            v.get(x),
            v.get(conv_w),
            grad_out(&mut gx),
            gcw.as_deref_mut(),
            gcb.as_deref_mut(),
            &geom,
            &mut scratch.conv_partials,
            &mut scratch.conv,
        );
    }
    g.put_taken_grad(x, gx);
    g.put_grad(conv_w, gcw);
    g.put_opt(conv_b, gcb);
    g.put_opt(w, gw);
    g.put_opt(b, gb);
}
