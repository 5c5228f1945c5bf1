//! Conv2d, MaxPool2d and AvgPool2d: their forwards and backwards (`kernels::conv2d`,
//! `kernels::max_pool2d`, `kernels::avg_pool2d`).

use super::{shape_err, Op};
use crate::graph::{fit_len, grad_out, Graph, Var};
use crate::kernels::conv2d::{self, ConvGeom};
use crate::kernels::{avg_pool2d, max_pool2d};
use crate::precision::Precision;
use crate::tensor::Shape;
use crate::{Error, Result};

/// A Conv2d node's inputs. It saves nothing: the backward rebuilds each sample's column matrix
/// from x (see `kernels::conv2d`).
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct Conv2d {
    x: Var,
    w: Var,
    b: Option<Var>,
    geom: ConvGeom,
    /// The products' precision, forward and backward.
    precision: Precision,
}

impl Graph {
    /// The geometry of a convolution, after checking that its operands fit.
    pub(super) fn check_conv2d(
        &self,
        x: Var,
        w: Var,
        b: Option<Var>,
        stride: usize,
        pad: usize,
    ) -> Result<ConvGeom> {
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
        Ok(ConvGeom {
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
        let precision = self.precision;
        let op = Conv2d {
            x,
            w,
            b,
            geom,
            precision,
        };
        let k = self.push(Op::Conv2d(op), out, rg);
        let (v, slot, scratch) = self.split_scratch(k);
        let (xv, wv, bv, y) = (v.get(x), v.get(w), v.opt(b), &mut slot.value);
        conv2d::forward(precision, y, xv, wv, bv, &geom, None, &mut scratch.conv);
        Ok(Graph::node_var(k))
    }

    /// Max pooling over k x k windows with the given stride, no padding. x: (N, C, H, W).
    /// The node saves each output's argmax in its input plane (in the slot's `saved_idx`).
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
        fit_len(&mut slot.saved_idx, out.numel());
        max_pool2d::forward(
            &mut slot.value,
            &mut slot.saved_idx,
            v.get(x),
            h,
            w,
            kernel,
            stride,
        );
        Ok(Graph::node_var(k))
    }
}

/// The backward of a Conv2d node.
pub(in crate::graph) fn conv2d_backward(g: &mut Graph, op: Conv2d, dy: &[f32]) {
    let Conv2d {
        x,
        w,
        b,
        geom,
        precision,
    } = op;
    let (mut gx, mut gw, mut gb) = (g.take_grad_to_overwrite(x), g.take_grad(w), g.take_opt(b));
    let (v, scratch) = g.values_and_scratch();
    conv2d::backward(
        precision,
        conv2d::Upstream::Dense(dy),
        v.get(x),
        v.get(w),
        grad_out(&mut gx),
        gw.as_deref_mut(),
        gb.as_deref_mut(),
        &geom,
        &mut scratch.conv_partials,
        &mut scratch.conv,
    );
    g.put_taken_grad(x, gx);
    g.put_grad(w, gw);
    g.put_opt(b, gb);
}

/// The backward of MaxPool2d node `i`, input x with `plane_in` values a plane.
pub(in crate::graph) fn max_pool2d_backward(
    g: &mut Graph,
    i: usize,
    x: Var,
    plane_in: usize,
    dy: &[f32],
) {
    let mut gx = g.take_grad(x);
    if let Some(gx) = gx.as_deref_mut() {
        let d = g.nodes[i].shape.dims();
        let plane_out = d[2] * d[3];
        max_pool2d::backward(gx, dy, &g.slots[i].saved_idx, plane_in, plane_out);
    }
    g.put_grad(x, gx);
}

/// An AvgPool2d node's input and geometry (it saves nothing: every window's weight is
/// 1 / (kh kw)).
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct AvgPool2d {
    x: Var,
    h: usize,
    w: usize,
    kernel: avg_pool2d::Size2,
    stride: avg_pool2d::Size2,
}

impl Graph {
    /// Average pooling over kh x kw windows with the given strides, no padding, the output
    /// size rounded down. x: (N, C, H, W).
    pub fn avg_pool2d(
        &mut self,
        x: Var,
        kernel: avg_pool2d::Size2,
        stride: avg_pool2d::Size2,
    ) -> Result<Var> {
        let xs = self.shape_inline(x);
        let xd = xs.dims();
        if xd.len() != 4 {
            return shape_err(format!("avg_pool2d: input {xd:?} must be (N, C, H, W)"));
        }
        if kernel.0 == 0 || kernel.1 == 0 || stride.0 == 0 || stride.1 == 0 {
            return Err(Error::Invalid(
                "avg_pool2d: kernel size and stride must be positive".into(),
            ));
        }
        let (n, c, h, w) = (xd[0], xd[1], xd[2], xd[3]);
        if h < kernel.0 || w < kernel.1 {
            return shape_err(format!(
                "avg_pool2d: input {xd:?} is smaller than the window {}x{}",
                kernel.0, kernel.1
            ));
        }
        let (ho, wo) = avg_pool2d::out_dims(h, w, kernel, stride);
        let rg = self.requires_grad(x);
        let op = AvgPool2d {
            x,
            h,
            w,
            kernel,
            stride,
        };
        let k = self.push(Op::AvgPool2d(op), Shape::new(&[n, c, ho, wo])?, rg);
        let (v, slot) = self.split(k);
        avg_pool2d::forward(&mut slot.value, v.get(x), h, w, kernel, stride);
        Ok(Graph::node_var(k))
    }
}

/// The backward of an AvgPool2d node: each output's gradient spread evenly over its window.
pub(in crate::graph) fn avg_pool2d_backward(g: &mut Graph, op: AvgPool2d, dy: &[f32]) {
    let mut gx = g.take_grad(op.x);
    if let Some(gx) = gx.as_deref_mut() {
        avg_pool2d::backward(gx, dy, op.h, op.w, op.kernel, op.stride);
    }
    g.put_grad(op.x, gx);
}
