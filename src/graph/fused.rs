//! Ops that stand for several layers at once, for the memory traffic they save. Each gives
//! exactly the value the separate ops give (see the kernels' notes).

use super::ops::BnStats;
use super::{Graph, Op, Var};
use crate::kernels::bn_relu_pool;
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
