//! The forward ops: check shapes, record a node, run the forward kernel into its buffer.

use super::{fit_len, Graph, Op, Slot, Var, VarKind};
use crate::kernels::{
    batch_norm, conv2d, dropout, elementwise, linear, loss, max_pool2d, relu, sparse_linear,
};

/// Below this fraction of nonzeros an input takes the sparse Linear kernels. Measured on the
/// seed's first layer: the sparse kernels win up to about half nonzeros.
const SPARSE_DENSITY: f32 = 0.5;
use crate::tensor::Shape;
use crate::{Error, Result};

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

/// Fill a BatchNorm statistics block [mean var rstd alpha beta] (C each): mean and biased
/// variance from `batch` (this batch's) or copied from the running statistics, then the
/// per-channel affine map (`batch_norm::fold`).
pub(super) fn fill_bn_stats(
    block: &mut [f32],
    stats: BnStats,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    batch: impl FnOnce(&mut [f32], &mut [f32]),
) -> Result<()> {
    let c = block.len() / 5;
    let (mean, rest) = block.split_at_mut(c);
    let (var, rest) = rest.split_at_mut(c);
    let (rstd, rest) = rest.split_at_mut(c);
    let (alpha, beta) = rest.split_at_mut(c);
    let eps = match stats {
        BnStats::Batch { eps } => {
            batch(mean, var);
            eps
        }
        BnStats::Running {
            mean: m,
            var: s,
            eps,
        } => {
            if m.len() != c || s.len() != c {
                return shape_err(format!(
                    "batch_norm: running statistics must have {c} values"
                ));
            }
            mean.copy_from_slice(m);
            var.copy_from_slice(s);
            eps
        }
    };
    batch_norm::fold(mean, var, eps, weight, bias, alpha, beta, rstd);
    Ok(())
}

fn shape_err<T>(msg: String) -> Result<T> {
    Err(Error::Shape(msg))
}

