//! LayerNorm and GroupNorm: per-sample normalisation (no running statistics, no difference
//! between training and eval); their forwards and backwards (`kernels::layer_norm`,
//! `kernels::group_norm`, where the gradients are derived).

use super::{carve, carve_mut, layout_len, shape_err, Op};
use crate::graph::{fit_len, Graph, Var};
use crate::kernels::{group_norm, layer_norm};
use crate::Result;

/// What a normalisation node normalises over.
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) enum Groups {
    /// LayerNorm: each row of the last `d` values (the normalized_shape's elements).
    Trailing { d: usize },
    /// GroupNorm of (N, C, S): `groups` groups of C / groups channels, per sample.
    Channels { c: usize, s: usize, groups: usize },
}

/// A LayerNorm or GroupNorm node's inputs. It saves the mean and 1/std of each group it
/// normalised (`saved_layout`).
#[derive(Clone, Copy, Debug)]
pub(in crate::graph) struct Norm {
    x: Var,
    w: Option<Var>,
    b: Option<Var>,
    over: Groups,
}

/// The node's saved values: [mean | rstd], one each per normalised group.
fn saved_layout(groups: usize) -> [usize; 2] {
    [groups, groups]
}

impl Graph {
    /// nn.functional.layer_norm over the last `normalized_shape.len()` dimensions of x, which
    /// must equal `normalized_shape`; w and b (the normalized_shape's elements) optional.
    pub fn layer_norm(
        &mut self,
        x: Var,
        normalized_shape: &[usize],
        w: Option<Var>,
        b: Option<Var>,
        eps: f32,
    ) -> Result<Var> {
        let xs = self.shape_inline(x);
        let xd = xs.dims();
        let k = normalized_shape.len();
        if k == 0 || xd.len() < k || xd[xd.len() - k..] != *normalized_shape {
            return shape_err(format!(
                "layer_norm: input {xd:?} does not end in normalized_shape {normalized_shape:?}"
            ));
        }
        let d: usize = normalized_shape.iter().product();
        self.check_affine("layer_norm", w, b, d)?;
        self.norm(x, w, b, Groups::Trailing { d }, eps)
    }

    /// nn.functional.group_norm: x (N, C, *) in `groups` groups of C / groups consecutive
    /// channels, each normalised per sample over its channels and positions; w and b (C).
    pub fn group_norm(
        &mut self,
        x: Var,
        groups: usize,
        w: Option<Var>,
        b: Option<Var>,
        eps: f32,
    ) -> Result<Var> {
        let xs = self.shape_inline(x);
        let xd = xs.dims();
        if xd.len() < 2 || groups == 0 || !xd[1].is_multiple_of(groups) {
            return shape_err(format!(
                "group_norm: input {xd:?} must be (N, C, *) with C divisible by {groups} groups"
            ));
        }
        let (c, s) = (xd[1], xd[2..].iter().product());
        self.check_affine("group_norm", w, b, c)?;
        self.norm(x, w, b, Groups::Channels { c, s, groups }, eps)
    }

    fn check_affine(&self, what: &str, w: Option<Var>, b: Option<Var>, len: usize) -> Result<()> {
        for p in [w, b].into_iter().flatten() {
            if self.shape_inline(p).numel() != len {
                return shape_err(format!(
                    "{what}: weight and bias must have {len} values, got {:?}",
                    self.shape(p)
                ));
            }
        }
        Ok(())
    }

    fn norm(
        &mut self,
        x: Var,
        w: Option<Var>,
        b: Option<Var>,
        over: Groups,
        eps: f32,
    ) -> Result<Var> {
        let xs = self.shape_inline(x);
        let numel = xs.numel();
        let count = match over {
            Groups::Trailing { d } => numel / d,
            Groups::Channels { c, s, groups } => numel / (c * s) * groups,
        };
        let rg =
            self.requires_grad(x) || [w, b].into_iter().flatten().any(|p| self.requires_grad(p));
        let k = self.push(Op::Norm(Norm { x, w, b, over }), xs, rg);
        let (v, slot) = self.split(k);
        let lens = saved_layout(count);
        fit_len(&mut slot.saved, layout_len(lens));
        let [mean, rstd] = carve_mut(&mut slot.saved, lens);
        let (xv, wv, bv) = (v.get(x), v.opt(w), v.opt(b));
        match over {
            Groups::Trailing { d } => {
                layer_norm::forward(&mut slot.value, mean, rstd, xv, wv, bv, d, eps)
            }
            Groups::Channels { c, s, groups } => {
                group_norm::forward(&mut slot.value, mean, rstd, xv, wv, bv, c, s, groups, eps)
            }
        }
        Ok(Graph::node_var(k))
    }
}

/// The backward of normalisation node `i`: dx, and dweight, dbias when affine.
pub(in crate::graph) fn backward(g: &mut Graph, i: usize, op: Norm, dy: &[f32]) {
    let Norm { x, w, b, over } = op;
    let (mut gx, mut gw, mut gb) = (g.take_grad(x), g.take_opt(w), g.take_opt(b));
    let saved = std::mem::take(&mut g.slots[i].saved);
    let groups = saved.len() / 2;
    let [mean, rstd] = carve(&saved, saved_layout(groups));
    let (xv, wv) = (g.value(x), w.map(|w| g.value(w)));
    // dx must be computed whenever the parameters' gradients are (they share the sums), so a
    // throwaway buffer stands in for an input that needs none
    let mut unused = Vec::new();
    let dx = match gx.as_deref_mut() {
        Some(gx) => gx,
        None => {
            unused.resize(xv.len(), 0.0);
            &mut unused[..]
        }
    };
    match over {
        Groups::Trailing { d } => layer_norm::backward(
            dx,
            gw.as_deref_mut(),
            gb.as_deref_mut(),
            dy,
            xv,
            mean,
            rstd,
            wv,
            d,
        ),
        Groups::Channels { c, s, groups } => group_norm::backward(
            dx,
            gw.as_deref_mut(),
            gb.as_deref_mut(),
            dy,
            xv,
            mean,
            rstd,
            wv,
            c,
            s,
            groups,
        ),
    }
    g.slots[i].saved = saved;
    g.put_grad(x, gx);
    g.put_opt(w, gw);
    g.put_opt(b, gb);
}
