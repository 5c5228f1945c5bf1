//! What `--model` names: a preset by its name, or a model file (PyTorch's printed module).

use bnlab::data::Dataset;
use bnlab::model_file::ModelFile;
use bnlab::nn::Net;
use bnlab::presets::{Preset, PRESET_NAMES};
use bnlab::{Error, Graph, Result, Rng};
use std::path::Path;

/// A model the command line can build.
pub enum ModelSpec {
    /// One of the presets.
    Preset(Preset),
    /// A model file, read and parsed.
    File(ModelFile),
}

/// `--model NAME|FILE` (`flag` names the option in errors): a preset's name, or else a path to
/// a model file.
pub fn parse_model(arg: &str, flag: &str) -> Result<ModelSpec> {
    if let Ok(p) = arg.parse::<Preset>() {
        return Ok(ModelSpec::Preset(p));
    }
    let path = Path::new(arg);
    let looks_like_a_file = path.exists() || arg.contains(['/', '\\', '.']);
    if !looks_like_a_file {
        return Err(Error::Invalid(format!(
            "{flag}: unknown model '{arg}' (choose one of: {PRESET_NAMES}, or give a model file)"
        )));
    }
    ModelFile::read(path).map(ModelSpec::File)
}

impl ModelSpec {
    /// The name runs are labelled with: the preset's, or the file's stem.
    pub fn label(&self) -> String {
        match self {
            ModelSpec::Preset(p) => p.to_string(),
            ModelSpec::File(f) => f
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| f.class().to_string()),
        }
    }

    /// True for a preset that takes (N, C, H, W) images as they are (the CNNs); a model file
    /// is given the images as they are too (its first Linear flattens them).
    pub fn takes_images(&self) -> bool {
        match self {
            ModelSpec::Preset(p) => p.is_cnn(),
            ModelSpec::File(_) => true,
        }
    }

    /// What a run's configuration records to rebuild the model: the preset's name, or the
    /// file's path and its whole text (so that `--resume` and `eval` do not depend on the file
    /// staying where it was).
    pub fn config(&self) -> serde_json::Value {
        match self {
            ModelSpec::Preset(p) => serde_json::json!({ "model": p.to_string() }),
            ModelSpec::File(f) => serde_json::json!({
                "model": f.path.display().to_string(),
                "model_text": f.text,
            }),
        }
    }

    /// The model a run's configuration describes (see [`ModelSpec::config`]).
    pub fn from_config(config: &serde_json::Value) -> Result<ModelSpec> {
        let model = config["model"]
            .as_str()
            .ok_or_else(|| Error::Invalid("no model in the run's configuration".into()))?;
        match config["model_text"].as_str() {
            Some(text) => {
                ModelFile::from_text(text.to_string(), Path::new(model)).map(ModelSpec::File)
            }
            None => parse_model(model, "the run's model"),
        }
    }

    /// The model for a dataset's examples (one batch dimension added to each example's shape),
    /// initialised from `seed` (the same draws as the same preset). On a table, an MLP preset
    /// takes its width and gives one output per class, or one logit when `binary`.
    pub fn build(&self, ds: &Dataset, seed: u64, binary: bool) -> Result<(Graph, Net)> {
        let (mut g, mut rng) = bnlab::train::seeded(seed);
        let net = match self {
            ModelSpec::Preset(preset) if ds.is_tabular() => {
                if preset.is_cnn() {
                    return Err(Error::Invalid(format!(
                        "--model {preset} takes images; a table needs an MLP preset or a model file"
                    )));
                }
                let mut dims = bnlab::presets::SEED_DIMS;
                dims[0] = ds.width;
                dims[4] = if binary { 1 } else { ds.num_classes };
                bnlab::presets::mlp(&mut g.params, *preset, &dims, &mut rng)?
            }
            ModelSpec::Preset(preset) => {
                if ds.height != ds.width {
                    return Err(Error::Invalid(format!(
                        "images of {}x{} are not square",
                        ds.height, ds.width
                    )));
                }
                preset.build(&mut g.params, ds.channels, ds.height, &mut rng)?
            }
            ModelSpec::File(f) => f.build(&ds.batch_shape(1), &mut g.params, &mut rng)?,
        };
        check_outputs(&net, ds, binary)?;
        Ok((g, net))
    }
}

/// The model for inputs of `input` (batch dimension included), to load trained weights into:
/// a preset takes (N, C, H, W) images with H = W, a model file is built and checked for the
/// shape. The initial values do not matter (the weights replace them); seed 0.
pub fn build_for_input(model: &ModelSpec, input: &[usize]) -> Result<(Graph, Net)> {
    let mut g = Graph::new(0);
    let mut rng = Rng::seed(0);
    let net = match model {
        ModelSpec::Preset(p) => match input[..] {
            [_, c, h, w] if h == w => p.build(&mut g.params, c, h, &mut rng)?,
            _ => {
                return Err(Error::Invalid(format!(
                    "--input {input:?}: {p} takes (N, C, H, W) images with H = W"
                )))
            }
        },
        ModelSpec::File(f) => f.build(input, &mut g.params, &mut rng)?,
    };
    Ok((g, net))
}

/// The model's outputs fit the data: one logit in the binary mode, one per class otherwise.
fn check_outputs(net: &Net, ds: &Dataset, binary: bool) -> Result<()> {
    use bnlab::nn::Forward;
    let out = net.output_shape(&ds.batch_shape(1))?;
    let outputs = out.last().copied().unwrap_or(0);
    if binary && (out.len() != 2 || outputs != 1) {
        return Err(Error::Invalid(format!(
            "--mode binary needs one logit per example; the model gives {out:?}"
        )));
    }
    if !binary {
        if let Some(&max) = ds.labels.iter().max() {
            if max as usize >= outputs {
                return Err(Error::Invalid(format!(
                    "the data has class {max}, outside the model's {outputs} outputs"
                )));
            }
        }
    }
    Ok(())
}
