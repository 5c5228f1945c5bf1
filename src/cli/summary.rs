//! `bnlab summary`: torchinfo's table for a preset or a model file.

use super::args::{PrecisionName, SummaryArgs};
use super::model::{parse_model, ModelSpec};
use bnlab::{Error, Graph, Result, Rng};
use std::io::Write;

/// "1,28,28" -> [1, 28, 28]
pub fn parse_shape(text: &str) -> Result<Vec<usize>> {
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Error::Invalid(format!(
                "--input {text}: expected positive integers separated by commas, like 1,28,28"
            ))
        })?;
    if dims.is_empty() || dims.contains(&0) {
        return Err(Error::Invalid(format!(
            "--input {text}: every dimension must be at least 1"
        )));
    }
    Ok(dims)
}

pub fn run(a: &SummaryArgs, out: &mut dyn Write) -> Result<()> {
    let model = parse_model(&a.model, "--model")?;
    let default_input = if model.takes_images() {
        "1,1,28,28"
    } else {
        "1,28,28"
    };
    let given = a.input.as_deref().unwrap_or(default_input);
    let input = parse_shape(given)?;
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let table_sized = matches!(&model, ModelSpec::Preset(p) if !p.is_cnn()) && input.len() == 2;
    if a.outputs.is_some() && !table_sized {
        return Err(Error::Invalid(
            "--outputs sizes an MLP preset for --input N,F (a table's rows) only".into(),
        ));
    }
    let net = match &model {
        // an MLP preset as a table run sizes it: F features in, one output per class
        ModelSpec::Preset(preset) if table_sized => {
            let outputs = a.outputs.unwrap_or(10);
            if outputs == 0 {
                return Err(Error::Invalid("--outputs must be at least 1".into()));
            }
            let mut dims = bnlab::presets::SEED_DIMS;
            dims[0] = input[1];
            dims[4] = outputs;
            bnlab::presets::mlp(&mut g.params, *preset, &dims, &mut rng)
                .map_err(|e| Error::Invalid(format!("--input {given}: {e}")))?
        }
        ModelSpec::Preset(preset) => {
            let (channels, side) = if preset.is_cnn() {
                match input[..] {
                    [_, c, h, w] if h == w => (c, h),
                    _ => {
                        return Err(Error::Invalid(format!(
                            "--input {input:?}: {preset} takes (N, C, H, W) with H = W"
                        )))
                    }
                }
            } else {
                (1, 28)
            };
            preset
                .build(&mut g.params, channels, side, &mut rng)
                .map_err(|e| Error::Invalid(format!("--input {input:?}: {e}")))?
        }
        // a model file is built for the input given: its shapes are checked against it
        ModelSpec::File(f) => f.build(&input, &mut g.params, &mut rng)?,
    };
    let table = bnlab::summary::summary(&net, &g.params, &input)
        .map_err(|e| Error::Invalid(format!("--input {given}: {e}")))?;
    writeln!(out, "{table}").map_err(super::stdout_err)?;
    if a.precision == PrecisionName::Bf16 {
        writeln!(out, "{BF16_LINE}").map_err(super::stdout_err)?;
    }
    Ok(())
}

/// What `--precision bf16` changes, under torchinfo's table (whose sizes stay right: bnlab keeps
/// the parameters and every layer's output in float32).
pub const BF16_LINE: &str = "Precision: bf16 (Linear and Conv2d products take bfloat16 operands \
     and sum in float32; parameters, outputs and the sizes above stay float32)";
