//! `bnlab experiment NAME`: check the options, load MNIST, claim the output folder (never
//! writing over a finished result unless told), run the library's experiment over its seeds
//! (or one shard of its runs) and write its files; `bnlab experiment merge` puts shards
//! together.

use super::args::{ExperimentArgs, ExperimentCommon, ExperimentName, Settings};
use super::data;
use super::run_folder;
use bnlab::data::DatasetKind;
use bnlab::experiment::design::{do_runs, parse_seeds, run_ids};
use bnlab::experiment::shard::{merge, parse_shard, Shard, ShardFile, SHARD};
use bnlab::experiment::{
    batch_size, ioffe2015, lr_sweep, placement, run_design, smoothness, Design, REPORT, RESULTS,
};
use bnlab::{Error, Precision, Result};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The experiment named on the command line, its options checked.
fn plan(which: &ExperimentName, seed: u64, precision: Precision) -> Result<Box<dyn Design>> {
    Ok(match which {
        ExperimentName::Ioffe2015 { steps, every, .. } => {
            let o = ioffe2015::Options {
                steps: *steps,
                every: *every,
                seed,
                precision,
                ..Default::default()
            };
            o.validate()?;
            Box::new(o)
        }
        ExperimentName::LrSweep { lrs, epochs, .. } => {
            let mut o = lr_sweep::Options {
                epochs: *epochs,
                seed,
                precision,
                ..Default::default()
            };
            if let Some(lrs) = lrs {
                o.lrs = lrs.clone();
            }
            o.validate()?;
            Box::new(o)
        }
        ExperimentName::BatchSize {
            batch_sizes,
            examples,
            ..
        } => {
            let mut o = batch_size::Options {
                examples: *examples,
                seed,
                precision,
                ..Default::default()
            };
            if let Some(b) = batch_sizes {
                o.batch_sizes = b.clone();
            }
            o.validate()?;
            Box::new(o)
        }
        ExperimentName::Placement { epochs, .. } => {
            let o = placement::Options {
                epochs: *epochs,
                seed,
                precision,
            };
            o.validate()?;
            Box::new(o)
        }
        ExperimentName::Smoothness {
            steps, every, lr, ..
        } => {
            let o = smoothness::Options {
                steps: *steps,
                every: *every,
                lr: *lr,
                seed,
                precision,
                ..Default::default()
            };
            o.validate()?;
            Box::new(o)
        }
        ExperimentName::Merge { .. } => unreachable!("merge runs no experiment"),
    })
}

/// The seeds: --seeds, or the one --seed.
fn seeds(c: &ExperimentCommon) -> Result<Vec<u64>> {
    match &c.seeds {
        Some(s) => parse_seeds(s).map_err(|e| Error::Invalid(format!("--seeds {s}: {e}"))),
        None => Ok(vec![c.seed]),
    }
}

pub fn run(a: &ExperimentArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let Some(common) = a.which.common() else {
        let ExperimentName::Merge {
            dirs,
            out: to,
            overwrite,
        } = &a.which
        else {
            unreachable!("only merge has no common options")
        };
        return merge_command(dirs, to, *overwrite, out);
    };
    // the options first, then the data: nothing is made before both are known good
    let seeds = seeds(common)?;
    common.precision.check()?;
    let design = plan(&a.which, seeds[0], common.precision.precision())?;
    let shard = common
        .shard
        .as_deref()
        .map(|s| parse_shard(s, &|k| std::env::var(k).ok()))
        .transpose()?;
    let name = design.name();
    let (train, test) = data::load_both(DatasetKind::Mnist, settings.data_dir.as_deref())?;
    let started = Instant::now();
    if let Some(shard) = shard {
        let folder = claim_shard(name, shard, common)?;
        let ids = shard.pick(&run_ids(design.as_ref(), &seeds));
        writeln!(
            out,
            "Experiment {name}, shard {} of {}: {} of its {} runs; the shard goes to {}",
            shard.index,
            shard.count,
            ids.len(),
            run_ids(design.as_ref(), &seeds).len(),
            folder.path.display()
        )
        .map_err(super::stdout_err)?;
        let bar = progress(ids.len(), settings.quiet);
        let done = do_runs(design.as_ref(), &ids, &train, &test, &|k, _| bar.set(k))?;
        bar.finish();
        let path = ShardFile::new(design.as_ref(), &seeds, shard, done).write(&folder.path)?;
        writeln!(
            out,
            "{:.1} seconds. Wrote {}; put the shards together with: bnlab experiment merge DIR... --out DIR",
            started.elapsed().as_secs_f64(),
            path.display()
        )
        .map_err(super::stdout_err)?;
        return Ok(());
    }
    let folder = claim(name, common)?;
    let total = run_ids(design.as_ref(), &seeds).len();
    writeln!(
        out,
        "Experiment {name}: {total} runs ({} seed{}); results go to {}",
        seeds.len(),
        if seeds.len() == 1 { "" } else { "s" },
        folder.path.display()
    )
    .map_err(super::stdout_err)?;
    let bar = progress(total, settings.quiet);
    let outcome = run_design(design.as_ref(), &seeds, &train, &test, &|k, _| bar.set(k))?;
    bar.finish();
    outcome.write(&folder.path, out)
}

/// `bnlab experiment merge DIR... --out DIR`.
fn merge_command(dirs: &[PathBuf], to: &Path, overwrite: bool, out: &mut dyn Write) -> Result<()> {
    // every check first: a refused merge makes no folder
    let outcome = merge(dirs)?;
    let folder = run_folder::claim_out(Some(to), overwrite, "", &outputs(outcome.name))?;
    writeln!(
        out,
        "Merged {} shards of {}; results go to {}",
        dirs.len(),
        outcome.name,
        folder.path.display()
    )
    .map_err(super::stdout_err)?;
    outcome.write(&folder.path, out)
}

/// The files an experiment writes.
fn outputs(name: &str) -> Vec<PathBuf> {
    let figure = format!("{name}.png");
    [RESULTS, REPORT, &figure]
        .iter()
        .map(PathBuf::from)
        .collect()
}

/// The experiment's folder: --out, or the first free runs/NAME, runs/NAME-2, ...
fn claim(name: &str, c: &ExperimentCommon) -> Result<run_folder::RunFolder> {
    run_folder::claim_out(
        c.out.as_deref(),
        c.overwrite,
        &format!("runs/{name}"),
        &outputs(name),
    )
}

/// A shard's folder: --out, or the first free runs/NAME-shard-K-of-N, ...
fn claim_shard(name: &str, s: Shard, c: &ExperimentCommon) -> Result<run_folder::RunFolder> {
    run_folder::claim_out(
        c.out.as_deref(),
        c.overwrite,
        &format!("runs/{name}-shard-{}-of-{}", s.index, s.count),
        &[PathBuf::from(SHARD)],
    )
}

/// Runs done of all and the time left, on stderr when it is a terminal (and not --quiet).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn set(&self, done: usize) {
        if let Some(b) = &self.0 {
            b.set_position(done as u64);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

fn progress(total: usize, quiet: bool) -> Progress {
    if quiet || !std::io::stderr().is_terminal() {
        return Progress(None);
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} runs done, {elapsed} so far, about {eta} left",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    Progress(Some(bar))
}
