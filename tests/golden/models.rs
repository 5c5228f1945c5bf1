//! Model cases: Adam steps of the seed's BNModel, the plain model and the cnn-bn preset on real
//! MNIST batches, every logit, loss, gradient and final state compared.

use super::check::{f32t, meta, Report};
use bnlab::data::read_idx;
use bnlab::io::{StateTensor, TensorFile};
use bnlab::nn::{parameters, set_training, Forward, Net};
use bnlab::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use bnlab::presets::{cnn, mlp, Preset};
use bnlab::state_dict::{load_state_dict, state_dict};
use bnlab::{Graph, Rng};
use std::path::Path;

/// The README's tolerances for one kind of model case.
struct Tolerances {
    first_step: f32,
    later_steps: f32,
    params: f32,
    running: f32,
    eval: f32,
}

const MLP: Tolerances = Tolerances {
    first_step: 1e-4,
    later_steps: 1e-4,
    params: 1e-4,
    running: 1e-3,
    eval: 1e-2,
};
const CNN: Tolerances = Tolerances {
    first_step: 1e-4,
    later_steps: 2e-3,
    params: 5e-3,
    running: 5e-3,
    eval: 2e-2,
};

/// SGD does not magnify rounding as Adam does: every tensor within 1e-5 (the extended README).
const SGD: Tolerances = Tolerances {
    first_step: 1e-5,
    later_steps: 1e-5,
    params: 1e-5,
    running: 1e-5,
    eval: 1e-5,
};

const CNN_LAYERS: &str = "b1: Conv2d(1,32,3,padding=1) BatchNorm2d(32) ReLU MaxPool2d(2); b2: Conv2d(32,64,3,padding=1) BatchNorm2d(64) ReLU MaxPool2d(2); b3: Flatten Linear(3136,128) BatchNorm1d(128) ReLU; output: Linear(128,10)";

/// Adam's settings from a description like "Adam(betas=(0.9, 0.999), eps=1e-8)".
fn adam_config(desc: &str, lr: f64, weight_decay: f64) -> Result<AdamConfig, String> {
    let (name, args) = desc
        .split_once('(')
        .ok_or_else(|| format!("optimizer '{desc}' not understood"))?;
    let decoupled = match name {
        "Adam" => false,
        "AdamW" => true,
        _ => return Err(format!("optimizer '{desc}' is not Adam or AdamW")),
    };
    let number_after = |key: &str| -> Option<f64> {
        let rest = &args[args.find(key)? + key.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || ".eE-+".contains(c)))
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    let mut c = AdamConfig {
        lr,
        weight_decay,
        decoupled,
        ..Default::default()
    };
    if let (Some(b1), Some(b2)) = (
        number_after("betas=("),
        args.find("betas=(").and_then(|i| {
            let rest = &args[i..];
            let comma = rest.find(',')?;
            rest[comma + 1..]
                .trim_start()
                .split(')')
                .next()?
                .trim()
                .parse()
                .ok()
        }),
    ) {
        c.betas = (b1, b2);
    }
    if let Some(eps) = number_after("eps=") {
        c.eps = eps;
    }
    Ok(c)
}

