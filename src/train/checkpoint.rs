//! Checkpoints: everything a run needs to continue exactly where it stopped, in one safetensors
//! file written atomically: the model's state dict (`model.*`), the optimizer's state
//! (`optimizer.*`), and in the metadata the position in the run (epoch, step), the generators
//! (data order, dropout, augmentation), the best score and patience counter, the history so far, and the
//! run's configuration.

use super::history::History;
use crate::data::Loader;
use crate::graph::Graph;
use crate::io::{read_safetensors, write_safetensors, StateTensor};
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::rng::Rng;
use crate::state_dict::{in_file, load_state_dict, state_dict};
use crate::tensor::Tensor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

// Where a checkpoint keeps its run state and its model's tensors: in `state_dict`, which
// recognises a checkpoint given as weights.
use crate::state_dict::{CHECKPOINT_META_KEY as META_KEY, CHECKPOINT_MODEL_PREFIX as MODEL_PREFIX};

/// Where a run stands, apart from the tensors.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Training steps completed in the epoch after `epoch` (0 at an epoch boundary).
    pub step: usize,
    /// The data order's generator as it was before the current epoch's shuffle, so that the
    /// epoch's order can be drawn again.
    pub loader: Loader,
    /// The dropout generator.
    pub dropout_rng: Rng,
    /// The augmentation's generator, in a run that augments its batches (absent from the
    /// checkpoints of runs without, and of runs made before augmentation existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_rng: Option<Rng>,
    /// The learning rate the schedule starts from.
    pub base_lr: f64,
    /// The lowest validation loss so far, and the epochs since it.
    pub best: f64,
    /// Epochs completed since the one with the lowest validation loss (early stopping's
    /// patience counter).
    pub since_best: usize,
    /// The completed epochs' records, as `fit` returns them.
    pub history: History,
}

/// Write a checkpoint atomically: the old file stays whole until the new one replaces it.
pub fn save_checkpoint(
    path: &Path,
    model: &mut dyn Module,
    g: &Graph,
    opt: &dyn Optimizer,
    state: &TrainState,
) -> Result<()> {
    let mut tensors: Vec<(String, StateTensor)> = state_dict(model, &g.params)
        .into_iter()
        .map(|(k, v)| (format!("{MODEL_PREFIX}{k}"), v))
        .collect();
    for (k, v) in opt.state(&g.params) {
        let shape = vec![v.len()];
        tensors.push((
            format!("optimizer.{k}"),
            StateTensor::F32(Tensor { shape, data: v }),
        ));
    }
    let meta = serde_json::to_string(state)
        .map_err(|e| Error::Invalid(format!("checkpoint state: {e}")))?;
    write_safetensors(
        path,
        &tensors,
        &HashMap::from([(META_KEY.to_string(), meta)]),
    )
}

/// Restore model, optimizer and dropout generator from a checkpoint; returns the run's state.
/// Nothing is changed unless the whole checkpoint fits the model and optimizer.
pub fn load_checkpoint(
    path: &Path,
    model: &mut dyn Module,
    g: &mut Graph,
    opt: &mut dyn Optimizer,
) -> Result<TrainState> {
    let file = read_safetensors(path)?;
    let bad = |msg: String| Error::bad_file(path, msg);
    let meta = file
        .metadata
        .get(META_KEY)
        .ok_or_else(|| bad("is not a bnlab checkpoint (no run state in its metadata)".into()))?;
    let state: TrainState =
        serde_json::from_str(meta).map_err(|e| bad(format!("run state: {e}")))?;
    let mut model_tensors = BTreeMap::new();
    let mut opt_state = Vec::new();
    for (k, v) in &file.tensors {
        if let Some(name) = k.strip_prefix(MODEL_PREFIX) {
            model_tensors.insert(name.to_string(), v.clone());
        } else if let Some(name) = k.strip_prefix("optimizer.") {
            match v {
                StateTensor::F32(t) => opt_state.push((name.to_string(), t.data.clone())),
                _ => return Err(bad(format!("optimizer tensor '{k}' is not F32"))),
            }
        } else {
            return Err(bad(format!("unexpected tensor '{k}'")));
        }
    }
    // optimizer state in the optimizer's own order (k.exp_avg, k.exp_avg_sq, k.step, ...)
    let order: HashMap<String, usize> = opt
        .state(&g.params)
        .into_iter()
        .enumerate()
        .map(|(i, (k, _))| (k, i))
        .collect();
    opt_state.sort_by_key(|(k, _)| order.get(k).copied().unwrap_or(usize::MAX));
    // each load checks everything before it changes anything; if the model does not fit,
    // the optimizer gets its old state back
    let old = opt.state(&g.params);
    opt.load_state(&opt_state, &g.params)
        .map_err(|e| bad(e.to_string()))?;
    if let Err(e) = load_state_dict(model, &mut g.params, &model_tensors, "") {
        opt.load_state(&old, &g.params)
            .expect("an optimizer takes back its own state");
        return Err(in_file(e, path));
    }
    g.rng = state.dropout_rng.clone();
    Ok(state)
}
