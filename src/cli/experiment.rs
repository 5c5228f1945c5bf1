//! `bnlab experiment NAME`: check the options, load MNIST, claim the output folder (never
//! writing over a finished result unless told), run the library's experiment and write its
//! files.

use super::args::{ExperimentArgs, ExperimentCommon, ExperimentName, Settings};
use super::data;
use super::run_folder;
use bnlab::data::{Dataset, DatasetKind};
use bnlab::experiment::{batch_size, ioffe2015, lr_sweep, placement, Outcome, REPORT, RESULTS};
use bnlab::Result;
use std::io::Write;
use std::path::PathBuf;

/// One experiment, its options checked, ready to run.
enum Planned {
    Ioffe2015(ioffe2015::Options),
    LrSweep(lr_sweep::Options),
    BatchSize(batch_size::Options),
    Placement(placement::Options),
}

impl Planned {
    fn name(&self) -> &'static str {
        match self {
            Planned::Ioffe2015(_) => "ioffe2015",
            Planned::LrSweep(_) => "lr-sweep",
            Planned::BatchSize(_) => "batch-size",
            Planned::Placement(_) => "placement",
        }
    }

    fn run(&self, train: &Dataset, test: &Dataset, out: &mut dyn Write) -> Result<Outcome> {
        match self {
            Planned::Ioffe2015(o) => ioffe2015::run(o, train, test, out),
            Planned::LrSweep(o) => lr_sweep::run(o, train, test, out),
            Planned::BatchSize(o) => batch_size::run(o, train, test, out),
            Planned::Placement(o) => placement::run(o, train, test, out),
        }
    }
}

fn plan(which: &ExperimentName) -> Result<Planned> {
    let seed = which.common().seed;
    Ok(match which {
        ExperimentName::Ioffe2015 { steps, every, .. } => {
            let o = ioffe2015::Options {
                steps: *steps,
                every: *every,
                seed,
                ..Default::default()
            };
            o.validate()?;
            Planned::Ioffe2015(o)
        }
        ExperimentName::LrSweep { lrs, epochs, .. } => {
            let mut o = lr_sweep::Options {
                epochs: *epochs,
                seed,
                ..Default::default()
            };
            if let Some(lrs) = lrs {
                o.lrs = lrs.clone();
            }
            o.validate()?;
            Planned::LrSweep(o)
        }
        ExperimentName::BatchSize {
            batch_sizes,
            examples,
            ..
        } => {
            let mut o = batch_size::Options {
                examples: *examples,
                seed,
                ..Default::default()
            };
            if let Some(b) = batch_sizes {
                o.batch_sizes = b.clone();
            }
            o.validate()?;
            Planned::BatchSize(o)
        }
        ExperimentName::Placement { epochs, .. } => {
            let o = placement::Options {
                epochs: *epochs,
                seed,
            };
            o.validate()?;
            Planned::Placement(o)
        }
    })
}

pub fn run(a: &ExperimentArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let common = a.which.common();
    // the options first, then the data: nothing is made before both are known good
    let planned = plan(&a.which)?;
    let name = planned.name();
    let (train, test) = data::load_both(DatasetKind::Mnist, settings.data_dir.as_deref())?;
    let folder = claim(name, common)?;
    writeln!(
        out,
        "Experiment {name}: results go to {}",
        folder.path.display()
    )
    .map_err(super::stdout_err)?;
    let outcome = planned.run(&train, &test, out)?;
    outcome.write(&folder.path, out)
}

/// The experiment's folder: --out, or the first free runs/NAME, runs/NAME-2, ...
fn claim(name: &str, c: &ExperimentCommon) -> Result<run_folder::RunFolder> {
    let figure = format!("{name}.png");
    let outputs: Vec<PathBuf> = [RESULTS, REPORT, &figure]
        .iter()
        .map(PathBuf::from)
        .collect();
    run_folder::claim_out(
        c.out.as_deref(),
        c.overwrite,
        &format!("runs/{name}"),
        &outputs,
    )
}
