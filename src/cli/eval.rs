//! `bnlab eval`: test-set loss and accuracy of saved weights.

use super::args::{EvalArgs, LossMean, ModeName, Settings};
use super::data;
use super::model::{parse_model, ModelSpec};
use bnlab::data::Dataset;
use bnlab::nn::Net;
use bnlab::train::evaluate_with;
use bnlab::{state_dict, Error, Graph, Result};
use std::io::Write;
use std::path::Path;

pub fn run(a: &EvalArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    if a.batch_size == 0 {
        return Err(Error::Invalid("--batch-size must be at least 1".into()));
    }
    a.precision.check()?;
    let binary = a.mode == ModeName::Binary;
    let test = if a.dataset == "csv" {
        let (Some(csv), Some(target)) = (&a.test_csv, &a.target) else {
            return Err(Error::Invalid(
                "--dataset csv needs --test-csv FILE and --target COLUMN".into(),
            ));
        };
        data::load_eval_table(csv, target, binary, &a.weights, a.standardize.as_deref())?
    } else {
        if a.test_csv.is_some() || a.target.is_some() || binary || a.standardize.is_some() {
            return Err(Error::Invalid(
                "--test-csv, --target, --standardize and --mode binary apply to --dataset csv only"
                    .into(),
            ));
        }
        let kind = data::parse_kind(&a.dataset)?;
        data::load_test(kind, settings.data_dir.as_deref())?
    };
    let (mut g, mut net) = load(&model, &test, binary, &a.weights)?;
    g.set_precision(a.precision.precision())?;
    let mean = match a.loss_mean {
        LossMean::Batch => bnlab::train::LossMean::Batch,
        LossMean::Example => bnlab::train::LossMean::Example,
    };
    let (loss, accuracy) =
        evaluate_with(&mut net, &mut g, &test, a.batch_size, a.mode.mode(), mean)?;
    if a.json {
        let json = serde_json::json!({ "loss": loss, "accuracy": accuracy, "samples": test.len });
        writeln!(out, "{json}").map_err(super::stdout_err)?;
    } else {
        writeln!(
            out,
            "Test loss: {loss:.5} Test Accuracy: {accuracy:.5} ({} samples)",
            test.len
        )
        .map_err(super::stdout_err)?;
    }
    Ok(())
}

/// The model with the weights loaded. Weights a table run trained in the other mode (one logit
/// for --mode binary, one per class otherwise) do not fit: when they fit the other mode's
/// model, the error says so instead of listing shapes.
fn load(model: &ModelSpec, test: &Dataset, binary: bool, weights: &Path) -> Result<(Graph, Net)> {
    let (mut g, mut net) = model.build(test, 0, binary)?;
    let Err(e) = state_dict::load(&mut net, &mut g.params, weights) else {
        return Ok((g, net));
    };
    if test.is_tabular() {
        let other = model
            .build(test, 0, !binary)
            .and_then(|(mut g, mut net)| state_dict::load(&mut net, &mut g.params, weights));
        if other.is_ok() {
            let (given, needed, what) = if binary {
                ("--mode binary", "--mode multi", "one output per class")
            } else {
                ("--mode multi", "--mode binary", "one logit")
            };
            return Err(Error::Invalid(format!(
                "{}: these weights were trained with {needed} ({what}), not {given}; evaluate them with {needed}",
                weights.display()
            )));
        }
    }
    Err(e)
}
