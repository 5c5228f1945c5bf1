//! BatchNorm: the op, the layout of the statistics it saves (which the fused ops save too, in
//! the same layout), and its backward. The arithmetic is `kernels::batch_norm`'s.

use super::{carve, carve_mut, shape_err, Op};
use crate::graph::{fit_len, grad_out, grow, Graph, Var, VarKind};
use crate::kernels::batch_norm::{self as kernel, Running, Saved};
use crate::tensor::Shape;
use crate::Result;

/// Where BatchNorm takes its statistics from.
#[derive(Clone, Copy, Debug)]
pub enum BnStats<'a> {
    /// This batch's mean and biased variance (training, or `track_running_stats = false`).
    Batch {
        /// Added to the variance before the square root.
        eps: f32,
    },
    /// Fixed running statistics (eval mode).
    Running {
        /// The per-channel mean (C values).
        mean: &'a [f32],
        /// The per-channel variance (C values), used as it is.
        var: &'a [f32],
        /// Added to the variance before the square root.
        eps: f32,
    },
}

impl<'a> BnStats<'a> {
    /// The running statistics to normalise with (None: this batch's), after checking that they
    /// have `c` values each; and eps.
    pub(super) fn parts(&self, c: usize) -> Result<(Option<Running<'a>>, f32)> {
        match *self {
            BnStats::Batch { eps } => Ok((None, eps)),
            BnStats::Running { mean, var, eps } => {
                if mean.len() != c || var.len() != c {
                    return shape_err(format!(
                        "batch_norm: running statistics must have {c} values"
                    ));
                }
                Ok((Some(Running { mean, var }), eps))
            }
        }
    }
}

/// A BatchNorm node's inputs.
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct BatchNorm {
    x: Var,
    w: Option<Var>,
    b: Option<Var>,
    /// Values per channel and sample.
    spatial: usize,
    /// Whether mean and var are this batch's statistics (training) or fixed running
    /// statistics (eval).
    batch: bool,
}

/// The layout of the saved statistics block: mean, var, rstd, alpha, beta, C values each
/// (`kernels::batch_norm::Saved`). A BatchNorm node saves this block alone; the fused ops
/// save it first, then their own values.
fn layout(c: usize) -> [usize; 5] {
    [c; 5]
}

/// The values the statistics block of `c` channels takes.
pub(super) fn saved_len(c: usize) -> usize {
    super::layout_len(layout(c))
}

/// The statistics block of `c` channels at the start of `buf`, by name.
pub(super) fn saved(buf: &[f32], c: usize) -> Saved<&[f32]> {
    let [mean, var, rstd, alpha, beta] = carve(buf, layout(c));
    Saved {
        mean,
        var,
        rstd,
        alpha,
        beta,
    }
}

/// `saved`, to fill.
pub(super) fn saved_mut(buf: &mut [f32], c: usize) -> Saved<&mut [f32]> {
    let [mean, var, rstd, alpha, beta] = carve_mut(buf, layout(c));
    Saved {
        mean,
        var,
        rstd,
        alpha,
        beta,
    }
}

impl Graph {
    /// Batch normalisation of x: (N, C, *) with per-channel weight and bias (C).
    /// With `BnStats::Batch`, `batch_stats` then gives this batch's mean and biased variance.
    pub fn batch_norm(
        &mut self,
        x: Var,
        w: Option<Var>,
        b: Option<Var>,
        stats: BnStats,
    ) -> Result<Var> {
        let (xs, c, spatial) = self.check_batch_norm(x, w, b)?;
        let rg =
            self.requires_grad(x) || [w, b].into_iter().flatten().any(|p| self.requires_grad(p));
        let batch = matches!(stats, BnStats::Batch { .. });
        let op = BatchNorm {
            x,
            w,
            b,
            spatial,
            batch,
        };
        let k = self.push(Op::BatchNorm(op), xs, rg);
        let (v, slot) = self.split(k);
        fit_len(&mut slot.saved, saved_len(c));
        let (running, eps) = stats.parts(c)?;
        let block = saved_mut(&mut slot.saved, c);
        let (xv, wv, bv) = (v.get(x), v.opt(w), v.opt(b));
        kernel::forward(&mut slot.value, xv, spatial, eps, wv, bv, running, block);
        Ok(Graph::node_var(k))
    }

    /// The input's shape, its channels and values per channel and sample, after checking that
    /// weight and bias have one value per channel.
    pub(super) fn check_batch_norm(
        &self,
        x: Var,
        w: Option<Var>,
        b: Option<Var>,
    ) -> Result<(Shape, usize, usize)> {
        let xs = self.shape_inline(x);
        let xd = xs.dims();
        if xd.len() < 2 {
            return shape_err(format!(
                "batch_norm: input {xd:?} needs at least 2 dimensions (N, C, ...)"
            ));
        }
        let c = xd[1];
        let spatial: usize = xd[2..].iter().product();
        self.check_channel_params(w, b, xd)?;
        Ok((xs, c, spatial))
    }

    /// BatchNorm's weight and bias, if present, must have one value per channel of `input`.
    pub(super) fn check_channel_params(
        &self,
        w: Option<Var>,
        b: Option<Var>,
        input: &[usize],
    ) -> Result<()> {
        let c = input[1];
        for p in [w, b].into_iter().flatten() {
            if self.shape(p) != [c] {
                return shape_err(format!(
                    "batch_norm: weight/bias {:?} must be [{c}] for input {input:?}",
                    self.shape(p)
                ));
            }
        }
        Ok(())
    }

    /// The mean and biased variance a `batch_norm` node (or a fused op's BatchNorm) used
    /// (C each).
    pub fn batch_stats(&self, y: Var) -> Option<(&[f32], &[f32])> {
        let VarKind::Node(i) = y.0 else { return None };
        let (node, slot) = (&self.nodes[i], &self.slots[i]);
        let block = match node.op {
            Op::BatchNorm(op) => saved(&slot.saved, self.shape(op.x)[1]),
            Op::BatchNormReluPool(op) => op.saved(self, node, slot).bn,
            Op::ConvBnReluPool(op) => op.saved(node, slot).bn,
            _ => return None,
        };
        Some((block.mean, block.var))
    }
}

/// The backward of BatchNorm node `i` (`kernels::batch_norm::backward`).
pub(in crate::graph) fn backward(g: &mut Graph, i: usize, op: BatchNorm, dy: &[f32]) {
    let BatchNorm {
        x,
        w,
        b,
        spatial,
        batch,
    } = op;
    let (mut gx, mut gw, mut gb) = (g.take_grad_to_overwrite(x), g.take_opt(w), g.take_opt(b));
    let c = g.shape(x)[1];
    let (v, scratch) = g.values_and_scratch();
    kernel::backward(
        dy,
        v.get(x),
        spatial,
        saved(&v.slots[i].saved, c),
        v.opt(w),
        batch,
        grad_out(&mut gx),
        gw.as_deref_mut(),
        gb.as_deref_mut(),
        grow(&mut scratch.bn, kernel::backward_scratch_len(c)),
    );
    g.put_taken_grad(x, gx);
    g.put_opt(w, gw);
    g.put_opt(b, gb);
}
