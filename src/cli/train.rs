//! `bnlab train`: the seed's experiment in one command.

use super::args::{
    ModeName, OptimizerName, SchedulerName, Settings, TrainArgs, TrainOptions, WatchOptions,
};
use super::data;
use super::model::{parse_model, ModelSpec};
use super::pause::pause_hook;
use super::resume::{self, DATA_DIR};
use super::run_folder::{
    self, Claim, BEST, CHECKPOINT, HISTORY_CSV, HISTORY_JSON, HISTORY_PNG, LAST, STANDARDIZE,
    STATS_CSV, STATS_PNG,
};
use bnlab::data::augment::Augmentation;
use bnlab::data::Dataset;
use bnlab::nn::{parameters, Net};
use bnlab::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use bnlab::train::{fit_resumable, load_checkpoint, FitOptions, History, RunControl, Scheduler};
use bnlab::{state_dict, Error, Graph, Result};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    if o.augment && o.dataset == "csv" {
        return bad(
            "--augment transforms images (mnist, fashion-mnist, cifar10), not the rows of a csv table".into(),
        );
    }
    o.precision.check()
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
            t_max: o.cosine_t_max.unwrap_or(o.epochs),
            eta_min: 0.0,
        },
        SchedulerName::CosineRestarts => Scheduler::CosineRestarts {
            t_0: o.t0,
            t_mult: o.t_mult,
            eta_min: 0.0,
        },
    }
}

/// Train one preset with the given options, writing a checkpoint after every epoch and the
/// run's files at the end; `resume` continues the run whose checkpoint is in `out`. `control`
/// brings the interrupt flag and step hook; its checkpoint and state are set here. Of the
/// process `settings`, only `quiet` matters here (the data is loaded, the threads are set).
#[allow(clippy::too_many_arguments)]
pub fn train_preset(
    model: &ModelSpec,
    o: &TrainOptions,
    watch: &WatchOptions,
    settings: &Settings,
    train: &Dataset,
    test: &Dataset,
    out: &Path,
    log: &mut dyn Write,
    resume: bool,
    mut control: RunControl,
) -> Result<(History, Graph, Net)> {
    let (mut g, mut net) = model.build(train, o.seed, o.mode == ModeName::Binary)?;
    g.set_precision(o.precision.precision())?;
    let mut opt = build_optimizer(o, &mut net)?;
    let checkpoint = out.join(CHECKPOINT);
    let mut resumed_at = None;
    if resume {
        let mut state = load_checkpoint(&checkpoint, &mut net, &mut g, opt.as_mut())?;
        // the run's step, counted as fit counts it (epochs done times the loader's batches)
        let per_epoch = state.loader.num_batches(train.len);
        resumed_at = Some((state.epoch * per_epoch + state.step) as u64);
        // a run trained for more epochs keeps its new length for the next --resume
        let options = &mut state.history.config["options"];
        options["epochs"] = o.epochs.into();
        // a table that moved is recorded at its new place, for the next --resume
        if o.train_csv.is_some() {
            options["train_csv"] = serde_json::to_value(&o.train_csv).expect("a path serialises");
            options["test_csv"] = serde_json::to_value(&o.test_csv).expect("a path serialises");
        }
        if let Some(t_max) = o.cosine_t_max {
            options["cosine_t_max"] = t_max.into();
        }
        control.resume = Some(state);
    }
    let fit_opts = FitOptions {
        epochs: o.epochs,
        batch_size: o.batch_size,
        drop_last: o.drop_last,
        save_best: o.save_best.then(|| out.join(BEST)),
        early_stopping: o.early_stopping.then_some(o.patience),
        mode: o.mode.mode(),
        scheduler: scheduler(o),
        seed: o.seed,
        progress: !settings.quiet,
        augment: if o.augment {
            Some(Augmentation::for_dataset(data::parse_kind(&o.dataset)?))
        } else {
            None
        },
    };
    control.checkpoint = Some(checkpoint);
    if let Some(observer) = super::observe::RunObserver::new(watch, &net, out, resumed_at)? {
        control.observer = Some(Box::new(observer));
    }
    let history = fit_resumable(
        &mut net,
        &mut g,
        opt.as_mut(),
        train,
        test,
        &fit_opts,
        log,
        &mut control,
    )
    .map_err(name_the_flag)?;
    state_dict::save(&net, &g.params, &out.join(LAST))?;
    history.write_csv(&out.join(HISTORY_CSV))?;
    history.write_json(&out.join(HISTORY_JSON))?;
    bnlab::figure::history::write(&[(&model.label(), &history)], &out.join(HISTORY_PNG))?;
    super::observe::write_figure(watch, out)?;
    Ok((history, g, net))
}

