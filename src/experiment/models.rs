//! The experiments' networks, written as PyTorch prints them (so a report can show them and
//! `bnlab train --model FILE` can train them), and built through the model-file reader.

use crate::data::Dataset;
use crate::graph::Graph;
use crate::model_file::ModelFile;
use crate::nn::{Module, Net};
use crate::precision::Precision;
use crate::presets::{mlp, Preset, SEED_DIMS};
use crate::train::seeded;
use crate::{Result, Rng};
use std::fmt::Write as _;

/// One layer line of a printed Sequential.
pub fn linear(i: usize, o: usize) -> String {
    format!("Linear(in_features={i}, out_features={o}, bias=True)")
}

/// BatchNorm1d with PyTorch's defaults, as printed.
pub fn batch_norm(c: usize) -> String {
    format!("BatchNorm1d({c}, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")
}

/// `class(\n  (layers): Sequential(\n    (0): ...\n  )\n)`: a model of one Sequential.
pub fn sequential(class: &str, layers: &[String]) -> String {
    let mut s = format!("{class}(\n  (layers): Sequential(\n");
    for (i, l) in layers.iter().enumerate() {
        let _ = writeln!(s, "    ({i}): {l}");
    }
    s.push_str("  )\n)\n");
    s
}

/// Build `text` for the images of `ds` with PyTorch's initialisation drawn from `seed`; the
/// graph's own generator (dropout) comes from the same seed; its products in `precision`.
pub fn build(text: &str, ds: &Dataset, seed: u64, precision: Precision) -> Result<(Graph, Net)> {
    let file = ModelFile::from_text(text.to_string(), std::path::Path::new("<experiment>"))?;
    let (mut g, mut rng) = seeded(seed);
    g.set_precision(precision)?;
    let net = file.build(&ds.batch_shape(1), &mut g.params, &mut rng)?;
    Ok((g, net))
}

/// The chapter's 784-256-128-64-10 preset `preset`, seeded as [`build`] seeds a model.
pub fn chapter_preset(preset: Preset, seed: u64, precision: Precision) -> Result<(Graph, Net)> {
    let (mut g, mut rng) = seeded(seed);
    g.set_precision(precision)?;
    let net = mlp(&mut g.params, preset, &SEED_DIMS, &mut rng)?;
    Ok((g, net))
}

/// Every Linear's weight drawn from N(0, std²) and its bias set to 0 (the BatchNorm paper's
/// "small random Gaussian values"), from `rng`, in the model's order.
pub fn gaussian_linears(net: &mut dyn Module, g: &mut Graph, std: f32, rng: &mut Rng) {
    if net.type_name() == "Linear" {
        for (name, entry) in net.own_state_mut() {
            // drawn in the order the values are stored (independent draws: any order is
            // the same distribution)
            if let Some(id) = entry.param() {
                for v in g.params.value_mut(id) {
                    *v = if name == "weight" {
                        rng.normal(0.0, std)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    for (_, child) in net.children_mut() {
        gaussian_linears(child, g, std, rng);
    }
}

/// The state-dict path of the last module of class `type_name` in `m`.
pub fn last_of_type(m: &dyn Module, type_name: &str) -> Option<String> {
    let mut found = None;
    crate::nn::visit_modules(m, "", &mut |path, module| {
        if module.type_name() == type_name {
            found = Some(path.to_string());
        }
    });
    found
}
