//! `bnlab train`: the seed's experiment in one command.

use super::args::{OptimizerName, SchedulerName, TrainArgs, TrainOptions};
use super::data;
use bnlab::data::Dataset;
use bnlab::io::read_safetensors;
use bnlab::nn::{parameters, Net};
use bnlab::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use bnlab::presets::Preset;
use bnlab::train::{
    fit_resumable, load_checkpoint, FitOptions, History, Mode, RunControl, Scheduler,
};
use bnlab::{state_dict, Error, Graph, Result, Rng};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub fn parse_preset(name: &str) -> Result<Preset> {
    name.parse()
        .map_err(|e: Error| Error::Invalid(format!("--model: {e}")))
}

/// Check the options a user can get wrong before any work is done.
pub fn validate(o: &TrainOptions) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(m));
    if o.epochs == 0 {
        return bad("--epochs must be at least 1".into());
    }
    if o.batch_size == 0 {
        return bad("--batch-size must be at least 1".into());
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return bad(format!("--lr must be a positive number, got {}", o.lr));
    }
    if o.weight_decay.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
        return bad(format!(
            "--weight-decay must be zero or positive, got {}",
            o.weight_decay.unwrap()
        ));
    }
    if !(o.momentum.is_finite() && o.momentum >= 0.0) {
        return bad(format!(
            "--momentum must be zero or positive, got {}",
            o.momentum
        ));
    }
    if o.early_stopping && o.patience == 0 {
        return bad("--patience must be at least 1 with --early-stopping".into());
    }
    if o.scheduler == SchedulerName::Step && o.step_size == 0 {
        return bad("--step-size must be at least 1".into());
    }
    if !(o.gamma.is_finite() && o.gamma > 0.0) {
        return bad(format!(
            "--gamma must be a positive number, got {}",
            o.gamma
        ));
    }
    if o.scheduler == SchedulerName::CosineRestarts && (o.t0 == 0 || o.t_mult == 0) {
        return bad("--t0 and --t-mult must be at least 1".into());
    }
    Ok(())
}

/// The model for a dataset, initialised from the seed.
pub fn build_model(preset: Preset, ds: &Dataset, seed: u64) -> Result<(Graph, Net)> {
    let mut rng = Rng::seed(seed);
    let mut g = Graph::new(rng.next_u64());
    if ds.height != ds.width {
        return Err(Error::Invalid(format!(
            "images of {}x{} are not square",
            ds.height, ds.width
        )));
    }
    let net = preset.build(&mut g.params, ds.channels, ds.height, &mut rng)?;
    Ok((g, net))
}

pub fn build_optimizer(o: &TrainOptions, net: &mut Net) -> Result<Box<dyn Optimizer>> {
    let ids = parameters(net);
    Ok(match o.optimizer {
        OptimizerName::Adam | OptimizerName::Adamw => {
            let base = if o.optimizer == OptimizerName::Adamw {
                AdamConfig::adamw()
            } else {
                AdamConfig::default()
            };
            let config = AdamConfig {
                lr: o.lr,
                weight_decay: o.weight_decay.unwrap_or(base.weight_decay),
                ..base
            };
            Box::new(Adam::new(ids, config))
        }
        OptimizerName::Sgd => Box::new(Sgd::new(
            ids,
            SgdConfig {
                lr: o.lr,
                momentum: o.momentum,
                weight_decay: o.weight_decay.unwrap_or(0.0),
                nesterov: o.nesterov,
                ..Default::default()
            },
        )?),
    })
}

pub fn scheduler(o: &TrainOptions) -> Scheduler {
    match o.scheduler {
        SchedulerName::None => Scheduler::None,
        SchedulerName::Step => Scheduler::Step {
            step_size: o.step_size,
            gamma: o.gamma,
        },
        SchedulerName::Cosine => Scheduler::Cosine {
            t_max: o.epochs,
            eta_min: 0.0,
        },
        SchedulerName::CosineRestarts => Scheduler::CosineRestarts {
            t_0: o.t0,
            t_mult: o.t_mult,
            eta_min: 0.0,
        },
    }
}

/// Make sure `out` exists and can be written, before hours of training.
pub fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::Invalid(format!("--out {}: cannot create it ({e})", out.display())))?;
    tempfile::tempfile_in(out).map_err(|e| {
        Error::Invalid(format!("--out {}: cannot write there ({e})", out.display()))
    })?;
    Ok(())
}

