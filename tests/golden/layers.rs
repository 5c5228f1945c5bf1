//! Layer cases: BatchNorm1d/2d over several steps, Conv2d, MaxPool2d, cross entropy.

use super::check::{f32t, meta, Report};
use bnlab::io::TensorFile;
use bnlab::nn::{
    set_training, BatchNorm, BatchNormConfig, BatchNormKind, Conv2d, Conv2dConfig, Forward,
    MaxPool2d,
};
use bnlab::{Graph, Rng};
use std::path::Path;

const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-4;

pub fn batch_norm(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let kind = match file.metadata.get("layer").map(String::as_str) {
        Some("BatchNorm1d") => BatchNormKind::OneD,
        _ => BatchNormKind::TwoD,
    };
    let shape: Vec<usize> = meta(file, "shape")?;
    let steps: usize = meta(file, "steps")?;
    let config = BatchNormConfig {
        eps: meta::<f64>(file, "eps")? as f32,
        momentum: meta::<Option<f64>>(file, "momentum")?.map(|m| m as f32),
        affine: meta(file, "affine")?,
        track_running_stats: meta(file, "track_running_stats")?,
    };
    if shape.len() < 2 {
        return Err(format!("shape {shape:?} has no channel dimension"));
    }
    let mut g = Graph::new(0);
    let mut bn =
        BatchNorm::with_config(&mut g.params, kind, shape[1], config).map_err(|e| e.to_string())?;
    if config.affine {
        g.params
            .set(bn.weight.unwrap(), f32t(file, "weight", path)?)
            .map_err(|e| e.to_string())?;
        g.params
            .set(bn.bias.unwrap(), f32t(file, "bias", path)?)
            .map_err(|e| e.to_string())?;
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
        let y = bn.forward(&mut g, x).map_err(|e| e.to_string())?;
        r.close(
            &format!("y{s}"),
            g.value(y),
            f32t(file, &format!("y{s}"), path)?,
            ATOL,
            RTOL,
        );
        let gy = f32t(file, &format!("grad_y{s}"), path)?;
        g.backward_from(y, &gy.data).map_err(|e| e.to_string())?;
        r.close(
            &format!("grad_x{s}"),
            g.grad(x).unwrap_or(&[]),
            f32t(file, &format!("grad_x{s}"), path)?,
            ATOL,
            RTOL,
        );
        if config.affine {
            let (w, b) = (bn.weight.unwrap(), bn.bias.unwrap());
            r.close(
                &format!("grad_weight{s}"),
                g.params.grad(w).unwrap_or(&[]),
                f32t(file, &format!("grad_weight{s}"), path)?,
                ATOL,
                RTOL,
            );
            r.close(
                &format!("grad_bias{s}"),
                g.params.grad(b).unwrap_or(&[]),
                f32t(file, &format!("grad_bias{s}"), path)?,
                ATOL,
                RTOL,
            );
        }
        if config.track_running_stats {
            r.close(
                &format!("running_mean{s}"),
                &bn.running_mean.data,
                f32t(file, &format!("running_mean{s}"), path)?,
                ATOL,
                RTOL,
            );
            r.close(
                &format!("running_var{s}"),
                &bn.running_var.data,
                f32t(file, &format!("running_var{s}"), path)?,
                ATOL,
                RTOL,
            );
            let nbt = file
                .i64(&format!("num_batches_tracked{s}"), path)
                .map_err(|e| e.to_string())?;
            r.exact_i64(
                &format!("num_batches_tracked{s}"),
                bn.num_batches_tracked,
                nbt,
            );
        }
    }
    if file.tensors.contains_key("x_eval") {
        set_training(&mut bn, false);
        g.reset();
        let x = g
            .input(f32t(file, "x_eval", path)?, false)
            .map_err(|e| e.to_string())?;
        let y = bn.forward(&mut g, x).map_err(|e| e.to_string())?;
        r.close(
            "y_eval",
            g.value(y),
            f32t(file, "y_eval", path)?,
            ATOL,
            RTOL,
        );
    }
    Ok(())
}

