//! Folding eval-mode BatchNorm away for inference, with PyTorch's formulas
//! (`torch.nn.utils.fusion.fuse_linear_bn_eval`, `fuse_conv_bn_eval`).
//!
//! In eval mode a BatchNorm is a per-channel affine map: with
//! `s = weight / sqrt(running_var + eps)` and `t = bias - running_mean * s`, it gives `z * s + t`.
//! - After a Linear or Conv2d (`y = W x + b`): `s (W x + b) + t`, so the layer's output row (or
//!   output channel) k gets `W'[k] = W[k] s[k]` and `b'[k] = (b[k] - running_mean[k]) s[k] +
//!   bias[k]`, PyTorch's order of operations.
//! - Before a Linear that takes its output directly (BatchNorm after the activation):
//!   `W (z s + t) + b`, so input column j gets `W'[:, j] = W[:, j] s[j]` and
//!   `b' = b + W t`.
//!
//! The folded BatchNorm becomes an Identity in its place, so every other layer keeps its name
//! and the state dict loses exactly that BatchNorm's entries.

use crate::graph::{ParamId, ParamStore};
use crate::nn::{BatchNorm, Conv2d, Identity, Layer, Linear, Net};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// What `fold` did to each BatchNorm, by its state-dict path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FoldReport {
    /// (BatchNorm, the layer it was folded into).
    pub folded: Vec<(String, String)>,
    /// (BatchNorm, why it stays).
    pub kept: Vec<(String, String)>,
}

/// The per-channel scale and shift of an eval-mode BatchNorm: `s = weight / sqrt(var + eps)`,
/// `t = bias - mean s`, or an error when it has no running statistics (it then normalises with
/// each batch's own, which no fixed layer can do).
pub fn bn_scale_shift(bn: &BatchNorm, params: &ParamStore) -> Result<(Vec<f32>, Vec<f32>)> {
    if !bn.config.track_running_stats {
        return Err(Error::Invalid(
            "it keeps no running statistics (track_running_stats=False), so eval mode uses each \
             batch's own"
                .into(),
        ));
    }
    let c = bn.num_features;
    let ones = vec![1.0; c];
    let zeros = vec![0.0; c];
    let w = bn.weight.map_or(&ones[..], |p| params.value(p));
    let b = bn.bias.map_or(&zeros[..], |p| params.value(p));
    let eps = bn.config.eps;
    let s: Vec<f32> = (0..c)
        .map(|k| w[k] * (1.0 / (bn.running_var.data[k] + eps).sqrt()))
        .collect();
    let t = (0..c)
        .map(|k| b[k] - bn.running_mean.data[k] * s[k])
        .collect();
    Ok((s, t))
}

/// PyTorch's `fuse_linear_bn_eval` / `fuse_conv_bn_eval` weights: `weight` has the BatchNorm's
/// channels as its first dimension (Linear (O, I), Conv2d (O, I, k, k)), in PyTorch's layout;
/// `bias` is the layer's (None: zeros). Gives the fused weight and bias.
pub fn fuse_before(
    weight: &[f32],
    bias: Option<&[f32]>,
    bn: &BatchNorm,
    params: &ParamStore,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let c = bn.num_features;
    if c == 0 || !weight.len().is_multiple_of(c) || bias.is_some_and(|b| b.len() != c) {
        return Err(Error::Shape(format!(
            "fold: a layer with {} weights does not have {c} output channels",
            weight.len()
        )));
    }
    let (scale, _) = bn_scale_shift(bn, params)?;
    let beta = bn.bias.map(|p| params.value(p));
    let per = weight.len() / c;
    let w = weight
        .chunks(per)
        .zip(&scale)
        .flat_map(|(row, &s)| row.iter().map(move |&v| v * s))
        .collect();
    let b = (0..c)
        .map(|k| {
            let bk = bias.map_or(0.0, |b| b[k]);
            (bk - bn.running_mean.data[k]) * scale[k] + beta.map_or(0.0, |b| b[k])
        })
        .collect();
    Ok((w, b))
}

/// A Linear after the BatchNorm, taking its output directly: weight (O, F) in PyTorch's
/// layout with F the BatchNorm's features, `bias` the Linear's (None: zeros).
pub fn fuse_after(
    weight: &[f32],
    bias: Option<&[f32]>,
    bn: &BatchNorm,
    params: &ParamStore,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let f = bn.num_features;
    if f == 0 || !weight.len().is_multiple_of(f) {
        return Err(Error::Shape(format!(
            "fold: a Linear with {} weights does not take {f} features",
            weight.len()
        )));
    }
    let (s, t) = bn_scale_shift(bn, params)?;
    let o = weight.len() / f;
    let mut w = weight.to_vec();
    let mut b = bias.map_or(vec![0.0; o], <[f32]>::to_vec);
    for (row, bk) in w.chunks_mut(f).zip(&mut b) {
        // b' = b + W t, from the original weights, then the columns scaled
        *bk += row.iter().zip(&t).map(|(wv, tv)| wv * tv).sum::<f32>();
        for (wv, sv) in row.iter_mut().zip(&s) {
            *wv *= sv;
        }
    }
    Ok((w, b))
}

/// Where a leaf layer is: indices from the Net's blocks down through its containers.
type LeafPath = Vec<usize>;