fn build(
    file: &TensorFile,
    model: &str,
    g: &mut Graph,
) -> Result<(Net, &'static Tolerances), String> {
    let mut rng = Rng::seed(0);
    match model {
        "BNModel" | "PlainModel" => {
            let dims: Vec<usize> = meta(file, "dims")?;
            let preset = if model == "BNModel" {
                Preset::Bn
            } else {
                Preset::Plain
            };
            Ok((
                mlp(&mut g.params, preset, &dims, &mut rng).map_err(|e| e.to_string())?,
                &MLP,
            ))
        }
        "CNNModel" => {
            let layers = file
                .metadata
                .get("layers")
                .map(String::as_str)
                .unwrap_or("");
            if layers != CNN_LAYERS {
                return Err(format!(
                    "CNNModel with layers '{layers}' is not the cnn-bn preset"
                ));
            }
            Ok((
                cnn(&mut g.params, 1, 28, true, &mut rng).map_err(|e| e.to_string())?,
                &CNN,
            ))
        }
        "SigmoidMLP" => {
            // the BatchNorm paper's network, written as PyTorch prints it
            let dims: Vec<usize> = meta(file, "dims")?;
            let bn: bool = meta(file, "bn")?;
            let mut text = String::from("SigmoidMLP(\n");
            for (k, w) in dims[..dims.len() - 1].windows(2).enumerate() {
                text += &format!("  (b{}): Sequential(\n    (0): Linear(in_features={}, out_features={}, bias=True)\n", k + 1, w[0], w[1]);
                if bn {
                    text += &format!("    (1): BatchNorm1d({}, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n    (2): Sigmoid()\n  )\n", w[1]);
                } else {
                    text += "    (1): Sigmoid()\n  )\n";
                }
            }
            let n = dims.len();
            text += &format!(
                "  (output): Linear(in_features={}, out_features={}, bias=True)\n)\n",
                dims[n - 2],
                dims[n - 1]
            );
            let model = bnlab::model_file::ModelFile::from_text(text, Path::new("SigmoidMLP.txt"))
                .map_err(|e| e.to_string())?;
            let net = model
                .build(&[1, 1, 28, 28], &mut g.params, &mut rng)
                .map_err(|e| e.to_string())?;
            Ok((net, &SGD))
        }
        other => Err(format!("unknown model '{other}'")),
    }
}

/// Training images [lo, lo + n) scaled by 1/255, and their labels.
fn mnist_batch(lo: usize, n: usize) -> Result<(Vec<f32>, Vec<u32>), String> {
    mnist_split_batch("train", lo, n)
}

/// Images [lo, lo + n) of MNIST's test set, scaled by 1/255.
pub fn mnist_test_batch(lo: usize, n: usize) -> Result<Vec<f32>, String> {
    mnist_split_batch("t10k", lo, n).map(|(x, _)| x)
}

fn mnist_split_batch(split: &str, lo: usize, n: usize) -> Result<(Vec<f32>, Vec<u32>), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    let images =
        read_idx(dir.join(format!("{split}-images-idx3-ubyte.gz"))).map_err(|e| e.to_string())?;
    let labels =
        read_idx(dir.join(format!("{split}-labels-idx1-ubyte.gz"))).map_err(|e| e.to_string())?;
    let px = 28 * 28;
    if (lo + n) * px > images.data.len() {
        return Err(format!(
            "batch [{lo}, {}) is beyond MNIST's {split} set",
            lo + n
        ));
    }
    let x = images.data[lo * px..(lo + n) * px]
        .iter()
        .map(|&b| b as f32 / 255.0)
        .collect();
    let y = labels.data[lo..lo + n].iter().map(|&b| b as u32).collect();
    Ok((x, y))
}

/// Names of Linear/Conv biases that feed a BatchNorm (block `P.i.bias` with `P.(i+1).running_mean`):
/// their gradients are rounding noise, which Adam turns into steps of about lr.
fn feeds_batch_norm(name: &str, keys: &[String]) -> bool {
    let Some(stem) = name.strip_suffix(".bias") else {
        return false;
    };
    let Some((block, idx)) = stem.rsplit_once('.') else {
        return false;
    };
    let Ok(i) = idx.parse::<usize>() else {
        return false;
    };
    keys.iter()
        .any(|k| *k == format!("{block}.{}.running_mean", i + 1))
}

