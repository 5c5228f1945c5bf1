//! Which layers the statistics watch: every normalisation layer of a model, found by walking
//! its tree of named modules, with the weighted layer (Linear or Conv2d) that comes before it.

use crate::graph::ParamId;
use crate::nn::{visit_modules, Module, StateView};

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
    visit_modules(model, "", &mut |path, m| {
        let name = m.type_name();
        let is_norm = NORM_TYPES.contains(&name);
        if is_norm {
            found.push(NormLayer {
                path: path.to_string(),
                type_name: name.to_string(),
                weight_before: last_weight,
            });
        }
        // a norm layer's own weight is a vector: only matrices and filters count as "before"
        for (n, entry) in m.own_state() {
            if let ("weight", Some(id), false) = (n, entry.param(), is_norm) {
                last_weight = Some(id);
            }
        }
    });
    found
}

/// A module's `running_mean` and `running_var` buffers, when it has both (a BatchNorm that
/// tracks them).
pub fn running_stats(m: &dyn Module) -> Option<(Vec<f32>, Vec<f32>)> {
    let (mut mean, mut var) = (None, None);
    for (name, entry) in m.own_state() {
        match (name, entry) {
            ("running_mean", StateView::Buffer(t)) => mean = Some(t.data.clone()),
            ("running_var", StateView::Buffer(t)) => var = Some(t.data.clone()),
            _ => {}
        }
    }
    mean.zip(var)
}
