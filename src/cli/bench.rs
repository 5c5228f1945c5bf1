//! `bnlab bench`: seconds per training epoch and per evaluation of the test set, median of
//! several epochs, on in-memory MNIST (or a CSV table, `--train-csv`). The PyTorch side is ../shared/reference/seed_bn_mnist.py;
//! scripts/bench.sh runs both and prints the ratios.

use super::args::{BenchArgs, PrecisionName, Settings, TrainOptions};
use super::data;
use super::model::{parse_model, ModelSpec};
use bnlab::data::Loader;
use bnlab::nn::{parameters, set_training};
use bnlab::optim::{Adam, AdamConfig};
use bnlab::train::{evaluate, train_step, Mode, StepBuffers};
use bnlab::{Error, Result};
use std::io::Write;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn run(a: &BenchArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    if a.batch_size == 0 || a.epochs == 0 {
        return Err(Error::Invalid(
            "--batch-size and --epochs must be at least 1".into(),
        ));
    }
    a.precision.check()?;
    let (train, test) = match &a.train_csv {
        // a table, loaded and standardised as `bnlab train --dataset csv` loads it
        Some(path) => {
            let opts = TrainOptions {
                dataset: "csv".into(),
                train_csv: Some(path.clone()),
                test_csv: a.test_csv.clone(),
                target: a.target.clone(),
                ..TrainOptions::defaults()
            };
            let run = data::load_run_data(&opts, settings.data_dir.as_deref())?;
            (run.train, run.test)
        }
        None => data::load_both(data::parse_kind("mnist")?, settings.data_dir.as_deref())?,
    };
    let mlp_preset = match &model {
        ModelSpec::Preset(p) if !p.is_cnn() => Some(*p),
        _ => None,
    };
    if a.width == 0 || (a.width != 1 && mlp_preset.is_none()) {
        return Err(Error::Invalid(
            "--width must be at least 1, and applies to the MLP presets".into(),
        ));
    }
    let (mut g, mut net) = model.build(&train, 0, false)?;
    if let (true, Some(preset)) = (a.width != 1, mlp_preset) {
        let w = a.width;
        let dims = [
            train.item_size(),
            256 * w,
            128 * w,
            64 * w,
            train.num_classes,
        ];
        g = bnlab::Graph::new(1);
        net = bnlab::presets::mlp(&mut g.params, preset, &dims, &mut bnlab::Rng::seed(0))?;
    }
    g.set_precision(a.precision.precision())?;
    let mut opt = Adam::new(parameters(&net), AdamConfig::default());
    let mut loader = Loader::new(a.batch_size, true, false, 0)?;
    let mut bufs = StepBuffers::default();
    let (mut train_s, mut eval_s) = (Vec::new(), Vec::new());
    for epoch in 0..a.epochs {
        set_training(&mut net, true);
        let t0 = Instant::now();
        loader.fill_epoch_indices(train.len, &mut bufs.order);
        let order = std::mem::take(&mut bufs.order);
        // the pool's workers kept awake, as fit's training steps run
        bnlab::runtime::with_workers_awake(|| {
            for range in loader.batches(train.len) {
                // fit's step (a diverged loss would only skip updates, as in fit)
                let batch = &order[range];
                train_step(
                    &mut net,
                    &mut g,
                    &mut opt,
                    &train,
                    batch,
                    Mode::Multi,
                    &mut bufs,
                )?;
            }
            Ok::<(), Error>(())
        })?;
        bufs.order = order;
        train_s.push(t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        let (loss, acc) = evaluate(&mut net, &mut g, &test, a.batch_size, Mode::Multi)?;
        eval_s.push(t1.elapsed().as_secs_f64());
        if !a.json {
            writeln!(
                out,
                "epoch {}: train {:.3} s, eval {:.3} s (test loss {loss:.4}, accuracy {acc:.4})",
                epoch + 1,
                train_s[epoch],
                eval_s[epoch]
            )
            .map_err(super::stdout_err)?;
        }
    }
    let (t, e) = (median(train_s), median(eval_s));
    let threads = bnlab::runtime::threads();
    if a.json {
        let j = serde_json::json!({
            "model": model.label(), "batch_size": a.batch_size, "threads": threads, "width": a.width,
            "precision": a.precision.precision().name(),
            "train_epoch_seconds": t, "eval_seconds": e, "train_samples_per_second": train.len as f64 / t,
        });
        writeln!(out, "{j}").map_err(super::stdout_err)?;
    } else {
        writeln!(
            out,
            "{}, batch {}, {threads} threads{}: median {t:.3} s per training epoch ({:.0} samples/s), {e:.3} s per test-set evaluation",
            model.label(),
            a.batch_size,
            match a.precision {
                PrecisionName::F32 => String::new(),
                PrecisionName::Bf16 => ", bf16".to_string(),
            },
            train.len as f64 / t
        )
        .map_err(super::stdout_err)?;
    }
    Ok(())
}