/// What a run records of itself: the model (see `ModelSpec::config`), the options, the threads
/// it ran with and the data folder it was given (`--resume` reads the data from there again
/// unless its own command line names one).
pub fn run_config(
    model: &ModelSpec,
    opts: &TrainOptions,
    watch: &WatchOptions,
    settings: &Settings,
) -> serde_json::Value {
    let mut config = model.config();
    config["options"] = serde_json::to_value(opts).expect("options serialise");
    if watch.any() {
        config["watch"] = serde_json::to_value(watch).expect("options serialise");
    }
    config["threads"] = bnlab::runtime::threads().into();
    if let Some(dir) = &settings.data_dir {
        config[DATA_DIR] = serde_json::to_value(dir).expect("a path serialises");
    }
    config
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

pub fn run(a: &TrainArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    match &a.resume {
        Some(dir) => resume(a, settings, dir, out),
        None => start(a, settings, out),
    }
}

/// The default folder of `bnlab train`; when it holds a run, `runs/train-2`, `-3`, ...
pub const DEFAULT_OUT: &str = "runs/train";

/// A new run.
fn start(a: &TrainArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    validate(&a.opts)?;
    super::observe::validate(&a.watch)?;
    if let Some(dir) = &a.out {
        run_folder::check_not_shared(dir, "--out")?;
    }
    let opts = data::absolute_csv_paths(a.opts.clone())?;
    // the data first: a bad table or folder is reported before any run folder is made
    let run = data::load_run_data(&opts, settings.data_dir.as_deref())?;
    check_model(&model, &opts, &a.watch, &run.train)?;
    let folder = run_folder::claim_out(
        a.out.as_deref(),
        a.overwrite,
        DEFAULT_OUT,
        &run_folder::train_outputs(),
    )?;
    if a.out.is_none() && folder.path != Path::new(DEFAULT_OUT) {
        writeln!(
            out,
            "{DEFAULT_OUT} holds an earlier run: this one goes to {}",
            folder.path.display()
        )
        .map_err(super::stdout_err)?;
    }
    let run_in = Run {
        model: &model,
        opts: &opts,
        watch: &a.watch,
        settings,
        data: &run,
    };
    let result = train_and_report(&run_in, &folder.path, out, false);
    if result.is_err() {
        // nothing to resume: the folder is left as the run found it
        folder.abandon_unstarted();
    }
    result
}

/// What can be found wrong with the model on this data before a folder is claimed, so that
/// such a run leaves nothing behind: a model that does not fit the data (a CNN on a table,
/// the wrong number of outputs), a model with nothing to watch, and a batch of one example
/// that a BatchNorm cannot train on (tried on a throwaway copy of the model).
pub fn check_model(
    model: &ModelSpec,
    o: &TrainOptions,
    watch: &WatchOptions,
    train: &Dataset,
) -> Result<()> {
    let (mut g, mut net) = model.build(train, o.seed, o.mode == ModeName::Binary)?;
    if watch.any() {
        super::observe::recorder_for(watch, &net)?;
    }
    let n = train.len;
    if o.drop_last && n < o.batch_size {
        return Err(Error::Invalid(format!(
            "--drop-last with --batch-size {}: the {n} training examples make no full batch",
            o.batch_size
        )));
    }
    let one = o.batch_size == 1 || (n % o.batch_size == 1 && !o.drop_last);
    if !one || n == 0 {
        return Ok(());
    }
    bnlab::nn::set_training(&mut net, true);
    let mut bufs = bnlab::train::StepBuffers::default();
    match bnlab::train::run_batch(&mut net, &mut g, train, &[0], o.mode.mode(), &mut bufs) {
        Err(Error::Shape(m)) if m.contains(bnlab::nn::ONE_VALUE_PER_CHANNEL) => {
            Err(Error::Invalid(if o.batch_size == 1 {
                "--batch-size 1: BatchNorm cannot train on a batch of one example (Expected more \
                 than 1 value per channel); choose a --batch-size of 2 or more"
                    .to_string()
            } else {
                let batches = n.div_ceil(o.batch_size);
                format!(
                    "--batch-size {}: the last training batch ({batches} of {batches}, of {n} examples) \
                     holds one example, and BatchNorm cannot train on it (Expected more than 1 value \
                     per channel); choose another --batch-size, or pass --drop-last to skip it",
                    o.batch_size
                )
            }))
        }
        _ => Ok(()),
    }
}

/// `--resume DIR`: the run in DIR continues, with its own options and perhaps more epochs.
fn resume(a: &TrainArgs, settings: &Settings, dir: &Path, out: &mut dyn Write) -> Result<()> {
    resume::check_given(&a.given)?;
    let run = resume::read_run(dir)?;
    let epochs = a
        .given
        .iter()
        .any(|g| g == "epochs")
        .then_some(a.opts.epochs);
    let mut opts = match resume::plan(dir, &run, epochs)? {
        resume::Plan::Train(opts) => *opts,
        resume::Plan::Finished(line) => {
            writeln!(out, "{line}").map_err(super::stdout_err)?;
            return Ok(());
        }
    };
    // how this process runs: from this command line, the data where the run found it unless
    // this command line says where it is now
    let settings = Settings {
        data_dir: settings.data_dir.clone().or(run.data_dir.clone()),
        ..settings.clone()
    };
    let model = ModelSpec::from_config(&run.config)
        .map_err(|e| Error::bad_file(dir.join(CHECKPOINT), format!("cannot resume: {e}")))?;
    validate(&opts)?;
    // a table that moved: its new place from this command line, checked against the run's record
    let moved = data::absolute_csv_paths(a.opts.clone())?;
    let given = |id: &str| a.given.iter().any(|g| g == id);
    if given("train_csv") {
        opts.train_csv = moved.train_csv;
    }
    if given("test_csv") {
        opts.test_csv = moved.test_csv;
    }
    if let Some(sums) = run.config.get(data::CSV_SHA256) {
        data::check_csv_sha256(&opts, sums)?;
    }
    let folder = run_folder::claim(dir, "--resume", Claim::Resume, &run_folder::train_outputs())?;
    let data = data::load_run_data(&opts, settings.data_dir.as_deref())?;
    let more = if opts.epochs > run.options.epochs {
        format!(", trained to {} epochs", opts.epochs)
    } else {
        String::new()
    };
    writeln!(
        out,
        "Resuming the run in {} ({}, options from its checkpoint{more})",
        dir.display(),
        run.model
    )
    .map_err(super::stdout_err)?;
    // what the run watched: from its configuration (absent: nothing)
    let watch: WatchOptions = match run.config.get("watch") {
        Some(w) => serde_json::from_value(w.clone()).map_err(|_| {
            Error::bad_file(
                dir.join(CHECKPOINT),
                "cannot resume: its statistics options are not bnlab's",
            )
        })?,
        None => WatchOptions::default(),
    };
    let run_in = Run {
        model: &model,
        opts: &opts,
        watch: &watch,
        settings: &settings,
        data: &data,
    };
    train_and_report(&run_in, &folder.path, out, true)
}

/// A diverging run's advice, in the command line's words: the learning rate is `--lr`.
fn name_the_flag(e: Error) -> Error {
    match e {
        Error::NonFinite(at) => {
            Error::Invalid(format!("training stopped: {at} (try a lower --lr)"))
        }
        e => e,
    }
}

/// What `bnlab train` trains: a model, the run's options, what it watches, how this process
/// runs, and the data.
struct Run<'a> {
    model: &'a ModelSpec,
    opts: &'a TrainOptions,
    watch: &'a WatchOptions,
    settings: &'a Settings,
    data: &'a data::RunData,
}

