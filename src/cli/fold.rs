//! `bnlab fold`: a trained model with its eval-mode BatchNorms folded into the layers beside
//! them, written as a state dict and a model file.

use super::args::FoldArgs;
use super::model::{build_for_input, parse_model};
use super::summary::parse_shape;
use bnlab::nn::set_training;
use bnlab::{state_dict, Error, Result};
use std::io::Write;

/// The files `fold` writes into its folder.
pub const FOLDED_WEIGHTS: &str = "folded.safetensors";
/// The folded model as PyTorch prints it.
pub const FOLDED_MODEL: &str = "model.txt";

pub fn run(a: &FoldArgs, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    let input = parse_shape(a.input.as_deref().unwrap_or("1,1,28,28"))?;
    let (weights_out, model_out) = (a.out.join(FOLDED_WEIGHTS), a.out.join(FOLDED_MODEL));
    if !a.overwrite {
        if let Some(p) = [&weights_out, &model_out].into_iter().find(|p| p.exists()) {
            return Err(Error::Invalid(format!(
                "--out {}: {} exists (--overwrite replaces it)",
                a.out.display(),
                p.file_name().unwrap_or_default().to_string_lossy()
            )));
        }
    }
    let (mut g, mut net) = build_for_input(&model, &input)?;
    state_dict::load(&mut net, &mut g.params, &a.weights)?;
    set_training(&mut net, false);
    let report = bnlab::fold::fold(&mut net, &mut g.params)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    state_dict::save(&net, &g.params, &weights_out)?;
    let text = bnlab::model_file::print::print_net(&net);
    bnlab::io::atomic::write_atomic(&model_out, text.as_bytes())?;
    for (bn, into) in &report.folded {
        writeln!(out, "folded {bn} into {into}").map_err(super::stdout_err)?;
    }
    for (bn, why) in &report.kept {
        writeln!(out, "kept {bn}: {why}").map_err(super::stdout_err)?;
    }
    writeln!(
        out,
        "Wrote {} and {} ({} folded, {} kept)",
        weights_out.display(),
        model_out.display(),
        report.folded.len(),
        report.kept.len()
    )
    .map_err(super::stdout_err)
}