/// Fold every BatchNorm of `net` (in eval mode) into the Linear or Conv2d right before it, or
/// else into the Linear right after it that takes its output; the others stay, with the reason.
/// The folded BatchNorms become Identity layers.
pub fn fold(net: &mut Net, params: &mut ParamStore) -> Result<FoldReport> {
    let mut leaves = Vec::new();
    for (i, (name, layer)) in net.blocks.iter().enumerate() {
        collect_leaves(layer, vec![i], name.clone(), &mut leaves);
    }
    let mut report = FoldReport::default();
    for k in 0..leaves.len() {
        let (path, name) = leaves[k].clone();
        let Layer::BatchNorm(bn) = leaf(net, &path) else {
            continue;
        };
        let prev = k.checked_sub(1).map(|j| &leaves[j]);
        let next = leaves.get(k + 1);
        let before =
            prev.filter(|(p, _)| matches!(leaf(net, p), Layer::Linear(_) | Layer::Conv2d(_)));
        let after = next.filter(|(p, _)| {
            matches!(leaf(net, p), Layer::Linear(l) if l.in_features == bn.num_features && !l.flatten_input)
        });
        let (target, into_before) = match (before, after) {
            (Some(t), _) => (t.clone(), true),
            (None, Some(t)) => (t.clone(), false),
            (None, None) => {
                report.kept.push((
                    name,
                    "no Linear or Conv2d right before it, and no Linear right after it".into(),
                ));
                continue;
            }
        };
        let bn = match leaf(net, &path) {
            Layer::BatchNorm(bn) => bn,
            _ => unreachable!("checked above"),
        };
        let fused = match leaf(net, &target.0) {
            Layer::Linear(l) => fuse_linear(l, bn, params, into_before),
            Layer::Conv2d(c) => fuse_conv(c, bn, params),
            _ => unreachable!("checked above"),
        };
        let (w, b) = match fused {
            Ok(wb) => wb,
            Err(e) => {
                report.kept.push((name, strip(&e)));
                continue;
            }
        };
        set_weights(leaf_mut(net, &target.0), params, &w, &b)?;
        *leaf_mut(net, &path) = Layer::Identity(Identity);
        report.folded.push((name, target.1));
    }
    Ok(report)
}

fn strip(e: &Error) -> String {
    match e {
        Error::Invalid(m) | Error::Shape(m) => m.clone(),
        other => other.to_string(),
    }
}

fn fuse_linear(
    l: &Linear,
    bn: &BatchNorm,
    params: &ParamStore,
    into_before: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let w = l.torch_weight(params).data;
    let b = l.bias.map(|p| params.value(p));
    if into_before {
        fuse_before(&w, b, bn, params)
    } else {
        fuse_after(&w, b, bn, params)
    }
}

fn fuse_conv(c: &Conv2d, bn: &BatchNorm, params: &ParamStore) -> Result<(Vec<f32>, Vec<f32>)> {
    fuse_before(
        params.value(c.weight),
        c.bias.map(|p| params.value(p)),
        bn,
        params,
    )
}

/// Give a Linear or Conv2d the fused weight (PyTorch's layout) and bias, adding a bias
/// parameter when it had none.
fn set_weights(layer: &mut Layer, params: &mut ParamStore, w: &[f32], b: &[f32]) -> Result<()> {
    // each layer takes PyTorch's weight its own way (a Linear may keep W^T)
    let bias: &mut Option<ParamId> = match layer {
        Layer::Linear(l) => {
            l.set_torch_weight(params, w);
            &mut l.bias
        }
        Layer::Conv2d(c) => {
            params.value_mut(c.weight).copy_from_slice(w);
            &mut c.bias
        }
        _ => unreachable!("only Linear and Conv2d are fold targets"),
    };
    match bias {
        Some(p) => params.value_mut(*p).copy_from_slice(b),
        None => *bias = Some(params.add(Tensor::new(&[b.len()], b.to_vec())?)?),
    }
    Ok(())
}

fn collect_leaves(layer: &Layer, path: LeafPath, name: String, out: &mut Vec<(LeafPath, String)>) {
    match layer {
        Layer::Sequential(s) => {
            for (j, l) in s.layers.iter().enumerate() {
                let mut p = path.clone();
                p.push(j);
                collect_leaves(l, p, format!("{name}.{j}"), out);
            }
        }
        Layer::Net(n) => {
            for (j, (child, l)) in n.blocks.iter().enumerate() {
                let mut p = path.clone();
                p.push(j);
                collect_leaves(l, p, format!("{name}.{child}"), out);
            }
        }
        _ => out.push((path, name)),
    }
}

fn leaf<'a>(net: &'a Net, path: &[usize]) -> &'a Layer {
    let mut layer = &net.blocks[path[0]].1;
    for &j in &path[1..] {
        layer = match layer {
            Layer::Sequential(s) => &s.layers[j],
            Layer::Net(n) => &n.blocks[j].1,
            _ => unreachable!("paths come from collect_leaves"),
        };
    }
    layer
}

fn leaf_mut<'a>(net: &'a mut Net, path: &[usize]) -> &'a mut Layer {
    let mut layer = &mut net.blocks[path[0]].1;
    for &j in &path[1..] {
        layer = match layer {
            Layer::Sequential(s) => &mut s.layers[j],
            Layer::Net(n) => &mut n.blocks[j].1,
            _ => unreachable!("paths come from collect_leaves"),
        };
    }
    layer
}
