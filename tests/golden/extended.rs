//! The cases beyond the chapter (../shared/golden/extended/README.md): the activations,
//! LayerNorm and GroupNorm as layers, and BatchNorm folded into the layer before it.

use super::check::{f32t, meta, Report};
use bnlab::io::TensorFile;
use bnlab::nn::{
    set_training, BatchNorm, Conv2d, Conv2dConfig, Forward, Gelu, GeluApproximate, GroupNorm,
    GroupNormConfig, LayerNorm, LayerNormConfig, LeakyReLU, Linear, LinearConfig, Module, Sigmoid,
    Tanh,
};
use bnlab::{Graph, Rng};
use std::path::Path;

/// A metadata value as its raw text (for strings such as `approximate`).
fn raw<'a>(file: &'a TensorFile, key: &str) -> Result<&'a str, String> {
    file.metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("metadata has no '{key}'"))
}

/// Sigmoid, Tanh, LeakyReLU, GELU: y and grad_x for x and grad_y, atol 1e-6 + rtol 1e-5.
pub fn activation(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let mut layer: Box<dyn Forward> = match raw(file, "layer")? {
        "Sigmoid" => Box::new(Sigmoid),
        "Tanh" => Box::new(Tanh),
        "LeakyReLU" => Box::new(LeakyReLU {
            negative_slope: meta::<f64>(file, "negative_slope")? as f32,
        }),
        "GELU" => Box::new(Gelu {
            approximate: GeluApproximate::from_name(raw(file, "approximate")?)
                .ok_or("approximate must be 'none' or 'tanh'")?,
        }),
        other => return Err(format!("not an activation: {other}")),
    };
    let shape: Vec<usize> = meta(file, "shape")?;
    let mut g = Graph::new(0);
    let x = g
        .input(f32t(file, "x", path)?, true)
        .map_err(|e| e.to_string())?;
    if g.shape(x) != shape.as_slice() {
        return Err(format!(
            "x has shape {:?}, metadata says {shape:?}",
            g.shape(x)
        ));
    }
    let y = layer.forward(&mut g, x).map_err(|e| e.to_string())?;
    r.close("y", g.value(y), f32t(file, "y", path)?, 1e-6, 1e-5);
    let dy = f32t(file, "grad_y", path)?;
    g.backward_from(y, &dy.data).map_err(|e| e.to_string())?;
    let gx = g.grad(x).ok_or("no gradient reached x")?.to_vec();
    r.close("grad_x", &gx, f32t(file, "grad_x", path)?, 1e-6, 1e-5);
    Ok(())
}

/// LayerNorm and GroupNorm over several steps: y, grad_x, and with affine grad_weight and
/// grad_bias, atol 1e-5 + rtol 1e-4.
pub fn norm(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let shape: Vec<usize> = meta(file, "shape")?;
    let steps: usize = meta(file, "steps")?;
    let eps = meta::<f64>(file, "eps")? as f32;
    let affine: bool = meta(file, "affine")?;
    let mut g = Graph::new(0);
    let (mut layer, weight, bias): (Box<dyn Module>, _, _) = match raw(file, "layer")? {
        "LayerNorm" => {
            let ns: Vec<usize> = meta(file, "normalized_shape")?;
            let config = LayerNormConfig {
                eps,
                elementwise_affine: affine,
                bias: true,
            };
            let l =
                LayerNorm::with_config(&mut g.params, &ns, config).map_err(|e| e.to_string())?;
            let (w, b) = (l.weight, l.bias);
            (Box::new(l), w, b)
        }
        "GroupNorm" => {
            let groups: usize = meta(file, "num_groups")?;
            let channels: usize = meta(file, "num_channels")?;
            let config = GroupNormConfig {
                eps,
                affine,
                bias: true,
            };
            let l = GroupNorm::with_config(&mut g.params, groups, channels, config)
                .map_err(|e| e.to_string())?;
            let (w, b) = (l.weight, l.bias);
            (Box::new(l), w, b)
        }
        other => return Err(format!("not a per-sample norm: {other}")),
    };
    if affine {
        let (w, b) = weight
            .zip(bias)
            .ok_or("an affine layer without weight and bias")?;
        let set = |g: &mut Graph, id, key| -> Result<(), String> {
            g.params
                .set(id, f32t(file, key, path)?)
                .map_err(|e| e.to_string())
        };
        set(&mut g, w, "weight")?;
        set(&mut g, b, "bias")?;
    }
    for s in 0..steps {
        g.reset();
        g.params.zero_grad();
        let x = g
            .input(f32t(file, &format!("x{s}"), path)?, true)
            .map_err(|e| e.to_string())?;
        if g.shape(x) != shape.as_slice() {
            return Err(format!(
                "x{s} has shape {:?}, metadata says {shape:?}",
                g.shape(x)
            ));
        }
        let y = layer.forward(&mut g, x).map_err(|e| e.to_string())?;
        r.close(
            &format!("y{s}"),
            g.value(y),
            f32t(file, &format!("y{s}"), path)?,
            1e-5,
            1e-4,
        );
        let dy = f32t(file, &format!("grad_y{s}"), path)?;
        g.backward_from(y, &dy.data).map_err(|e| e.to_string())?;
        let gx = g.grad(x).ok_or("no gradient reached x")?.to_vec();
        r.close(
            &format!("grad_x{s}"),
            &gx,
            f32t(file, &format!("grad_x{s}"), path)?,
            1e-5,
            1e-4,
        );
        if let (true, Some(w), Some(b)) = (affine, weight, bias) {
            for (id, key) in [(w, "grad_weight"), (b, "grad_bias")] {
                let grad = g.params.grad(id).ok_or("no gradient reached a parameter")?;
                let key = format!("{key}{s}");
                r.close(&key, grad, f32t(file, &key, path)?, 1e-5, 1e-4);
            }
        }
    }
    let _ = set_training; // no train/eval difference: nothing to switch
    Ok(())
}

