//! Ops that stand for several layers at once, for the memory traffic they save. Each gives
//! exactly the value the separate ops give (see the kernels' notes).

use super::ops::{fill_bn_stats, BnStats};
use super::{Graph, Op, Var};
use crate::kernels::{batch_norm, bn_relu_pool, conv2d};
use crate::tensor::Shape;
use crate::{Error, Result};

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
            &[_, _, h, w] => (bn_relu_pool::pooled(h), bn_relu_pool::pooled(w)),
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
        let k = self.push(Op::BatchNormReluPool { x, w, b, batch }, out, rg);
        // aux: mean var rstd alpha beta (C each), then x at each output's argmax
        self.batch_norm_stats(k, x, w, b, stats, (c, spatial), out.numel())?;
        let (v, slot) = self.split(k);
        super::fit_len(&mut slot.idx, out.numel());
        let (stats, x_at) = slot.aux.split_at_mut(5 * c);
        let (alpha, beta) = stats[3 * c..].split_at(c);
        bn_relu_pool::forward(
            &mut slot.value,
            &mut slot.idx,
            x_at,
            v.get(x),
            alpha,
            beta,
            h,
            wd,
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
        let (ho, wo) = (bn_relu_pool::pooled(h), bn_relu_pool::pooled(wd));
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
        let op = Op::ConvBnReluPool {
            x,
            conv_w: conv.w,
            conv_b: conv.b,
            geom,
            w,
            b,
            batch,
        };
        let k = self.push(op, out, rg);
        let (v, slot) = self.split(k);
        let conv_len = n * c * h * wd;
        // aux: mean var rstd alpha beta (C each) | x at each argmax | the convolution's output |
        // each (sample, channel) run's mean and squared deviations (2 N C)
        super::fit_len(&mut slot.aux, 5 * c + out.numel() + conv_len + 2 * n * c);
        super::fit_len(&mut slot.idx, out.numel());
        let (bn_stats, rest) = slot.aux.split_at_mut(5 * c);
        let (x_at, rest) = rest.split_at_mut(out.numel());
        let (conv_y, runs) = rest.split_at_mut(conv_len);
        let (xv, cw, cb) = (v.get(x), v.get(conv.w), v.opt(conv.b));
        conv2d::forward(conv_y, xv, cw, cb, &geom, batch.then_some(&mut *runs));
        fill_bn_stats(bn_stats, stats, v.opt(w), v.opt(b), |mean, var| {
            // merged in sample order, as batch_norm::batch_stats merges the same runs
            for ch in 0..c {
                let channel = (0..n).map(|i| [runs[2 * (i * c + ch)], runs[2 * (i * c + ch) + 1]]);
                (mean[ch], var[ch]) = batch_norm::merge_runs(channel, h * wd);
            }
        })?;
        let (alpha, beta) = bn_stats[3 * c..].split_at(c);
        let (x_at, idx) = (x_at, &mut slot.idx);
        bn_relu_pool::forward(&mut slot.value, idx, x_at, conv_y, alpha, beta, h, wd);
        Ok(Graph::node_var(k))
    }
}
