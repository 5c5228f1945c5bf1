//! `bnlab compare`: train several presets with the same seed and data order, print a table and
//! draw every run on one plot.

use super::args::{CompareArgs, Settings};
use super::data;
use super::model::{parse_model, ModelSpec};
use super::run_folder::{self, RUN_FILES};
use super::train::{train_preset, validate};
use bnlab::train::{History, RunControl};
use bnlab::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The default folder of `bnlab compare`; when it holds results, `runs/compare-2`, `-3`, ...
const DEFAULT_OUT: &str = "runs/compare";

/// The comparison's plot, in its folder beside each model's.
const PLOT: &str = "compare.png";

/// What a comparison of `presets` writes, relative to its folder: its plot and each model's
/// run files.
fn outputs(models: &[ModelSpec]) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(PLOT)];
    for m in models {
        files.extend(RUN_FILES.iter().map(|f| Path::new(&m.label()).join(f)));
    }
    files
}

pub fn run(a: &CompareArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let presets = a
        .models
        .split(',')
        .filter(|m| !m.trim().is_empty())
        .map(|m| parse_model(m.trim(), "--models"))
        .collect::<Result<Vec<ModelSpec>>>()?;
    let mut labels: Vec<String> = presets.iter().map(ModelSpec::label).collect();
    labels.sort();
    if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Invalid(format!(
            "--models: '{}' is named twice (each model's files go to a folder of its name)",
            w[0]
        )));
    }
    if presets.is_empty() {
        return Err(Error::Invalid("--models: name at least one model".into()));
    }
    validate(&a.opts)?;
    if a.opts.dataset != "csv" {
        data::parse_kind(&a.opts.dataset)?;
    }
    if let Some(dir) = &a.out {
        run_folder::check_not_shared(dir, "--out")?;
    }
    // the data and every model on it before a folder is claimed: a table or model that does not
    // fit leaves nothing behind
    let run_data = data::load_run_data(&a.opts, settings.data_dir.as_deref())?;
    for preset in &presets {
        super::train::check_model(preset, &a.opts, &Default::default(), &run_data.train)?;
    }
    let outputs = outputs(&presets);
    let folder = run_folder::claim_out(a.out.as_deref(), a.overwrite, DEFAULT_OUT, &outputs)?;
    let root = &folder.path;
    let (train, test) = (&run_data.train, &run_data.test);
    let mut runs: Vec<(String, History)> = Vec::new();
    for preset in &presets {
        let name = preset.label();
        writeln!(out, "--- {name} ---").map_err(super::stdout_err)?;
        let dir = root.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        run_data.write_standardizer(&dir)?;
        let control = RunControl {
            config: super::train::run_config(preset, &a.opts, &Default::default(), settings),
            ..Default::default()
        };
        let (history, _, _) = train_preset(
            preset,
            &a.opts,
            &Default::default(),
            settings,
            train,
            test,
            &dir,
            out,
            false,
            control,
        )?;
        runs.push((name, history));
    }
    writeln!(
        out,
        "\n{:<16}{:>22}{:>12}{:>18}{:>12}",
        "model", "best val accuracy", "at epoch", "final val loss", "seconds"
    )
    .map_err(super::stdout_err)?;
    for (name, h) in &runs {
        let (best_epoch, best_acc) = h
            .epochs
            .iter()
            .map(|e| (e.epoch, e.val_accuracy))
            .fold((0, f64::MIN), |best, e| if e.1 > best.1 { e } else { best });
        let last = h.epochs.last().map_or(f64::NAN, |e| e.val_loss);
        writeln!(
            out,
            "{name:<16}{best_acc:>22.5}{best_epoch:>12}{last:>18.5}{:>12.2}",
            h.elapsed_seconds
        )
        .map_err(super::stdout_err)?;
    }
    let plot = root.join(PLOT);
    let refs: Vec<(&str, &History)> = runs.iter().map(|(n, h)| (n.as_str(), h)).collect();
    bnlab::figure::history::write(&refs, &plot)?;
    writeln!(out, "Wrote {} and one folder per model", plot.display())
        .map_err(super::stdout_err)?;
    Ok(())
}