/// `linear_bn` and `conv_bn`: the fused weight and bias (atol 1e-6 + rtol 1e-5), and the
/// fused layer's output against the eval-mode pair's (atol 1e-4).
pub fn fold_layer(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let kind = raw(file, "fold")?;
    let bias: bool = meta(file, "bias")?;
    let eps = meta::<f64>(file, "eps")? as f32;
    let lw = f32t(file, "layer.weight", path)?;
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let (cout, cin) = (lw.shape[0], lw.shape[1]);
    let mut layer: Box<dyn LayerWithWeights> = match kind {
        "linear_bn" => Box::new(
            Linear::with_config(
                &mut g.params,
                LinearConfig {
                    bias,
                    ..LinearConfig::new(cin, cout)
                },
                &mut rng,
            )
            .map_err(|e| e.to_string())?,
        ),
        "conv_bn" => {
            if lw.shape.len() != 4 || lw.shape[2] != 3 {
                return Err(format!("conv_bn weight {:?} is not a 3x3 kernel", lw.shape));
            }
            let config = Conv2dConfig {
                padding: 1,
                bias,
                ..Conv2dConfig::new(cin, cout, 3)
            };
            Box::new(
                Conv2d::with_config(&mut g.params, config, &mut rng).map_err(|e| e.to_string())?,
            )
        }
        other => return Err(format!("unknown fold '{other}'")),
    };
    let (wid, bid) = layer.ids();
    g.params.set(wid, lw).map_err(|e| e.to_string())?;
    if let Some(b) = bid {
        g.params
            .set(b, f32t(file, "layer.bias", path)?)
            .map_err(|e| e.to_string())?;
    }
    let mut bn = if kind == "conv_bn" {
        BatchNorm::d2(&mut g.params, cout)
    } else {
        BatchNorm::d1(&mut g.params, cout)
    }
    .map_err(|e| e.to_string())?;
    bn.config.eps = eps;
    let sd: std::collections::BTreeMap<_, _> = file
        .tensors
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("bn.")
                .map(|k| (format!("bn.{k}"), v.clone()))
        })
        .collect();
    bnlab::state_dict::load_state_dict(&mut bn, &mut g.params, &sd, "bn.")
        .map_err(|e| e.to_string())?;
    set_training(&mut bn, false);
    // the layer was built with PyTorch's layout
    let torch_w = g.params.value(wid).to_vec();
    let b = bid.map(|b| g.params.value(b).to_vec());
    let (fw, fb) = bnlab::fold::fuse_before(&torch_w, b.as_deref(), &bn, &g.params)
        .map_err(|e| e.to_string())?;
    r.close(
        "fused.weight",
        &fw,
        f32t(file, "fused.weight", path)?,
        1e-6,
        1e-5,
    );
    r.close(
        "fused.bias",
        &fb,
        f32t(file, "fused.bias", path)?,
        1e-6,
        1e-5,
    );
    // the eval-mode pair, then the folded layer alone
    let x = g
        .input(f32t(file, "x", path)?, false)
        .map_err(|e| e.to_string())?;
    let z = layer.forward(&mut g, x).map_err(|e| e.to_string())?;
    let y = bn.forward(&mut g, z).map_err(|e| e.to_string())?;
    r.close("y", g.value(y), f32t(file, "y", path)?, 1e-4, 0.0);
    let mut net = bnlab::nn::Net {
        name: "Pair".into(),
        flatten_input: false,
        blocks: vec![
            ("layer".into(), layer.into_layer()),
            ("bn".into(), bn.into()),
        ],
    };
    let report = bnlab::fold::fold(&mut net, &mut g.params).map_err(|e| e.to_string())?;
    if report.folded.len() != 1 {
        return Err(format!("fold did not fold the pair: {report:?}"));
    }
    set_training(&mut net, false);
    g.reset();
    let x = g
        .input(f32t(file, "x", path)?, false)
        .map_err(|e| e.to_string())?;
    let y = net.forward(&mut g, x).map_err(|e| e.to_string())?;
    r.close(
        "y_fused",
        g.value(y),
        f32t(file, "y_fused", path)?,
        1e-4,
        0.0,
    );
    Ok(())
}

