//! Which layers the statistics watch: every normalisation layer of a model, found by walking
//! its tree of named modules, with the weighted layer (Linear or Conv2d) that comes before it.

use crate::graph::ParamId;
use crate::nn::{Module, StateView};

/// The class names of the layers the statistics watch.
pub const NORM_TYPES: [&str; 4] = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"];

/// A normalisation layer of a model.
#[derive(Clone, Debug)]
pub struct NormLayer {
    /// Its state-dict path (`b1.1`).
    pub path: String,
    /// PyTorch's class name (`BatchNorm1d`).
    pub type_name: String,
    /// The `weight` of the last layer before it (in the model's order) whose weight is a
    /// matrix or a filter bank: the Linear or Conv2d that feeds it.
    pub weight_before: Option<ParamId>,
}

/// The normalisation layers of `model`, in its order.
pub fn norm_layers(model: &dyn Module) -> Vec<NormLayer> {
    let mut found = vec![];
    let mut last_weight = None;
    walk(model, "", &mut last_weight, &mut found);
    found
}

fn walk(m: &dyn Module, path: &str, last_weight: &mut Option<ParamId>, found: &mut Vec<NormLayer>) {
    let name = m.type_name();
    if NORM_TYPES.contains(&name) {
        found.push(NormLayer {
            path: path.to_string(),
            type_name: name.to_string(),
            weight_before: *last_weight,
        });
    }
    for (n, entry) in m.own_state() {
        // a norm layer's own weight is a vector: only matrices and filters count as "before"
        if let ("weight", StateView::Param(id)) = (n, entry) {
            if !NORM_TYPES.contains(&name) {
                *last_weight = Some(id);
            }
        }
    }
    for (child, module) in m.children() {
        let p = if path.is_empty() {
            child
        } else {
            format!("{path}.{child}")
        };
        walk(module, &p, last_weight, found);
    }
}
