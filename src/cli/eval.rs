//! `bnlab eval`: test-set loss and accuracy of saved weights.

use super::args::ModeName;
use super::args::{EvalArgs, Settings};
use super::data;
use super::model::parse_model;
use bnlab::train::evaluate;
use bnlab::{state_dict, Error, Result};
use std::io::Write;

pub fn run(a: &EvalArgs, settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    if a.batch_size == 0 {
        return Err(Error::Invalid("--batch-size must be at least 1".into()));
    }
    let binary = a.mode == ModeName::Binary;
    let test = if a.dataset == "csv" {
        let (Some(csv), Some(target)) = (&a.test_csv, &a.target) else {
            return Err(Error::Invalid(
                "--dataset csv needs --test-csv FILE and --target COLUMN".into(),
            ));
        };
        data::load_eval_table(csv, target, binary, &a.weights)?
    } else {
        if a.test_csv.is_some() || a.target.is_some() || binary {
            return Err(Error::Invalid(
                "--test-csv, --target and --mode binary apply to --dataset csv only".into(),
            ));
        }
        let kind = data::parse_kind(&a.dataset)?;
        data::load_test(kind, settings.data_dir.as_deref())?
    };
    let (mut g, mut net) = model.build(&test, 0, binary)?;
    state_dict::load(&mut net, &mut g.params, &a.weights)?;
    let (loss, accuracy) = evaluate(&mut net, &mut g, &test, a.batch_size, a.mode.mode())?;
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
