//! The model a run trained, rebuilt from its recorded configuration for the report's
//! torchinfo table: the same `ModelSpec::from_config` and `bnlab::summary::summary` that
//! `--resume` and `bnlab summary` use, on the input shape of the run's data.

use crate::cli::model::{build_for_input, ModelSpec};
use crate::cli::run_folder::{LAST, STANDARDIZE};
use bnlab::data::table::Standardizer;
use bnlab::data::DatasetKind;
use bnlab::io::read_safetensors;
use bnlab::nn::Net;
use bnlab::{state_dict, Graph, Result, Rng};
use std::path::Path;

/// torchinfo's table of a run's model, and whether the run's `last.safetensors` fits it.
pub struct RunModel {
    /// The input shape the table is for (batch dimension 1).
    pub input: Vec<usize>,
    /// The table, as `bnlab summary` prints it.
    pub table: String,
    /// Why the run's weights do not load into the rebuilt model, when they do not (then the
    /// table may not describe what was trained).
    pub mismatch: Option<String>,
}

/// The model of the run in `dir` whose history has `config`; an error says why it cannot be
/// rebuilt (a model file that no longer parses, a table run without its standardize.json, ...).
pub fn run_model(dir: &Path, config: &serde_json::Value) -> Result<RunModel> {
    let spec = ModelSpec::from_config(config)?;
    let options = &config["options"];
    let dataset = options["dataset"].as_str().unwrap_or("mnist");
    let weights = dir.join(LAST);
    let (input, mut g, mut net) = if dataset == "csv" {
        let binary = options["mode"].as_str() == Some("binary");
        build_for_table(&spec, dir, &weights, binary)?
    } else {
        let kind: DatasetKind = dataset.parse()?;
        let [c, h, w] = kind.image_shape();
        let input = vec![1, c, h, w];
        let (g, net) = build_for_input(&spec, &input)?;
        (input, g, net)
    };
    let table = bnlab::summary::summary(&net, &g.params, &input)?;
    let mismatch = if weights.is_file() {
        state_dict::load(&mut net, &mut g.params, &weights)
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    Ok(RunModel {
        input,
        table,
        mismatch,
    })
}

/// A table run's model, as `bnlab train` sized it: one input per column of its standardisation
/// (`standardize.json`, written before training); an MLP preset's outputs are one logit in the
/// binary mode and otherwise as many as the trained weights' `output` layer has (the classes
/// of the training table, which the run's files do not record elsewhere).
fn build_for_table(
    spec: &ModelSpec,
    dir: &Path,
    weights: &Path,
    binary: bool,
) -> Result<(Vec<usize>, Graph, Net)> {
    let stats_path = dir.join(STANDARDIZE);
    let text =
        std::fs::read_to_string(&stats_path).map_err(|e| bnlab::Error::io(&stats_path, e))?;
    let stats: Standardizer = serde_json::from_str(&text)
        .map_err(|e| bnlab::Error::bad_file(&stats_path, format!("not a standardisation ({e})")))?;
    let input = vec![1, stats.columns.len()];
    let mut rng = Rng::seed(0);
    let mut g = Graph::new(0);
    let net = match spec {
        ModelSpec::Preset(preset) => {
            let outputs = if binary {
                1
            } else {
                let file = read_safetensors(weights)?;
                let bias = file.f32("output.bias", weights)?;
                match bias.shape[..] {
                    [n] => n,
                    _ => {
                        return Err(bnlab::Error::bad_file(
                            weights,
                            format!("output.bias has shape {:?}, not one dimension", bias.shape),
                        ))
                    }
                }
            };
            let mut dims = bnlab::presets::SEED_DIMS;
            dims[0] = input[1];
            dims[4] = outputs;
            bnlab::presets::mlp(&mut g.params, *preset, &dims, &mut rng)?
        }
        ModelSpec::File(f) => f.build(&input, &mut g.params, &mut rng)?,
    };
    Ok((input, g, net))
}