pub fn conv2d(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let cin: usize = meta(file, "in_channels")?;
    let cout: usize = meta(file, "out_channels")?;
    let k: usize = meta(file, "kernel_size")?;
    let stride: usize = meta(file, "stride")?;
    let padding: usize = meta(file, "padding")?;
    let bias: bool = meta(file, "bias")?;
    let mut g = Graph::new(0);
    let config = Conv2dConfig {
        stride,
        padding,
        bias,
        ..Conv2dConfig::new(cin, cout, k)
    };
    let mut conv =
        Conv2d::with_config(&mut g.params, config, &mut Rng::seed(0)).map_err(|e| e.to_string())?;
    g.params
        .set(conv.weight, f32t(file, "weight", path)?)
        .map_err(|e| e.to_string())?;
    if let Some(b) = conv.bias {
        g.params
            .set(b, f32t(file, "bias", path)?)
            .map_err(|e| e.to_string())?;
    }
    let x = g
        .input(f32t(file, "x", path)?, true)
        .map_err(|e| e.to_string())?;
    let y = conv.forward(&mut g, x).map_err(|e| e.to_string())?;
    r.close("y", g.value(y), f32t(file, "y", path)?, ATOL, RTOL);
    g.backward_from(y, &f32t(file, "grad_y", path)?.data)
        .map_err(|e| e.to_string())?;
    r.close(
        "grad_x",
        g.grad(x).unwrap_or(&[]),
        f32t(file, "grad_x", path)?,
        ATOL,
        RTOL,
    );
    r.close(
        "grad_weight",
        g.params.grad(conv.weight).unwrap_or(&[]),
        f32t(file, "grad_weight", path)?,
        ATOL,
        RTOL,
    );
    if let Some(b) = conv.bias {
        r.close(
            "grad_bias",
            g.params.grad(b).unwrap_or(&[]),
            f32t(file, "grad_bias", path)?,
            ATOL,
            RTOL,
        );
    }
    Ok(())
}

pub fn max_pool2d(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let k: usize = meta(file, "kernel_size")?;
    let stride: Option<usize> = meta(file, "stride")?;
    let mut pool = MaxPool2d {
        kernel_size: k,
        stride: stride.unwrap_or(k),
    };
    let mut g = Graph::new(0);
    let x = g
        .input(f32t(file, "x", path)?, true)
        .map_err(|e| e.to_string())?;
    let y = pool.forward(&mut g, x).map_err(|e| e.to_string())?;
    r.close("y", g.value(y), f32t(file, "y", path)?, ATOL, RTOL);
    g.backward_from(y, &f32t(file, "grad_y", path)?.data)
        .map_err(|e| e.to_string())?;
    r.close(
        "grad_x",
        g.grad(x).unwrap_or(&[]),
        f32t(file, "grad_x", path)?,
        ATOL,
        RTOL,
    );
    Ok(())
}

pub fn cross_entropy(file: &TensorFile, path: &Path, r: &mut Report) -> Result<(), String> {
    let logits = f32t(file, "logits", path)?;
    let target: Vec<u32> = file
        .i64("target", path)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|&t| u32::try_from(t).map_err(|_| format!("target {t} is negative")))
        .collect::<Result<_, _>>()?;
    let mut g = Graph::new(0);
    let x = g.input(logits, true).map_err(|e| e.to_string())?;
    let loss = g.cross_entropy(x, &target).map_err(|e| e.to_string())?;
    r.close("loss", g.value(loss), f32t(file, "loss", path)?, ATOL, RTOL);
    g.backward(loss).map_err(|e| e.to_string())?;
    r.close(
        "grad_logits",
        g.grad(x).unwrap_or(&[]),
        f32t(file, "grad_logits", path)?,
        ATOL,
        RTOL,
    );
    Ok(())
}