/// A Linear or a Conv2d, for `fold_layer`.
trait LayerWithWeights: Forward {
    fn ids(&self) -> (bnlab::ParamId, Option<bnlab::ParamId>);
    fn into_layer(self: Box<Self>) -> bnlab::nn::Layer;
}

impl LayerWithWeights for Linear {
    fn ids(&self) -> (bnlab::ParamId, Option<bnlab::ParamId>) {
        (self.weight, self.bias)
    }
    fn into_layer(self: Box<Self>) -> bnlab::nn::Layer {
        (*self).into()
    }
}

impl LayerWithWeights for Conv2d {
    fn ids(&self) -> (bnlab::ParamId, Option<bnlab::ParamId>) {
        (self.weight, self.bias)
    }
    fn into_layer(self: Box<Self>) -> bnlab::nn::Layer {
        (*self).into()
    }
}

/// `model`: the chapter's BNModel or CNNModel in eval mode, folded: the folded state dict
/// (no BatchNorm entries, fused weights under the layer's own name) and its logits.
pub fn fold_model(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let batch: usize = meta(file, "batch")?;
    let offset: usize = meta(file, "offset")?;
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let mut net = match raw(file, "model")? {
        "BNModel" => bnlab::presets::mlp(
            &mut g.params,
            bnlab::presets::Preset::Bn,
            &bnlab::presets::SEED_DIMS,
            &mut rng,
        ),
        "CNNModel" => bnlab::presets::cnn(&mut g.params, 1, 28, true, &mut rng),
        other => return Err(format!("unknown model '{other}' to fold")),
    }
    .map_err(|e| e.to_string())?;
    bnlab::state_dict::load_state_dict(&mut net, &mut g.params, &file.tensors, "init.")
        .map_err(|e| e.to_string())?;
    set_training(&mut net, false);
    let x = super::models::mnist_test_batch(offset, batch)?;
    let logits = |g: &mut Graph, net: &mut bnlab::nn::Net| -> Result<Vec<f32>, String> {
        g.reset();
        let input = g
            .input_with(&[batch, 1, 28, 28], |b| b.copy_from_slice(&x))
            .map_err(|e| e.to_string())?;
        let y = net.forward(g, input).map_err(|e| e.to_string())?;
        Ok(g.value(y).to_vec())
    };
    let before = logits(&mut g, &mut net)?;
    r.close(
        "eval.logits",
        &before,
        f32t(file, "eval.logits", path)?,
        1e-4,
        0.0,
    );
    let report = bnlab::fold::fold(&mut net, &mut g.params).map_err(|e| e.to_string())?;
    if !report.kept.is_empty() {
        return Err(format!("BatchNorms left unfolded: {:?}", report.kept));
    }
    let folded = bnlab::state_dict::state_dict(&net, &g.params);
    let mut expected: Vec<&str> = file
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix("folded."))
        .filter(|k| *k != "logits")
        .collect();
    expected.sort();
    let mut got: Vec<&str> = folded.iter().map(|(k, _)| k.as_str()).collect();
    got.sort();
    if got != expected {
        return Err(format!(
            "folded state dict keys {got:?}, expected {expected:?}"
        ));
    }
    for (name, t) in &folded {
        let bnlab::io::StateTensor::F32(t) = t else {
            return Err(format!("folded {name} is not float32"));
        };
        let key = format!("folded.{name}");
        r.close(&key, &t.data, f32t(file, &key, path)?, 1e-6, 1e-5);
    }
    let after = logits(&mut g, &mut net)?;
    r.close(
        "folded.logits",
        &after,
        f32t(file, "folded.logits", path)?,
        1e-4,
        0.0,
    );
    Ok(())
}
