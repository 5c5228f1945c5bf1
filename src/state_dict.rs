//! State dicts: a model's parameters and buffers by PyTorch's names, saved as safetensors so
//! that `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch, and back.

use crate::graph::ParamStore;
use crate::io::{read_safetensors, write_safetensors, StateTensor};
use crate::nn::{visit_state, visit_state_mut, Module, StateRef, StateView};
use crate::{Error, IncompatibleKeys, KeyMismatch, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Every parameter and buffer of `model`, in PyTorch's order and with its names and dtypes
/// (num_batches_tracked is int64).
pub fn state_dict(model: &dyn Module, params: &ParamStore) -> Vec<(String, StateTensor)> {
    let mut out = Vec::new();
    visit_state(model, "", &mut |name, entry| {
        let t = match entry {
            // in PyTorch's layout, through the layer's save mapper if it has one
            StateView::Param(_) | StateView::MappedParam(..) => {
                StateTensor::F32(entry.torch_param(params).expect("a parameter has a tensor"))
            }
            StateView::Buffer(t) => StateTensor::F32(t.clone()),
            StateView::Counter(c) => StateTensor::I64 {
                shape: vec![],
                data: vec![c],
            },
        };
        out.push((name.to_string(), t));
    });
    out
}

/// Load a state dict strictly (PyTorch's `strict=True`): every key of the model must be present
/// with its shape and dtype, and no other key. Nothing is changed unless everything fits; if
/// something does not, the error is [`Error::StateDict`] listing what.
/// `prefix` selects keys that start with it (e.g. "init." in the golden files); "" takes all.
pub fn load_state_dict(
    model: &mut dyn Module,
    params: &mut ParamStore,
    tensors: &BTreeMap<String, StateTensor>,
    prefix: &str,
) -> Result<()> {
    let wanted: BTreeMap<&str, &StateTensor> = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k, v)))
        .collect();
    // First pass: check every key.
    let mut keys = IncompatibleKeys::default();
    let mut seen = Vec::new();
    visit_state(model, "", &mut |name, entry| {
        seen.push(name.to_string());
        let (expected, expected_dtype) = match &entry {
            StateView::Param(id) => (params.shape(*id).to_vec(), "F32"),
            StateView::MappedParam(id, m) => ((m.torch_shape)(params.shape(*id)), "F32"),
            StateView::Buffer(t) => (t.shape.clone(), "F32"),
            StateView::Counter(_) => (vec![], "I64"),
        };
        match wanted.get(name) {
            None => keys.missing.push(format!("{prefix}{name}")),
            Some(t) if t.dtype_name() != expected_dtype || t.shape() != expected.as_slice() => {
                keys.mismatched.push(KeyMismatch {
                    key: format!("{prefix}{name}"),
                    expected,
                    found: t.shape().to_vec(),
                    expected_dtype,
                    found_dtype: t.dtype_name(),
                })
            }
            Some(_) => {}
        }
    });
    for k in wanted.keys() {
        if !seen.iter().any(|s| s == k) {
            keys.unexpected.push(format!("{prefix}{k}"));
        }
    }
    if !keys.is_empty() {
        return Err(Error::StateDict { file: None, keys });
    }
    // Second pass: copy.
    visit_state_mut(model, "", &mut |name, entry| match (entry, wanted[name]) {
        (StateRef::Param(id), StateTensor::F32(t)) => params.value_mut(id).copy_from_slice(&t.data),
        // through the layer's load mapper
        (StateRef::MappedParam(id, m), StateTensor::F32(t)) => m.load_into(params, id, &t.data),
        (StateRef::Buffer(b), StateTensor::F32(t)) => b.data.copy_from_slice(&t.data),
        (StateRef::Counter(c), StateTensor::I64 { data, .. }) => *c = data[0],
        _ => unreachable!("dtypes were checked above"),
    });
    Ok(())
}

/// Save a model's state dict as safetensors, atomically.
pub fn save(model: &dyn Module, params: &ParamStore, path: &Path) -> Result<()> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(path, &state_dict(model, params), &meta)
}

/// The metadata key of a training checkpoint's run state (`train::save_checkpoint`): its
/// presence marks a checkpoint.
pub(crate) const CHECKPOINT_META_KEY: &str = "bnlab_checkpoint";
/// The prefix of the model's tensors in a training checkpoint.
pub(crate) const CHECKPOINT_MODEL_PREFIX: &str = "model.";

/// Load a model's state dict from a safetensors file; errors name the file and the key (a
/// mismatch is an [`Error::StateDict`] with the file). A training checkpoint
/// (`checkpoint.safetensors`, see [`crate::train::save_checkpoint`]) is recognised by its
/// metadata and gives its model's weights (its optimizer state is left aside).
pub fn load(model: &mut dyn Module, params: &mut ParamStore, path: &Path) -> Result<()> {
    let file = read_safetensors(path)?;
    let prefix = if file.metadata.contains_key(CHECKPOINT_META_KEY) {
        CHECKPOINT_MODEL_PREFIX
    } else {
        ""
    };
    load_state_dict(model, params, &file.tensors, prefix).map_err(|e| in_file(e, path))
}

/// `e`, naming the file its state dict came from.
pub fn in_file(e: Error, path: &Path) -> Error {
    match e {
        Error::StateDict { keys, .. } => Error::StateDict {
            file: Some(path.to_path_buf()),
            keys,
        },
        other => Error::bad_file(path, other.to_string()),
    }
}
