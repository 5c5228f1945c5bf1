//! `bnlab experiment NAME`: load MNIST, claim the output folder (never writing over a finished
//! result unless told), run the library's experiment and write its files.

use super::args::{ExperimentArgs, ExperimentCommon, ExperimentName};
use super::data;
use super::run_folder;
use bnlab::data::DatasetKind;
use bnlab::experiment::{ioffe2015, Outcome};
use bnlab::Result;
use std::io::Write;
use std::path::PathBuf;

pub fn run(a: &ExperimentArgs, out: &mut dyn Write) -> Result<()> {
    let common = a.which.common();
    let (name, check): (&str, Box<dyn Fn() -> Result<()>>) = match &a.which {
        ExperimentName::Ioffe2015 { steps, every, .. } => {
            let (steps, every) = (*steps, *every);
            (
                "ioffe2015",
                Box::new(move || {
                    ioffe2015::Options {
                        steps,
                        every,
                        ..Default::default()
                    }
                    .validate()
                }),
            )
        }
    };
    check()?;
    let (train, test) = data::load_both(DatasetKind::Mnist, common.data_dir.as_deref())?;
    let folder = claim(name, common)?;
    writeln!(
        out,
        "Experiment {name}: results go to {}",
        folder.path.display()
    )
    .map_err(super::stdout_err)?;
    let outcome: Outcome = match &a.which {
        ExperimentName::Ioffe2015 {
            steps,
            every,
            common,
        } => {
            let o = ioffe2015::Options {
                steps: *steps,
                every: *every,
                seed: common.seed,
                ..Default::default()
            };
            ioffe2015::run(&o, &train, &test, out)?
        }
    };
    outcome.write(&folder.path, out)
}

/// The experiment's folder: --out, or the first free runs/NAME, runs/NAME-2, ...
fn claim(name: &str, c: &ExperimentCommon) -> Result<run_folder::RunFolder> {
    let outputs: Vec<PathBuf> = ["results.json", "report.html"]
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