/// Train into a claimed folder, with Ctrl-C and `BNLAB_PAUSE_AT` honoured, and say what was
/// written.
fn train_and_report(run: &Run, dir: &Path, out: &mut dyn Write, resume: bool) -> Result<()> {
    let Run {
        model,
        opts,
        watch,
        settings,
        data,
    } = *run;
    let interrupt = interrupt_flag();
    let mut config = run_config(model, opts, watch, settings);
    if let Some(sums) = &data.csv_sha256 {
        config[data::CSV_SHA256] = sums.clone();
    }
    let control = RunControl {
        after_step: pause_hook(interrupt.clone())?,
        interrupt,
        config,
        ..Default::default()
    };
    data.write_standardizer(dir)?;
    train_preset(
        model,
        opts,
        watch,
        settings,
        &data.train,
        &data.test,
        dir,
        out,
        resume,
        control,
    )?;
    let mut extra = String::new();
    if opts.save_best {
        extra += &format!(", {BEST}");
    }
    if data.standardizer.is_some() {
        extra += &format!(", {STANDARDIZE}");
    }
    if watch.stats {
        extra += &format!(", {STATS_CSV}, {STATS_PNG}");
    }
    writeln!(
        out,
        "Wrote {}/{HISTORY_CSV}, {HISTORY_JSON}, {HISTORY_PNG}, {LAST}, {CHECKPOINT}{extra}",
        dir.display()
    )
    .map_err(super::stdout_err)?;
    Ok(())
}