/// Train one preset with the given options, writing a checkpoint after every epoch and the
/// run's files at the end; `resume` continues the run whose checkpoint is in `out`.
#[allow(clippy::too_many_arguments)]
pub fn train_preset(
    preset: Preset,
    o: &TrainOptions,
    train: &Dataset,
    test: &Dataset,
    out: &Path,
    config: serde_json::Value,
    log: &mut dyn Write,
    resume: bool,
    interrupt: Option<Arc<AtomicBool>>,
) -> Result<(History, Graph, Net)> {
    let (mut g, mut net) = build_model(preset, train, o.seed)?;
    let mut opt = build_optimizer(o, &mut net)?;
    let checkpoint = out.join(CHECKPOINT);
    let state = if resume {
        Some(load_checkpoint(
            &checkpoint,
            &mut net,
            &mut g,
            opt.as_mut(),
        )?)
    } else {
        None
    };
    let fit_opts = FitOptions {
        epochs: o.epochs,
        batch_size: o.batch_size,
        save_best: o.save_best.then(|| out.join("best.safetensors")),
        early_stopping: o.early_stopping.then_some(o.patience),
        mode: Mode::Multi,
        scheduler: scheduler(o),
        seed: o.seed,
        progress: !o.quiet,
    };
    let mut control = RunControl {
        checkpoint: Some(checkpoint),
        interrupt,
        resume: state,
        config,
    };
    let history = fit_resumable(
        &mut net,
        &mut g,
        opt.as_mut(),
        train,
        test,
        &fit_opts,
        log,
        &mut control,
    )?;
    state_dict::save(&mut net, &g.params, &out.join("last.safetensors"))?;
    history.write_csv(&out.join("history.csv"))?;
    history.write_json(&out.join("history.json"))?;
    bnlab::plot::plot_histories(&[(&preset.to_string(), &history)], &out.join("history.png"))?;
    Ok((history, g, net))
}

/// The checkpoint's file name inside a run's folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The model and options a run in `dir` was started with, from its checkpoint.
fn resumed_config(dir: &Path) -> Result<(String, TrainOptions)> {
    let path = dir.join(CHECKPOINT);
    let file = read_safetensors(&path)?;
    let bad = |m: &str| Error::bad_file(&path, format!("cannot resume: {m}"));
    let state: serde_json::Value = file
        .metadata
        .get("bnlab_checkpoint")
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| bad("not a bnlab checkpoint"))?;
    let config = &state["history"]["config"];
    let model = config["model"]
        .as_str()
        .ok_or_else(|| bad("no model in its configuration"))?
        .to_string();
    let options = serde_json::from_value(config["options"].clone())
        .map_err(|_| bad("no options in its configuration"))?;
    Ok((model, options))
}

/// Ctrl-C sets the flag (the run stops after its current step and writes a checkpoint); a
/// second Ctrl-C ends the process at once.
fn interrupt_flag() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("Interrupted: stopping after this step to write a checkpoint (Ctrl-C again to quit now)");
    });
    installed.ok().map(|_| flag)
}

pub fn run(a: &TrainArgs, out: &mut dyn Write) -> Result<()> {
    let (model, opts, dir, resume) = match &a.resume {
        Some(dir) => {
            let (model, opts) = resumed_config(dir)?;
            (model, opts, dir.clone(), true)
        }
        None => (a.model.clone(), a.opts.clone(), a.out.clone(), false),
    };
    let preset = parse_preset(&model)?;
    validate(&opts)?;
    let kind = data::parse_kind(&opts.dataset)?;
    prepare_out(&dir)?;
    let (train, test) = data::load_both(kind, opts.data_dir.as_deref())?;
    if resume {
        writeln!(
            out,
            "Resuming the run in {} ({model}, options from its checkpoint)",
            dir.display()
        )
        .map_err(super::stdout_err)?;
    }
    let config = serde_json::json!({ "model": preset.to_string(), "options": opts, "threads": bnlab::matmul::threads() });
    train_preset(
        preset,
        &opts,
        &train,
        &test,
        &dir,
        config,
        out,
        resume,
        interrupt_flag(),
    )?;
    writeln!(
        out,
        "Wrote {}/history.csv, history.json, history.png, last.safetensors",
        dir.display()
    )
    .map_err(super::stdout_err)?;
    Ok(())
}
