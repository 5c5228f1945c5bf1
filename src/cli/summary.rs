//! `bnlab summary`: torchinfo's table for a preset.

use super::args::SummaryArgs;
use super::train::parse_preset;
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
    let preset = parse_preset(&a.model)?;
    let default_input = if preset.is_cnn() {
        "1,1,28,28"
    } else {
        "1,28,28"
    };
    let input = parse_shape(a.input.as_deref().unwrap_or(default_input))?;
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
    let mut g = Graph::new(0);
    let net = preset
        .build(&mut g.params, channels, side, &mut Rng::seed(0))
        .map_err(|e| Error::Invalid(format!("--input {input:?}: {e}")))?;
    let table = bnlab::summary::summary(&net, &g.params, &input).map_err(|e| {
        Error::Invalid(format!(
            "--input {}: {e}",
            a.input.as_deref().unwrap_or(default_input)
        ))
    })?;
    writeln!(out, "{table}").map_err(super::stdout_err)
}