pub fn model(file: &TensorFile, path: &Path, model: &str, r: &mut Report) -> Result<(), String> {
    let batch: usize = meta(file, "batch")?;
    let steps: usize = meta(file, "steps")?;
    let offset: usize = meta(file, "offset")?;
    let lr: f64 = meta(file, "lr")?;
    let weight_decay: f64 = meta(file, "weight_decay")?;
    let opt_desc = file
        .metadata
        .get("optimizer")
        .cloned()
        .unwrap_or_else(|| "Adam()".into());
    let mut g = Graph::new(0);
    let (mut net, tol) = build(file, model, &mut g)?;
    load_state_dict(&mut net, &mut g.params, &file.tensors, "init.").map_err(|e| e.to_string())?;
    let ids = parameters(&net);
    let names: Vec<String> = state_dict(&net, &g.params)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut opt: Box<dyn Optimizer> = if opt_desc.starts_with("SGD") {
        let config = SgdConfig {
            lr,
            momentum: meta(file, "momentum")?,
            nesterov: meta(file, "nesterov")?,
            weight_decay,
            ..Default::default()
        };
        Box::new(Sgd::new(ids.clone(), config).map_err(|e| e.to_string())?)
    } else {
        Box::new(Adam::new(
            ids.clone(),
            adam_config(&opt_desc, lr, weight_decay)?,
        ))
    };
    // each parameter's name and its layer's save mapper (a first Linear keeps W^T)
    let mut param_names = Vec::new();
    bnlab::nn::visit_state(&net, "", &mut |n, e| match e {
        bnlab::nn::StateView::Param(_) => param_names.push((n.to_string(), None)),
        bnlab::nn::StateView::MappedParam(_, m) => param_names.push((n.to_string(), Some(m))),
        _ => {}
    });
    for s in 0..steps {
        let atol = if s == 0 {
            tol.first_step
        } else {
            tol.later_steps
        };
        let (x, y) = mnist_batch(offset + s * batch, batch)?;
        set_training(&mut net, true);
        g.reset();
        let input = g
            .input_with(&[batch, 1, 28, 28], |b| b.copy_from_slice(&x))
            .map_err(|e| e.to_string())?;
        let logits = net.forward(&mut g, input).map_err(|e| e.to_string())?;
        let loss = g.cross_entropy(logits, &y).map_err(|e| e.to_string())?;
        r.close(
            &format!("step{s}.logits"),
            g.value(logits),
            f32t(file, &format!("step{s}.logits"), path)?,
            atol,
            0.0,
        );
        r.close(
            &format!("step{s}.loss"),
            g.value(loss),
            f32t(file, &format!("step{s}.loss"), path)?,
            atol,
            0.0,
        );
        g.params.zero_grad();
        g.backward(loss).map_err(|e| e.to_string())?;
        for ((name, mapper), &id) in param_names.iter().zip(&ids) {
            let key = format!("step{s}.grad.{name}");
            let grad = g.params.grad(id).unwrap_or(&[]);
            // the gradient in PyTorch's layout, through the layer's save mapper
            let grad = match mapper {
                Some(m) if !grad.is_empty() => (m.save)(g.params.shape(id), grad),
                _ => grad.to_vec(),
            };
            r.close(&key, &grad, f32t(file, &key, path)?, atol, 0.0);
        }
        opt.step(&mut g.params);
    }
    let bias_atol = (2.0 * lr * steps as f64) as f32;
    for (name, t) in state_dict(&net, &g.params) {
        let key = format!("final.{name}");
        match t {
            StateTensor::F32(t) => {
                let atol = if name.ends_with("running_mean") || name.ends_with("running_var") {
                    tol.running
                } else if feeds_batch_norm(&name, &names) {
                    tol.params.max(bias_atol)
                } else {
                    tol.params
                };
                r.close(&key, &t.data, f32t(file, &key, path)?, atol, 0.0);
            }
            StateTensor::I64 { data, .. } => r.exact_i64(
                &key,
                data[0],
                file.i64(&key, path).map_err(|e| e.to_string())?,
            ),
        }
    }
    set_training(&mut net, false);
    g.reset();
    let (x, _) = mnist_batch(0, batch)?;
    let input = g
        .input_with(&[batch, 1, 28, 28], |b| b.copy_from_slice(&x))
        .map_err(|e| e.to_string())?;
    let logits = net.forward(&mut g, input).map_err(|e| e.to_string())?;
    r.close(
        "eval.logits",
        g.value(logits),
        f32t(file, "eval.logits", path)?,
        tol.eval,
        0.0,
    );
    Ok(())
}