impl Graph {
    /// y = x W^T + b. x: (\*, I), w: (O, I), b: (O); y: (\*, O).
    /// A parameter stored transposed (`ParamLayout::Transposed`) is W^T (I, O) in memory.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        let transposed = self.stored_transposed(w);
        let (xs, mut ws) = (self.shape_inline(x), self.shape_inline(w));
        if transposed {
            ws = Shape::new(&[ws.dims()[1], ws.dims()[0]])?;
        }
        let (xd, wd) = (xs.dims(), ws.dims());
        if wd.len() != 2 || xd.is_empty() || xd[xd.len() - 1] != wd[1] {
            return shape_err(format!(
                "linear: input {xd:?} does not fit weight {wd:?} (the input's last dimension must be {})",
                wd.get(1).copied().unwrap_or(0)
            ));
        }
        let (o, i) = (wd[0], wd[1]);
        if let Some(b) = b {
            if self.shape(b) != [o] {
                return shape_err(format!("linear: bias {:?} must be [{o}]", self.shape(b)));
            }
        }
        let n = xs.numel() / i.max(1);
        let mut out = xd.to_vec();
        *out.last_mut().unwrap() = o;
        let rg = self.requires_grad(x)
            || self.requires_grad(w)
            || b.is_some_and(|b| self.requires_grad(b));
        // Model inputs (no gradient needed) that are mostly exact zeros take the sparse kernels:
        // with the CSR the input came with, or one made here when the density is low.
        let sparse = match x.0 {
            // only model inputs: intermediate values (a ReLU's output in eval mode, say) are
            // rarely sparse enough for the sparse kernels to beat the GEMM
            VarKind::Node(j)
                if !self.requires_grad(x)
                    && matches!(self.nodes[self.nodes[j].storage].op, Op::Leaf) =>
            {
                let src = self.nodes[j].storage;
                let rows_match = self.slots[src].csr.ptr.len() == n + 1;
                if self.slots[src].csr_width == i && rows_match {
                    Some(src)
                } else if sparse_linear::density(self.value(x)) < SPARSE_DENSITY {
                    Some(self.nodes.len()) // this node's own slot, filled below
                } else {
                    None
                }
            }
            _ => None,
        };
        let k = self.push(
            Op::Linear {
                x,
                w,
                b,
                sparse,
                transposed,
            },
            Shape::new(&out)?,
            rg,
        );
        let needs_dw = self.grad_enabled() && self.requires_grad(w);
        let (v, slot) = self.split(k);
        let Some(src) = sparse else {
            linear::forward(
                &mut slot.value,
                v.get(x),
                v.get(w),
                transposed,
                v.opt(b),
                n,
                i,
                o,
            );
            return Ok(Graph::node_var(k));
        };
        if src == k {
            sparse_linear::to_csr(v.get(x), i, &mut slot.csr);
            slot.csr_width = i;
        }
        // the forward reads rows of W^T: the stored weight itself, or a transposed copy kept
        // in aux until the weight changes
        let key = match w.0 {
            VarKind::Param(p) => Some((p, v.params.version(p))),
            VarKind::Node(_) => None,
        };
        if !transposed && (key.is_none() || slot.transposed != key || slot.aux.len() != o * i) {
            fit_len(&mut slot.aux, o * i);
            sparse_linear::transpose(&mut slot.aux, v.get(w), o, i);
            slot.transposed = key;
        }
        let Slot {
            value, csr, csc, ..
        } = slot;
        let csr = if src == k { &*csr } else { &v.slots[src].csr };
        let wt = if transposed { v.get(w) } else { &slot.aux };
        // The weight gradient will need x by columns: that form is built here, beside the
        // forward's parallel rows, instead of alone at the start of the backward.
        if needs_dw {
            rayon::join(
                || sparse_linear::forward(value, csr, wt, v.opt(b), o),
                || sparse_linear::csr_to_csc(csr, i, csc),
            );
        } else {
            sparse_linear::forward(value, csr, wt, v.opt(b), o);
        }
        slot.csc_ready = needs_dw;
        Ok(Graph::node_var(k))
    }

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
        let k = self.push(
            Op::BatchNorm {
                x,
                w,
                b,
                spatial,
                batch,
            },
            xs,
            rg,
        );
        self.batch_norm_stats(k, x, w, b, stats, (c, spatial), 0)?;
        let (v, slot) = self.split(k);
        let (alpha, beta) = slot.aux[3 * c..5 * c].split_at(c);
        batch_norm::affine(&mut slot.value, v.get(x), alpha, beta, spatial);
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

    /// Size node k's aux to 5 C + `extra` values and fill the first 5 C with mean, var, rstd,
    /// alpha, beta. `dims`: channels and values per channel and sample.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn batch_norm_stats(
        &mut self,
        k: usize,
        x: Var,
        w: Option<Var>,
        b: Option<Var>,
        stats: BnStats,
        (c, spatial): (usize, usize),
        extra: usize,
    ) -> Result<()> {
        let (v, slot) = self.split(k);
        fit_len(&mut slot.aux, 5 * c + extra);
        let xv = v.get(x);
        fill_bn_stats(
            &mut slot.aux[..5 * c],
            stats,
            v.opt(w),
            v.opt(b),
            |mean, var| batch_norm::batch_stats(xv, c, spatial, mean, var),
        )
    }

    /// The mean and biased variance a `batch_norm` node used (C each).
    pub fn batch_stats(&self, y: Var) -> Option<(&[f32], &[f32])> {
        match y.0 {
            VarKind::Node(i) => match self.nodes[i].op {
                Op::ConvBnReluPool { geom, .. } => {
                    let (c, aux) = (geom.cout, &self.slots[i].aux);
                    Some((&aux[..c], &aux[c..2 * c]))
                }
                Op::BatchNorm { x, .. } | Op::BatchNormReluPool { x, .. } => {
                    let c = self.shape(x)[1];
                    let aux = &self.slots[i].aux;
                    Some((&aux[..c], &aux[c..2 * c]))
                }
                _ => None,
            },
            VarKind::Param(_) => None,
        }
    }

    /// max(x, 0) elementwise, any shape; NaN passes through, as in PyTorch.
    pub fn relu(&mut self, x: Var) -> Result<Var> {
        let rg = self.requires_grad(x);
        let k = self.push(Op::Relu { x }, self.shape_inline(x), rg);
        let (v, slot) = self.split(k);
        relu::forward(&mut slot.value, v.get(x));
        Ok(Graph::node_var(k))
    }

    /// Inverted dropout with drop probability p, drawing from `self.rng`.
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
        fit_len(&mut slot.aux, shape.numel());
        dropout::forward(&mut slot.value, &mut slot.aux, v.get(x), p, &mut rng);
        self.rng = rng;
        Ok(Graph::node_var(k))
    }

    /// The geometry of a convolution, after checking that its operands fit.
    pub(super) fn check_conv2d(
        &self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
    ) -> Result<conv2d::ConvGeom> {
        let (xs, ws) = (self.shape_inline(x), self.shape_inline(w));
        let (xd, wd) = (xs.dims(), ws.dims());
        if xd.len() != 4 || wd.len() != 4 || xd[1] != wd[1] {
            return shape_err(format!(
                "conv2d: input {xd:?} does not fit weight {wd:?} (input must be (N, {}, H, W))",
                wd.get(1).copied().unwrap_or(0)
            ));
        }
        if stride == 0 {
            return Err(Error::Invalid("conv2d: stride must be positive".into()));
        }
        if xd[2] + 2 * pad < wd[2] || xd[3] + 2 * pad < wd[3] {
            return shape_err(format!(
                "conv2d: input {xd:?} with padding {pad} is smaller than the kernel {}x{}",
                wd[2], wd[3]
            ));
        }
        if let Some(b) = b {
            if self.shape(b) != [wd[0]] {
                return shape_err(format!(
                    "conv2d: bias {:?} must be [{}]",
                    self.shape(b),
                    wd[0]
                ));
            }
        }
        Ok(conv2d::ConvGeom {
            n: xd[0],
            cin: xd[1],
            h: xd[2],
            w: xd[3],
            cout: wd[0],
            kh: wd[2],
            kw: wd[3],
            stride,
            pad,
        })
    }

    /// 2-d convolution. x: (N, Cin, H, W), w: (Cout, Cin, kh, kw), b: (Cout).
    pub fn conv2d(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
    ) -> Result<Var> {
        let geom = self.check_conv2d(x, w, b, stride, pad)?;
        let out = Shape::new(&[geom.n, geom.cout, geom.ho(), geom.wo()])?;
        let rg = self.requires_grad(x)
            || self.requires_grad(w)
            || b.is_some_and(|b| self.requires_grad(b));
        let k = self.push(Op::Conv2d { x, w, b, geom }, out, rg);
        let (v, slot) = self.split(k);
        conv2d::forward(&mut slot.value, v.get(x), v.get(w), v.opt(b), &geom, None);
        Ok(Graph::node_var(k))
    }

    /// Max pooling over k x k windows with the given stride, no padding. x: (N, C, H, W).
    pub fn max_pool2d(&mut self, x: Var, kernel: usize, stride: usize) -> Result<Var> {
        let xs = self.shape_inline(x);
        let xd = xs.dims();
        if xd.len() != 4 {
            return shape_err(format!("max_pool2d: input {xd:?} must be (N, C, H, W)"));
        }
        if kernel == 0 || stride == 0 {
            return Err(Error::Invalid(
                "max_pool2d: kernel size and stride must be positive".into(),
            ));
        }
        let (h, w) = (xd[2], xd[3]);
        let (ho, wo) = (
            max_pool2d::out_size(h, kernel, stride),
            max_pool2d::out_size(w, kernel, stride),
        );
        if ho == 0 || wo == 0 {
            return shape_err(format!(
                "max_pool2d: input {xd:?} is smaller than the {kernel}x{kernel} window"
            ));
        }
        let out = Shape::new(&[xd[0], xd[1], ho, wo])?;
        let rg = self.requires_grad(x);
        let k = self.push(Op::MaxPool2d { x, plane_in: h * w }, out, rg);
        let (v, slot) = self.split(k);
        fit_len(&mut slot.idx, out.numel());
        max_pool2d::forward(
            &mut slot.value,
            &mut slot.idx,
            v.get(x),
            h,
            w,
            kernel,
            stride,
        );
        Ok(Graph::node_var(k))
    }

    /// The same values with another shape (same number of elements). No copy for nodes.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let new = Shape::new(shape)?;
        if new.numel() != self.shape_inline(x).numel() {
            return shape_err(format!(
                "reshape: cannot view {:?} as {shape:?}",
                self.shape(x)
            ));
        }
        match x.0 {
            VarKind::Node(src) => {
                let rg = self.nodes[src].requires_grad;
                let storage = self.nodes[src].storage;
                let k = self.push(Op::Alias, new, rg);
                self.nodes[k].storage = storage;
                Ok(Graph::node_var(k))
            }
            VarKind::Param(p) => {
                // a parameter viewed with another shape: a copy (its gradient is not tracked)
                let data = self
                    .params
                    .to_torch_layout(p, self.params.value(p))
                    .to_vec();
                let t = crate::tensor::Tensor::new(shape, data)?;
                self.input(&t, false)
            }
        }
    }

    /// (N, d1, d2, ...) -> (N, d1 * d2 * ...), as nn.Flatten does.
    pub fn flatten(&mut self, x: Var) -> Result<Var> {
        let d = self.shape(x).to_vec();
        if d.is_empty() {
            return shape_err("flatten: a scalar has no batch dimension".into());
        }
        let rest: usize = d[1..].iter().product();
        self.reshape(x, &[d[0], rest])
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

    /// Mean cross entropy of logits (N, C) against class indices (N).
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
        fit_len(&mut slot.aux, d[0] * classes);
        slot.idx.clear();
        slot.idx.extend_from_slice(target);
        slot.value[0] = loss::cross_entropy_forward(&mut slot.aux, v.get(logits), target, classes);
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
        slot.aux.clear();
        slot.aux.extend_from_slice(target);
        slot.value[0] = forward(v.get(x), target);
        Ok(Graph::node_var(k))
    }
}
