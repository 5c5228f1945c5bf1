//! `bnlab eval`: test-set loss and accuracy of saved weights.

use super::args::EvalArgs;
use super::data;
use super::model::parse_model;
use bnlab::train::{evaluate, Mode};
use bnlab::{state_dict, Error, Result};
use std::io::Write;

pub fn run(a: &EvalArgs, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    if a.batch_size == 0 {
        return Err(Error::Invalid("--batch-size must be at least 1".into()));
    }
    let kind = data::parse_kind(&a.dataset)?;
    let test = data::load_test(kind, a.data_dir.as_deref())?;
    let (mut g, mut net) = model.build(&test, 0)?;
    state_dict::load(&mut net, &mut g.params, &a.weights)?;
    let (loss, accuracy) = evaluate(&mut net, &mut g, &test, a.batch_size, Mode::Multi)?;
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
